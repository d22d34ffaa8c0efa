package config

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

var errBadValue = errors.New("invalid value")

// ParseDuration reads nginx's time syntax: "30", "500ms", "7d", "1h 30m",
// "1h30m". A bare number is seconds. Units: ms s m h d w M y.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errBadValue
	}
	var total time.Duration
	for s != "" {
		s = strings.TrimLeft(s, " ")
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, errBadValue
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return 0, errBadValue
		}
		s = s[i:]
		unit := time.Second
		switch {
		case strings.HasPrefix(s, "ms"):
			unit, s = time.Millisecond, s[2:]
		case s == "" || s[0] == ' ':
		default:
			switch s[0] {
			case 's':
				unit = time.Second
			case 'm':
				unit = time.Minute
			case 'h':
				unit = time.Hour
			case 'd':
				unit = 24 * time.Hour
			case 'w':
				unit = 7 * 24 * time.Hour
			case 'M':
				unit = 30 * 24 * time.Hour
			case 'y':
				unit = 365 * 24 * time.Hour
			default:
				return 0, errBadValue
			}
			s = s[1:]
		}
		if n > int64((1<<63-1)/unit) {
			return 0, errBadValue
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// ParseSize reads nginx's size syntax: "512", "4k", "10m", "1g".
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errBadValue
	}
	mul := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mul, s = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mul, s = 1<<20, s[:len(s)-1]
	case 'g', 'G':
		mul, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return 0, errBadValue
	}
	return n * mul, nil
}

func parseFlag(s string) (bool, error) {
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, errBadValue
}

func itoa(n int) string { return strconv.Itoa(n) }

// intAtLeast reads a whole number of at least min.
func intAtLeast(v string, min int) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n < min {
		err = errBadValue
	}
	return n, err
}
