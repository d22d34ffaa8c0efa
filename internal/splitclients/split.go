// Package splitclients picks a bucket for a key as nginx's
// ngx_http_split_clients_module does: by the key's MurmurHash2 against
// cumulative percentages, so the same keys land in the same buckets.
package splitclients

import (
	"fmt"
	"strings"
)

// Split is one compiled `split_clients` block; safe for concurrent use.
type Split struct {
	parts []part
}

type part struct {
	limit uint32 // the hash is below it; 0 for "*"
	value string
}

// Part is one line of the block: Percent as written ("0.5%" or "*").
type Part struct {
	Percent string
	Value   string
}

// New compiles the block's lines. Percentages have at most two decimals
// and must not total more than 100%.
func New(lines []Part) (*Split, error) {
	s := &Split{}
	var sum, last uint32
	for _, l := range lines {
		var pct uint32
		if l.Percent != "*" {
			n, err := parsePercent(l.Percent)
			if err != nil {
				return nil, err
			}
			pct = n
		}
		if pct == 0 {
			sum = 10000
		} else {
			sum += pct
		}
		if sum > 10000 {
			return nil, fmt.Errorf("percent total is greater than 100%%")
		}
		p := part{value: l.Value}
		if pct != 0 {
			last += uint32(uint64(pct) * 0xffffffff / 10000)
			p.limit = last
		}
		s.parts = append(s.parts, p)
	}
	return s, nil
}

// Pick returns the value of key's bucket, "" when no bucket takes it.
func (s *Split) Pick(key string) string {
	h := Murmur2([]byte(key))
	for _, p := range s.parts {
		if h < p.limit || p.limit == 0 {
			return p.value
		}
	}
	return ""
}

// parsePercent reads "12.34%" as hundredths of a percent (1234).
func parsePercent(s string) (uint32, error) {
	bad := fmt.Errorf("invalid percent value %q", s)
	num, ok := strings.CutSuffix(s, "%")
	if !ok || num == "" {
		return 0, bad
	}
	whole, frac, dot := strings.Cut(num, ".")
	if len(frac) > 2 || dot && whole == "" && frac == "" {
		return 0, bad
	}
	var n uint64
	for _, c := range whole + frac + strings.Repeat("0", 2-len(frac)) {
		if c < '0' || c > '9' {
			return 0, bad
		}
		if n = n*10 + uint64(c-'0'); n > 1<<31 {
			return 0, bad
		}
	}
	if n == 0 {
		return 0, bad
	}
	return uint32(n), nil
}

// Murmur2 is nginx's ngx_murmur_hash2: MurmurHash2 with seed 0.
func Murmur2(data []byte) uint32 {
	const m = 0x5bd1e995
	h := uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
