package config

import (
	"errors"
	"io/fs"
	"net"
	"os"

	"github.com/wsgate/wsgate/internal/conf"
	"strconv"
	"strings"
	"time"
)

// Readers of the upstream block and of the proxy_next_upstream family.

func dUpstream(l *loader, d *conf.Directive, s *scope) error {
	name := d.Args[0]
	if _, dup := l.upstreams[name]; dup {
		return conf.Errorf(d, "duplicate upstream \"%s\"", name)
	}
	u := &Upstream{Name: name, File: d.File, Line: d.Line}
	l.upstreams[name] = u
	l.cfg.HTTP.Upstreams = append(l.cfg.HTTP.Upstreams, u)
	if err := l.block(d.Block, &scope{kind: cUpstream, ups: u}); err != nil {
		return err
	}
	if u.State != "" {
		return l.readState(d, u)
	}
	if len(u.Servers) == 0 {
		return conf.Errorf(d, "no servers are inside upstream")
	}
	return nil
}

// dState reads "state FILE" (nginx Plus): the upstream's servers live in
// FILE, which the api rewrites after each change.
func dState(l *loader, d *conf.Directive, s *scope) error {
	if s.ups.State != "" {
		return conf.Errorf(d, "\"state\" directive is duplicate")
	}
	if len(s.ups.Servers) > 0 {
		return conf.Errorf(d, "\"state\" directive is incompatible with \"server\"")
	}
	s.ups.State = l.cfg.Abs(d.Args[0])
	return nil
}

// readState loads the server lines of u's state file; a file that does not
// exist yet is an upstream without servers, as nginx Plus starts one.
func (l *loader) readState(d *conf.Directive, u *Upstream) error {
	if len(u.Servers) > 0 {
		return conf.Errorf(d, "\"state\" directive is incompatible with \"server\"")
	}
	if u.Zone == "" {
		return conf.Errorf(d, "upstream \"%s\" has \"state\" but no \"zone\"", u.Name)
	}
	src, err := os.ReadFile(u.State)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return conf.Errorf(d, "cannot read state file \"%s\": %v", u.State, err)
	}
	dirs, err := conf.Parse(u.State, src, conf.Options{})
	if err != nil {
		return err
	}
	sc := &scope{kind: cUpstream, ups: u}
	for _, sd := range dirs {
		if sd.Name != "server" {
			return conf.Errorf(sd, "unexpected \"%s\" in state file", sd.Name)
		}
		if err := dUpstreamServer(l, sd, sc); err != nil {
			return err
		}
	}
	return nil
}

func dKeepalive(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 1 {
		return conf.Errorf(d, "invalid value \"%s\" in \"keepalive\" directive", d.Args[0])
	}
	s.ups.Keepalive = n
	return nil
}

