// Package resolver asks DNS servers for addresses and SRV records, as
// nginx's `resolver` does: the servers named in the configuration are
// tried in turn over UDP (TCP when an answer is truncated), answers are
// cached for their TTL or for `valid=`, and concurrent lookups of one name
// share a single query.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Config is what `resolver` and `resolver_timeout` say.
type Config struct {
	Servers []string      // "ip:port", tried in this order
	Valid   time.Duration // valid=: overrides answer TTLs; 0 honours them
	NoIPv4  bool          // ipv4=off
	NoIPv6  bool          // ipv6=off; nginx resolves AAAA by default since 1.5.8
	Timeout time.Duration // resolver_timeout; 0 means nginx's 30s
	Zone    string        // status_zone
}

// Error is a failed lookup, worded as nginx's resolver words it:
// "NAME could not be resolved (3: Host not found)".
type Error struct {
	Name string
	Code int // nginx's codes: 1-5 are DNS rcodes, 110 is a timeout
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s could not be resolved (%d: %s)", e.Name, e.Code, codeText(e.Code))
}

// Timeout reports whether no server answered in time.
func (e *Error) Timeout() bool { return e.Code == CodeTimedOut }

// The codes of Error besides the DNS rcodes.
const (
	CodeTimedOut = 110
	codeNoData   = 3 // an empty answer is "Host not found", as nginx says
)

func codeText(c int) string {
	switch c {
	case dns.RcodeFormatError:
		return "Format error"
	case dns.RcodeServerFailure:
		return "Server failure"
	case dns.RcodeNameError:
		return "Host not found"
	case dns.RcodeNotImplemented:
		return "Unimplemented"
	case dns.RcodeRefused:
		return "Operation refused"
	case CodeTimedOut:
		return "Operation timed out"
	}
	return "Unknown error"
}

// SRV is one target of an SRV answer with its addresses resolved.
type SRV struct {
	Target   string
	Port     uint16
	Priority uint16
	Weight   uint16
	Addrs    []netip.Addr
}

// Stats counts what the resolver did, for its status_zone: the questions
// sent (Name for A and AAAA, SRV), and their outcomes.
type Stats struct {
	Name, SRV                                                              uint64
	NoError, FormErr, ServFail, NXDomain, NotImp, Refused, TimedOut, Other uint64
}

// Add returns the sum of s and o, for resolvers that share a status_zone.
func (s Stats) Add(o Stats) Stats {
	return Stats{Name: s.Name + o.Name, SRV: s.SRV + o.SRV, NoError: s.NoError + o.NoError, FormErr: s.FormErr + o.FormErr,
		ServFail: s.ServFail + o.ServFail, NXDomain: s.NXDomain + o.NXDomain, NotImp: s.NotImp + o.NotImp,
		Refused: s.Refused + o.Refused, TimedOut: s.TimedOut + o.TimedOut, Other: s.Other + o.Other}
}

// Resolver is safe for concurrent use. The zero value is not usable; build
// one with New.
type Resolver struct {
	cfg Config
	now func() time.Time

	mu    sync.Mutex
	cache map[cacheKey]*entry

	names, srvs, noError, formErr, servFail, nxDomain, notImp, refused, timedOut, other atomic.Uint64
}

type cacheKey struct {
	name  string // fully qualified, lower case
	qtype uint16
}

// entry is one cached answer, or a lookup in flight when ready is open.
type entry struct {
	ready   chan struct{}
	rrs     []dns.RR
	err     error
	expires time.Time
}

// New returns a resolver for cfg. It opens nothing until the first lookup.
func New(cfg Config) *Resolver {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Resolver{cfg: cfg, now: time.Now, cache: map[cacheKey]*entry{}}
}

// Config returns the configuration r was built with, defaults applied.
func (r *Resolver) Config() Config { return r.cfg }

// Stats returns the counters of r.
func (r *Resolver) Stats() Stats {
	return Stats{
		Name: r.names.Load(), SRV: r.srvs.Load(), NoError: r.noError.Load(), FormErr: r.formErr.Load(),
		ServFail: r.servFail.Load(), NXDomain: r.nxDomain.Load(), NotImp: r.notImp.Load(),
		Refused: r.refused.Load(), TimedOut: r.timedOut.Load(), Other: r.other.Load(),
	}
}

