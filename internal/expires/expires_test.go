package expires

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		v        string
		modified bool
		want     Spec
		err      string
	}{
		{"1h", false, Spec{Access, 3600}, ""},
		{"+1d 2h", false, Spec{Access, 93600}, ""},
		{"1h30m", false, Spec{Access, 5400}, ""},
		{"-1", false, Spec{Access, -1}, ""},
		{"0", false, Spec{Access, 0}, ""},
		{"30", false, Spec{Access, 30}, ""},
		{"1y", false, Spec{Access, 365 * 86400}, ""},
		{"2M1w", false, Spec{Access, 67 * 86400}, ""},
		{"epoch", false, Spec{Kind: Epoch}, ""},
		{"max", false, Spec{Kind: Max}, ""},
		{"off", false, Spec{Kind: Off}, ""},
		{"@15h30m", false, Spec{Daily, 55800}, ""},
		{"1d", true, Spec{Modified, 86400}, ""},
		{"epoch", true, Spec{}, "invalid value"},
		{"@1h", true, Spec{}, `daily time cannot be used with "modified" parameter`},
		{"@25h", false, Spec{}, "daily time value must be less than 24 hours"},
		{"1m1h", false, Spec{}, "invalid value"},
		{"500ms", false, Spec{}, "invalid value"},
		{"1x", false, Spec{}, "invalid value"},
		{"", false, Spec{}, "invalid value"},
		{"h", false, Spec{}, "invalid value"},
		{"99999999999999999999", false, Spec{}, "invalid value"},
	} {
		got, err := Parse(c.v, c.modified)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%q: %v, want error %q", c.v, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q: %+v %v, want %+v", c.v, got, err, c.want)
		}
	}
}

func TestValues(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	lm := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, c := range []struct {
		s        Spec
		lm       int64
		constNeg bool
		exp, cc  string
	}{
		{Spec{Access, 3600}, lm, false, "Wed, 04 Mar 2026 11:00:00 GMT", "max-age=3600"},
		{Spec{Access, -60}, lm, true, "Wed, 04 Mar 2026 09:59:00 GMT", "no-cache"},
		{Spec{Access, 0}, lm, false, "Wed, 04 Mar 2026 10:00:00 GMT", "max-age=0"},
		{Spec{Kind: Epoch}, lm, false, "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"},
		{Spec{Kind: Max}, lm, false, "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"},
		{Spec{Modified, 7 * 86400}, lm, false, "Sun, 08 Mar 2026 00:00:00 GMT", "max-age=309600"},
		{Spec{Modified, 86400}, lm, false, "Mon, 02 Mar 2026 00:00:00 GMT", "no-cache"},
		{Spec{Modified, 3600}, -1, false, "Wed, 04 Mar 2026 11:00:00 GMT", "max-age=3600"},
		{Spec{Daily, 15 * 3600}, lm, false, "Wed, 04 Mar 2026 15:00:00 GMT", "max-age=18000"},
		{Spec{Daily, 9 * 3600}, lm, false, "Thu, 05 Mar 2026 09:00:00 GMT", "max-age=82800"},
		{Spec{Kind: Off}, lm, false, "", ""},
	} {
		exp, cc := c.s.Values(now, c.lm, c.constNeg)
		if exp != c.exp || cc != c.cc {
			t.Errorf("%+v: %q %q, want %q %q", c.s, exp, cc, c.exp, c.cc)
		}
	}
}
