// Package regex compiles nginx's regular expressions, which are PCRE, so
// that they match what PCRE matches: with Go's RE2 engine (linear time)
// when the pattern translates exactly, otherwise with a backtracking
// engine (github.com/dlclark/regexp2) whose matches are bounded in time.
// Constructs neither engine runs (recursion, \K, callouts, verbs) are
// refused when the pattern is compiled.
package regex

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// MatchTimeout bounds one match of a backtracking pattern; with the
// engine's bounded backtracking stack (regexp2's default, 100,000 slots)
// it plays the part of PCRE's match and depth limits.
var MatchTimeout = time.Second

// ErrMatchLimit is returned when a match ran out of its time or
// backtracking budget, as PCRE's PCRE2_ERROR_MATCHLIMIT.
var ErrMatchLimit = errors.New("match limit exceeded")

// MatchLimitCode is PCRE2_ERROR_MATCHLIMIT, the code nginx logs.
const MatchLimitCode = -47

// Regexp is a compiled nginx regex. It is safe for concurrent use.
type Regexp struct {
	pattern string
	re2     *regexp.Regexp  // nil when only bt can run the pattern
	bt      *regexp2.Regexp // nil when RE2 alone is exact
	dollar  bool            // subjects ending in "\n" go to bt
	names   []string        // per group, "" for unnamed; [0] is the whole match
}

// Compile compiles an nginx regex; caseless is `~*` (and server_name,
// gzip_disable). The error names the refused construct, if any.
func Compile(pattern string, caseless bool) (*Regexp, error) {
	t, err := translate(pattern)
	if err != nil {
		return nil, err
	}
	r := &Regexp{pattern: pattern, dollar: t.dollar}
	prefix := ""
	if caseless {
		prefix = "(?i)"
	}
	if !t.needBT {
		if r.re2, err = regexp.Compile(prefix + t.re2.String()); err != nil {
			return nil, cleanErr(err)
		}
		r.names = r.re2.SubexpNames()
		if !t.dollar {
			return r, nil
		}
	}
	if r.bt, err = regexp2.Compile(prefix+t.bt.String(), regexp2.OptionMaintainCaptureOrder()); err != nil {
		if r.re2 != nil {
			// RE2 runs it; only a subject ending in "\n" would differ.
			r.dollar = false
			return r, nil
		}
		return nil, err
	}
	r.bt.MatchTimeout = MatchTimeout
	if r.re2 == nil {
		nums := r.bt.GetGroupNumbers()
		r.names = make([]string, len(nums))
		for _, n := range nums {
			if name := r.bt.GroupNameFromNumber(n); name != "" && name != strconv.Itoa(n) && n < len(r.names) {
				r.names[n] = name
			}
		}
	}
	return r, nil
}

// cleanErr drops RE2's "error parsing regexp: " prefix.
func cleanErr(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "error parsing regexp: "))
}

// String is the pattern as written.
func (r *Regexp) String() string { return r.pattern }

// Backtracking reports whether some subjects run on the backtracking
// engine.
func (r *Regexp) Backtracking() bool { return r.bt != nil }

// NumSubexp is the number of capturing groups.
func (r *Regexp) NumSubexp() int { return len(r.names) - 1 }

// SubexpNames names the groups as regexp.Regexp.SubexpNames does.
func (r *Regexp) SubexpNames() []string { return r.names }

// useRE2 reports whether RE2 matches s exactly.
func (r *Regexp) useRE2(s string) bool {
	return r.re2 != nil && !(r.dollar && strings.HasSuffix(s, "\n"))
}

// MatchString reports whether s matches; err is a *MatchError when the
// match was cut short.
func (r *Regexp) MatchString(s string) (bool, error) {
	if r.useRE2(s) {
		return r.re2.MatchString(s), nil
	}
	ok, err := r.bt.MatchString(s)
	if err != nil {
		return false, &MatchError{s, r.pattern}
	}
	return ok, nil
}

// FindStringSubmatch returns the match and its groups ("" for a group
// that did not take part), or nil; err is a *MatchError when the match
// was cut short.
func (r *Regexp) FindStringSubmatch(s string) ([]string, error) {
	if r.useRE2(s) {
		return r.re2.FindStringSubmatch(s), nil
	}
	m, err := r.bt.FindStringMatch(s)
	if err != nil {
		return nil, &MatchError{s, r.pattern}
	}
	if m == nil {
		return nil, nil
	}
	out := make([]string, len(r.names))
	for i, g := range m.Groups() {
		if i < len(out) && len(g.Captures) > 0 {
			out[i] = g.String()
		}
	}
	return out, nil
}

// MatchError is a match that was cut short, worded as nginx logs a PCRE
// error; it wraps ErrMatchLimit.
type MatchError struct{ Subject, Pattern string }

func (e *MatchError) Error() string {
	return fmt.Sprintf("pcre2_match() failed: %d on \"%s\" using \"%s\"", MatchLimitCode, e.Subject, e.Pattern)
}

// Unwrap makes errors.Is(err, ErrMatchLimit) hold.
func (e *MatchError) Unwrap() error { return ErrMatchLimit }