// LookupHost returns the addresses of name (A and AAAA records, as ipv4=
// and ipv6= allow) and how long they stay valid: the shortest TTL of the
// answers that have addresses. An IP literal is returned as is, valid
// forever. A name with no address at all is an *Error.
func (r *Resolver) LookupHost(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{a.Unmap()}, 0, nil
	}
	var qtypes []uint16
	if !r.cfg.NoIPv4 {
		qtypes = append(qtypes, dns.TypeA)
	}
	if !r.cfg.NoIPv6 {
		qtypes = append(qtypes, dns.TypeAAAA)
	}
	answers := make([]answer, len(qtypes))
	var wg sync.WaitGroup
	for i, qt := range qtypes {
		wg.Go(func() {
			a := &answers[i]
			a.rrs, a.ttl, a.err = r.query(ctx, name, qt)
		})
	}
	wg.Wait()
	return addrsOf(name, answers)
}

// answer is the outcome of one question.
type answer struct {
	rrs []dns.RR
	ttl time.Duration
	err error
}

// addrsOf merges the A and AAAA answers of name.
func addrsOf(name string, answers []answer) ([]netip.Addr, time.Duration, error) {
	var addrs []netip.Addr
	ttl := time.Duration(-1)
	var firstErr error
	for _, res := range answers {
		if res.err != nil {
			firstErr = cmpErr(firstErr, res.err)
			continue
		}
		for _, rr := range res.rrs {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A); ok {
					addrs = append(addrs, a.Unmap())
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					addrs = append(addrs, a)
				}
			}
		}
		if len(res.rrs) > 0 && (ttl < 0 || res.ttl < ttl) {
			ttl = res.ttl // an empty answer (no AAAA) does not shorten it
		}
	}
	if len(addrs) == 0 {
		if firstErr == nil {
			firstErr = &Error{Name: name, Code: codeNoData}
		}
		return nil, 0, firstErr
	}
	return addrs, max(ttl, 0), nil
}

// cmpErr keeps the more telling of two errors: a server's answer beats a
// timeout, so that one family timing out does not hide "Host not found".
func cmpErr(old, err error) error {
	var e *Error
	if old == nil || (errors.As(old, &e) && e.Timeout()) {
		return err
	}
	return old
}

// LookupSRV returns the SRV targets of name (for example
// "_http._tcp.backend.example"), each with its addresses, in priority
// order, and how long the answer stays valid. Targets without an address
// are left out; a name without any usable target is an *Error.
func (r *Resolver) LookupSRV(ctx context.Context, name string) ([]SRV, time.Duration, error) {
	rrs, ttl, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	var out []SRV
	for _, rr := range rrs {
		s, ok := rr.(*dns.SRV)
		if !ok || s.Target == "." {
			continue
		}
		target := strings.TrimSuffix(s.Target, ".")
		addrs, attl, err := r.LookupHost(ctx, target)
		if err != nil {
			continue // nginx skips a target that does not resolve
		}
		if _, lit := netip.ParseAddr(target); lit != nil { // a literal target has no TTL of its own
			ttl = min(ttl, attl)
		}
		out = append(out, SRV{Target: target, Port: s.Port, Priority: s.Priority, Weight: s.Weight, Addrs: addrs})
	}
	if len(out) == 0 {
		return nil, 0, &Error{Name: name, Code: codeNoData}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out, ttl, nil
}

// query answers one question from the cache or the servers. Concurrent
// callers of the same question wait for one exchange.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, time.Duration, error) {
	k := cacheKey{dns.Fqdn(strings.ToLower(name)), qtype}
	for {
		r.mu.Lock()
		e := r.cache[k]
		if e == nil || (isClosed(e.ready) && !r.now().Before(e.expires)) {
			e = &entry{ready: make(chan struct{})}
			r.makeRoom()
			r.cache[k] = e
			r.mu.Unlock()
			r.fill(ctx, e, name, k)
			return e.rrs, r.left(e), e.err
		}
		r.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, 0, &Error{Name: name, Code: CodeTimedOut}
		}
		if r.now().Before(e.expires) || e.err != nil {
			return e.rrs, r.left(e), e.err
		}
		// expired at once (TTL 0): ask again
	}
}

// MaxEntries bounds the cache: names that clients choose (proxy_pass
// http://$http_x_target) cannot grow it without limit.
const MaxEntries = 4096

// makeRoom drops expired answers when the cache is full, and then, if it
// is still full, answers chosen at random. The caller holds r.mu.
func (r *Resolver) makeRoom() {
	if len(r.cache) < MaxEntries {
		return
	}
	now := r.now()
	for k, e := range r.cache {
		if isClosed(e.ready) && !now.Before(e.expires) {
			delete(r.cache, k)
		}
	}
	for k, e := range r.cache {
		if len(r.cache) < MaxEntries {
			return
		}
		if isClosed(e.ready) {
			delete(r.cache, k)
		}
	}
}