func dUpstreamServer(l *loader, d *conf.Directive, s *scope) error {
	if d.IsBlock() {
		return conf.Errorf(d, "directive \"server\" is not terminated by \";\"")
	}
	if len(d.Args) < 1 {
		return conf.Errorf(d, "invalid number of arguments in \"server\" directive")
	}
	us := UpstreamServer{Name: d.Args[0], Weight: 1, MaxFails: 1, FailTimeout: 10e9}
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "weight":
			us.Weight, err = intAtLeast(v, 1)
		case "max_fails":
			us.MaxFails, err = intAtLeast(v, 0)
		case "fail_timeout":
			us.FailTimeout, err = ParseDuration(v)
		case "backup":
			us.Backup = true
		case "down":
			us.Down = true
		case "max_conns":
			us.MaxConns, err = intAtLeast(v, 0)
		case "slow_start":
			us.SlowStart, err = ParseDuration(v)
		case "resolve":
			us.Resolve = true
		case "service":
			us.Service = v
			if v == "" {
				err = errBadValue
			}
		case "drain":
			us.Drain = true
		case "route":
			us.Route = v
			if v == "" || len(v) > 32 {
				err = errBadValue
			}
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if err != nil {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	if us.Backup && s.ups.Method != "" && s.ups.Method != "round_robin" && s.ups.Method != "least_conn" && s.ups.Method != "least_time" {
		return conf.Errorf(d, "balancing method does not support parameter \"backup\"")
	}
	if err := upstreamServerResolve(d, &us); err != nil {
		return err
	}
	if us.Resolve {
		s.ups.Servers = append(s.ups.Servers, us) // resolved at run time
		return nil
	}
	if path, ok := strings.CutPrefix(us.Name, "unix:"); ok {
		if path == "" {
			return conf.Errorf(d, "no path in the unix domain socket")
		}
		us.Addr = us.Name
		s.ups.Servers = append(s.ups.Servers, us)
		return nil
	}
	host, port, err := net.SplitHostPort(us.Name)
	if err != nil {
		host, port = us.Name, "80"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return conf.Errorf(d, "invalid port in upstream \"%s\"", us.Name)
	}
	addrs, err := l.resolve(host)
	if err != nil {
		return conf.Errorf(d, "host not found in upstream \"%s\"", us.Name)
	}
	for _, a := range addrs {
		x := us
		x.Addr = net.JoinHostPort(a.String(), port)
		s.ups.Servers = append(s.ups.Servers, x)
	}
	return nil
}

func dMethod(l *loader, d *conf.Directive, s *scope) error {
	u := s.ups
	if u.Method != "" {
		return conf.Errorf(d, "load balancing method redefined")
	}
	for _, srv := range u.Servers {
		if srv.Backup && d.Name != "least_conn" && d.Name != "least_time" {
			return conf.Errorf(d, "balancing method does not support parameter \"backup\"")
		}
	}
	u.Method = d.Name
	switch d.Name {
	case "hash":
		t, err := l.cfg.Vars.Compile(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		u.HashKey = t
		if len(d.Args) == 2 {
			if d.Args[1] != "consistent" {
				return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
			}
			u.HashConsistent = true
		}
	case "least_time":
		switch d.Args[0] {
		case "header":
		case "last_byte":
			u.LeastTimeLastByte = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
		}
		if len(d.Args) == 2 && d.Args[1] != "inflight" {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
		}
	case "random":
		switch {
		case len(d.Args) == 0:
		case d.Args[0] == "two" && (len(d.Args) == 1 || d.Args[1] == "least_conn"):
			u.RandomTwo = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", strings.Join(d.Args, " "))
		}
	}
	return nil
}

// dZone accepts nginx's shared-memory zone for an upstream: wsgate keeps
// peer state in the process, so the size only needs to be valid. An
// upstream with a zone can be changed through the api, and its servers
// may `resolve`.
func dZone(l *loader, d *conf.Directive, s *scope) error {
	s.ups.Zone = d.Args[0]
	if len(d.Args) == 2 {
		if _, err := ParseSize(d.Args[1]); err != nil {
			return conf.Errorf(d, "invalid zone size \"%s\"", d.Args[1])
		}
	}
	return nil
}

// dQueue reads nginx Plus's `queue number [timeout=time]`.
func dQueue(l *loader, d *conf.Directive, s *scope) error {
	if s.ups.Queue > 0 {
		return conf.Errorf(d, "\"queue\" directive is duplicate")
	}
	n, err := intAtLeast(d.Args[0], 1)
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"queue\" directive", d.Args[0])
	}
	s.ups.Queue, s.ups.QueueTimeout = n, 60*time.Second
	if len(d.Args) == 2 {
		v, ok := strings.CutPrefix(d.Args[1], "timeout=")
		t, err := ParseDuration(v)
		if !ok || err != nil || t <= 0 {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
		}
		s.ups.QueueTimeout = t
	}
	return nil
}

// dHealthCheck reads `health_check [interval=T] [fails=N] [passes=N]
// [uri=/path] [port=N] [type=websocket]`, inside an upstream (as the guide
// writes it) or a location (as nginx Plus does).
func dHealthCheck(l *loader, d *conf.Directive, s *scope) error {
	hc := &HealthCheck{Interval: 5 * time.Second, Fails: 1, Passes: 1, URI: "/", File: d.File, Line: d.Line}
	for _, a := range d.Args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "interval":
			hc.Interval, err = ParseDuration(v)
			if hc.Interval <= 0 {
				err = errBadValue
			}
		case "fails":
			hc.Fails, err = intAtLeast(v, 1)
		case "passes":
			hc.Passes, err = intAtLeast(v, 1)
		case "uri":
			hc.URI = v
			if !strings.HasPrefix(v, "/") {
				err = errBadValue
			}
		case "port":
			hc.Port, err = strconv.Atoi(v)
			if hc.Port < 1 || hc.Port > 65535 {
				err = errBadValue
			}
		case "type":
			switch v {
			case "websocket":
				hc.WebSocket = true
			case "http":
			default:
				err = errBadValue
			}
		case "mandatory", "persistent", "match", "jitter", "keepalive_time":
			return conf.Errorf(d, "health_check parameter \"%s\" is not supported", k)
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if err != nil {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	if s.kind == cUpstream {
		if s.ups.Health != nil {
			return conf.Errorf(d, "\"health_check\" directive is duplicate")
		}
		s.ups.Health = hc
		return nil
	}
	s.lc.HealthCheck = hc
	return s.lc.mark(d, "health_check")
}

func dNextUpstream(l *loader, d *conf.Directive, s *scope) error {
	var m uint16
	for _, a := range d.Args {
		bit, ok := nextNames[a]
		if !ok {
			return conf.Errorf(d, "invalid value \"%s\"", a)
		}
		m |= bit
	}
	if m&NextOff != 0 && m != NextOff {
		return conf.Errorf(d, "invalid value \"off\"")
	}
	s.lc.NextUpstream.Mask = m
	return s.lc.mark(d, "proxy_next_upstream")
}

func dNextUpstreamTries(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 {
		return conf.Errorf(d, "invalid number \"%s\"", d.Args[0])
	}
	s.lc.NextUpstream.Tries = n
	return s.lc.mark(d, "proxy_next_upstream_tries")
}

func dNextUpstreamTimeout(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"proxy_next_upstream_timeout\" directive invalid value")
	}
	s.lc.NextUpstream.Timeout = v
	return s.lc.mark(d, "proxy_next_upstream_timeout")
}

