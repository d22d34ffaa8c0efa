// Package expires is the `expires` directive of nginx's
// ngx_http_headers_module: its value parsed, and the Expires and
// Cache-Control headers it gives a response.
package expires

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is how an expiry time is counted.
type Kind int

// Kinds, as nginx's NGX_HTTP_EXPIRES_*.
const (
	Off      Kind = iota
	Access        // from the time of the request
	Modified      // from the file's Last-Modified
	Daily         // @time: the next such time of day
	Epoch         // Thu, 01 Jan 1970 00:00:01 GMT, no-cache
	Max           // Thu, 31 Dec 2037 23:55:55 GMT, ten years
)

// Spec is one parsed `expires` value.
type Spec struct {
	Kind    Kind
	Seconds int64 // signed offset; for Daily, seconds after local midnight
}

// Parse reads an `expires` value: epoch, max, off, or [+|-]time, or
// @time of day; modified says the `modified` parameter came first (which
// refuses epoch, max, off and @). Errors are nginx's messages.
func Parse(v string, modified bool) (Spec, error) {
	s := Spec{Kind: Access}
	if modified {
		s.Kind = Modified
	} else {
		switch v {
		case "epoch":
			return Spec{Kind: Epoch}, nil
		case "max":
			return Spec{Kind: Max}, nil
		case "off":
			return Spec{Kind: Off}, nil
		}
	}
	minus := false
	switch {
	case len(v) > 0 && v[0] == '@':
		if modified {
			return s, errors.New("daily time cannot be used with \"modified\" parameter")
		}
		s.Kind, v = Daily, v[1:]
	case len(v) > 0 && v[0] == '+':
		v = v[1:]
	case len(v) > 0 && v[0] == '-':
		minus, v = true, v[1:]
	}
	n, err := parseTime(v)
	if err != nil {
		return s, err
	}
	if s.Kind == Daily && n > 24*60*60 {
		return s, errors.New("daily time value must be less than 24 hours")
	}
	if minus {
		n = -n
	}
	s.Seconds = n
	return s, nil
}

var errInvalid = errors.New("invalid value")

// parseTime is nginx's ngx_parse_time in seconds: numbers with units
// y M w d h m s, each unit at most once and in that order, separated by
// spaces or not; a number without a unit, last, is seconds.
func parseTime(v string) (int64, error) {
	const units = "yMwdhms"
	scales := [...]int64{365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1}
	var total, value int64
	step, valid := 0, false // step: 1 + the index of the last unit; 8 after a bare number and a space
	for i := 0; i < len(v); {
		c := v[i]
		i++
		if c >= '0' && c <= '9' {
			if value > (math.MaxInt64-int64(c-'0'))/10 {
				return 0, errInvalid
			}
			value = value*10 + int64(c-'0')
			valid = true
			continue
		}
		scale := int64(1)
		switch u := strings.IndexByte(units, c); {
		case c == 'm' && i < len(v) && v[i] == 's':
			return 0, errInvalid // milliseconds are not seconds
		case u >= 0 && step <= u:
			step, scale = u+1, scales[u]
		case c == ' ' && step < 7:
			step = 8
		default:
			return 0, errInvalid
		}
		if value > math.MaxInt64/scale || total > math.MaxInt64-value*scale {
			return 0, errInvalid
		}
		total += value * scale
		value = 0
		for i < len(v) && v[i] == ' ' {
			i++
		}
	}
	if !valid || total > math.MaxInt64-value {
		return 0, errInvalid
	}
	return total + value, nil
}

const httpTime = "Mon, 02 Jan 2006 15:04:05 GMT"

// Values returns the Expires and Cache-Control values s gives a response
// sent at now whose Last-Modified is lastMod (Unix seconds, -1 when it
// has none); constNeg says the configured (not variable) time was
// negative, which always means no-cache. Off gives "", "".
func (s Spec) Values(now time.Time, lastMod int64, constNeg bool) (exp, cc string) {
	switch s.Kind {
	case Off:
		return "", ""
	case Epoch:
		return "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"
	case Max:
		return "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"
	}
	if s.Seconds == 0 && s.Kind != Daily {
		return now.UTC().Format(httpTime), "max-age=0"
	}
	t, sec := now.Unix(), s.Seconds
	var at, maxAge int64
	switch {
	case s.Kind == Daily:
		at = nextTime(now, sec)
		maxAge = at - t
	case s.Kind == Access || lastMod == -1:
		at, maxAge = t+sec, sec
	default:
		at = lastMod + sec
		maxAge = at - t
	}
	exp = time.Unix(at, 0).UTC().Format(httpTime)
	if constNeg || maxAge < 0 {
		return exp, "no-cache"
	}
	return exp, "max-age=" + strconv.FormatInt(maxAge, 10)
}

// nextTime is nginx's ngx_next_time: the next moment, after now, that the
// local clock shows sec seconds after midnight.
func nextTime(now time.Time, sec int64) int64 {
	y, m, d := now.Date()
	next := time.Date(y, m, d, int(sec/3600), int(sec%3600/60), int(sec%60), 0, now.Location())
	if next.Unix() > now.Unix() {
		return next.Unix()
	}
	return time.Date(y, m, d+1, int(sec/3600), int(sec%3600/60), int(sec%60), 0, now.Location()).Unix()
}