func (r *Resolver) left(e *entry) time.Duration { return max(e.expires.Sub(r.now()), 0) }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fill runs the exchange for e and publishes its outcome. Failures are not
// cached beyond this exchange: the next lookup asks again.
func (r *Resolver) fill(ctx context.Context, e *entry, name string, k cacheKey) {
	defer close(e.ready)
	rrs, ttl, err := r.exchange(ctx, name, k)
	e.rrs, e.err = rrs, err
	if err != nil {
		r.mu.Lock()
		if r.cache[k] == e {
			delete(r.cache, k)
		}
		r.mu.Unlock()
		return
	}
	if r.cfg.Valid > 0 {
		ttl = r.cfg.Valid
	}
	e.expires = r.now().Add(ttl)
}

// exchange asks the servers in turn until one answers, within
// resolver_timeout for the whole lookup.
func (r *Resolver) exchange(ctx context.Context, name string, k cacheKey) ([]dns.RR, time.Duration, error) {
	if k.qtype == dns.TypeSRV {
		r.srvs.Add(1)
	} else {
		r.names.Add(1)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(k.name, k.qtype)
	m.RecursionDesired = true
	var resp *dns.Msg
	for len(r.cfg.Servers) > 0 && resp == nil && ctx.Err() == nil {
		for _, srv := range r.cfg.Servers {
			if resp = r.ask(ctx, m, srv); resp != nil || ctx.Err() != nil {
				break
			}
		}
		if resp == nil {
			select { // every server failed at once (refused): pause before the next round
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if resp == nil {
		r.timedOut.Add(1)
		return nil, 0, &Error{Name: name, Code: CodeTimedOut}
	}
	r.count(resp.Rcode)
	if resp.Rcode != dns.RcodeSuccess {
		return nil, 0, &Error{Name: name, Code: resp.Rcode}
	}
	var out []dns.RR
	ttl := time.Duration(-1)
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype != k.qtype {
			continue // a CNAME on the way
		}
		out = append(out, rr)
		if t := time.Duration(rr.Header().Ttl) * time.Second; ttl < 0 || t < ttl {
			ttl = t
		}
	}
	if len(out) == 0 {
		ttl = negativeTTL(resp) // no record of this type (no AAAA, say)
	}
	return out, max(ttl, 0), nil
}

// negativeTTL is how long an answer without records is kept: the SOA's
// minimum TTL from the authority section (RFC 2308), 0 without one.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}

// ask sends m to one server: UDP first, TCP when the answer is truncated.
// It returns nil when the server did not answer.
func (r *Resolver) ask(ctx context.Context, m *dns.Msg, server string) *dns.Msg {
	per := r.cfg.Timeout / time.Duration(max(len(r.cfg.Servers), 1))
	per = max(min(per, 5*time.Second), time.Second)
	c := &dns.Client{Net: "udp", Timeout: per}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil || resp == nil || resp.Id != m.Id || len(resp.Question) != 1 ||
		!strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) || resp.Question[0].Qtype != m.Question[0].Qtype {
		return nil // not an answer to this question
	}
	return resp
}

func (r *Resolver) count(rcode int) {
	switch rcode {
	case dns.RcodeSuccess:
		r.noError.Add(1)
	case dns.RcodeFormatError:
		r.formErr.Add(1)
	case dns.RcodeServerFailure:
		r.servFail.Add(1)
	case dns.RcodeNameError:
		r.nxDomain.Add(1)
	case dns.RcodeNotImplemented:
		r.notImp.Add(1)
	case dns.RcodeRefused:
		r.refused.Add(1)
	default:
		r.other.Add(1)
	}
}

// ServerAddr turns one address of the `resolver` directive ("127.0.0.1",
// "[::1]:5353", "ns.example:53") into "ip:port" strings, port 53 by
// default; lookup resolves a host name, as nginx does when it reads the
// configuration.
func ServerAddr(s string, lookup func(host string) ([]netip.Addr, error)) ([]string, error) {
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if n, err := parsePort(port); err != nil || n == 0 {
		return nil, fmt.Errorf("invalid port in resolver \"%s\"", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(a.String(), port)}, nil
	}
	if host == "" || lookup == nil {
		return nil, fmt.Errorf("invalid address in resolver \"%s\"", s)
	}
	addrs, err := lookup(host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("host not found in resolver \"%s\"", s)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = net.JoinHostPort(a.String(), port)
	}
	return out, nil
}

func parsePort(p string) (int, error) {
	n := 0
	if p == "" || len(p) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}
