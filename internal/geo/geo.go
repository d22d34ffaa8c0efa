// Package geo maps client addresses to values as nginx's
// ngx_http_geo_module does: by the longest matching network (CIDR mode)
// or by address ranges (ranges mode), with the client's address taken
// from X-Forwarded-For when the peer is a trusted proxy.
package geo

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Geo is one compiled `geo` block. Build it with New and the Add*
// methods, then call Lookup from any number of goroutines.
type Geo struct {
	ranges    bool
	def       string
	nets      [2]map[int]map[netip.Prefix]string // [0] IPv4, [1] IPv6, by prefix length
	lens      [2][]int                           // prefix lengths present, longest first
	spans     []span                             // ranges mode, later entries win
	proxies   []netip.Prefix
	recursive bool
}

type span struct {
	lo, hi netip.Addr
	val    string
}

// New returns an empty block; ranges selects ranges mode.
func New(ranges bool) *Geo {
	return &Geo{ranges: ranges, nets: [2]map[int]map[netip.Prefix]string{{}, {}}}
}

// SetDefault sets the value of addresses no entry covers.
func (g *Geo) SetDefault(v string) { g.def = v }

// AddProxy trusts the addresses of p (an address or CIDR) to report the
// client in X-Forwarded-For.
func (g *Geo) AddProxy(p string) error {
	pfx, err := parseNet(p)
	if err != nil {
		return err
	}
	g.proxies = append(g.proxies, pfx)
	return nil
}

// SetRecursive makes the X-Forwarded-For walk skip trusted addresses.
func (g *Geo) SetRecursive() { g.recursive = true }

// Add maps key (a CIDR or address; in ranges mode "a.b.c.d-e.f.g.h") to
// value. A repeated network replaces the earlier value, as nginx does
// after its "duplicate network" warning.
func (g *Geo) Add(key, value string) error {
	if g.ranges {
		lo, hi, err := parseRange(key)
		if err != nil {
			return err
		}
		g.spans = append(g.spans, span{lo: lo, hi: hi, val: value})
		return nil
	}
	pfx, err := parseNet(key)
	if err != nil {
		return err
	}
	fam := family(pfx.Addr())
	byLen := g.nets[fam][pfx.Bits()]
	if byLen == nil {
		byLen = map[netip.Prefix]string{}
		g.nets[fam][pfx.Bits()] = byLen
		g.lens[fam] = append(g.lens[fam], pfx.Bits())
		sort.Sort(sort.Reverse(sort.IntSlice(g.lens[fam])))
	}
	byLen[pfx] = value
	return nil
}

// Delete removes the network (or, in ranges mode, the range) key.
func (g *Geo) Delete(key string) error {
	if g.ranges {
		lo, hi, err := parseRange(key)
		if err != nil {
			return err
		}
		g.spans = append(g.spans, span{lo: lo, hi: hi, val: "\x00"})
		return nil
	}
	pfx, err := parseNet(key)
	if err != nil {
		return err
	}
	delete(g.nets[family(pfx.Addr())][pfx.Bits()], pfx)
	return nil
}

// Lookup returns the value for addr; an invalid addr is looked up as
// 255.255.255.255, as nginx does with a value that is not an address.
func (g *Geo) Lookup(addr netip.Addr) string {
	if !addr.IsValid() {
		addr = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	addr = addr.Unmap()
	if g.ranges {
		return g.lookupRange(addr)
	}
	fam := family(addr)
	for _, n := range g.lens[fam] {
		p, _ := addr.Prefix(n)
		if v, ok := g.nets[fam][n][p]; ok {
			return v
		}
	}
	return g.def
}

func (g *Geo) lookupRange(addr netip.Addr) string {
	if !addr.Is4() {
		return g.def // ranges cover IPv4 only
	}
	for i := len(g.spans) - 1; i >= 0; i-- {
		s := g.spans[i]
		if s.lo.Compare(addr) <= 0 && addr.Compare(s.hi) <= 0 {
			if s.val == "\x00" {
				return g.def
			}
			return s.val
		}
	}
	return g.def
}

// Client returns the address geo looks up for a peer: the peer itself,
// or, when the peer is a trusted proxy, the last address of
// X-Forwarded-For (with proxy_recursive, the last untrusted one).
// xff lists the header's addresses in order.
func (g *Geo) Client(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if len(g.proxies) == 0 || len(xff) == 0 || !g.trusted(peer) {
		return peer
	}
	addr := peer
	for i := len(xff) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(xff[i]))
		if err != nil {
			return addr
		}
		addr = a.Unmap()
		if !g.recursive || !g.trusted(addr) {
			break
		}
	}
	return addr
}

func (g *Geo) trusted(a netip.Addr) bool {
	for _, p := range g.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// parseNet reads "addr", "addr/bits" or "255.255.255.255" alike; host
// bits set in a CIDR are cleared, as nginx does (with a warning).
func parseNet(s string) (netip.Prefix, error) {
	if s == "255.255.255.255" {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), 32), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("invalid network %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid network %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseRange(s string) (lo, hi netip.Addr, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		lo, err = netip.ParseAddr(a)
		if err == nil {
			hi, err = netip.ParseAddr(b)
		}
	}
	if !ok || err != nil || !lo.Is4() || !hi.Is4() {
		return lo, hi, fmt.Errorf("invalid range %q", s)
	}
	if hi.Less(lo) {
		return lo, hi, fmt.Errorf("invalid range %q", s)
	}
	return lo, hi, nil
}