// dSticky reads `sticky cookie name [expires=T|max] [domain=D] [path=P]
// [httponly] [secure] [samesite=strict|lax|none]`.
func dSticky(l *loader, d *conf.Directive, s *scope) error {
	if s.ups.Sticky != nil || s.ups.StickyRoute != nil || s.ups.StickyLearn != nil {
		return conf.Errorf(d, "\"sticky\" directive is duplicate")
	}
	if d.Args[0] == "learn" {
		return l.stickyLearn(d, s)
	}
	if d.Args[0] == "route" {
		for _, a := range d.Args[1:] {
			t, err := l.cfg.Vars.Compile(a)
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
			s.ups.StickyRoute = append(s.ups.StickyRoute, t)
		}
		return nil
	}
	if d.Args[0] != "cookie" {
		return conf.Errorf(d, "invalid sticky type \"%s\"", d.Args[0])
	}
	if s.ups.Sticky != nil {
		return conf.Errorf(d, "\"sticky\" directive is duplicate")
	}
	sc := &StickyCookie{Name: d.Args[1]}
	if !validHeaderName(sc.Name) {
		return conf.Errorf(d, "invalid cookie name \"%s\"", sc.Name)
	}
	for _, a := range d.Args[2:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "expires":
			if v == "max" {
				sc.Expires = -1
			} else if sc.Expires, err = ParseDuration(v); err == nil && sc.Expires <= 0 {
				err = errBadValue
			}
		case "domain":
			sc.Domain = v
		case "path":
			sc.Path = v
		case "httponly":
			sc.HTTPOnly = true
		case "secure":
			sc.Secure = true
		case "samesite":
			switch strings.ToLower(v) {
			case "strict", "lax", "none":
				sc.SameSite = strings.ToUpper(v[:1]) + strings.ToLower(v[1:])
			default:
				err = errBadValue
			}
		default:
			err = errBadValue
		}
		if err != nil || (k != "httponly" && k != "secure" && v == "") {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	s.ups.Sticky = sc
	return nil
}

// dRebalance reads `websocket_rebalance [threshold=P%] [rate=N/s]`.
func dRebalance(l *loader, d *conf.Directive, s *scope) error {
	rb, err := rebalanceArgs(d)
	if err != nil {
		return err
	}
	s.ups.Rebalance = rb
	return nil
}

// rebalanceArgs reads "[threshold=P%] [rate=N/s]" (websocket_rebalance
// and cluster_rebalance): 20% and 1/s by default.
func rebalanceArgs(d *conf.Directive) (*Rebalance, error) {
	rb := &Rebalance{Threshold: 0.2, Rate: 1, File: d.File, Line: d.Line}
	for _, a := range d.Args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "threshold":
			p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if err != nil || !strings.HasSuffix(v, "%") || p <= 0 || p > 1000 {
				return nil, conf.Errorf(d, "invalid parameter \"%s\"", a)
			}
			rb.Threshold = p / 100
		case "rate":
			r, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
			if err != nil || !strings.HasSuffix(v, "/s") || r <= 0 {
				return nil, conf.Errorf(d, "invalid parameter \"%s\"", a)
			}
			rb.Rate = r
		default:
			return nil, conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	return rb, nil
}

func dKeepaliveRequests(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 1 {
		return conf.Errorf(d, "invalid value \"%s\" in \"keepalive_requests\" directive", d.Args[0])
	}
	if s.kind == cUpstream {
		s.ups.KeepaliveRequests = n
		return nil
	}
	s.lc.KeepaliveRequests = n
	return s.lc.mark(d, d.Name)
}
