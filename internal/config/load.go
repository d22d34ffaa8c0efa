package config

import (
	"fmt"
	"github.com/wsgate/wsgate/internal/gzipfilter"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// Options changes how Load reads a file.
type Options struct {
	Prefix string // -p; "" means the main file's directory
	// Globals are extra main-level directives (-g), parsed before the file.
	Globals string
	// Resolve looks host names up; nil means net.DefaultResolver. Tests
	// inject a table to map example host names to test addresses.
	Resolve func(host string) ([]netip.Addr, error)
	// Root reports whether the process runs as root (default listen port).
	Root bool
	// ErrorLog (-e) replaces the default error log, logs/error.log.
	ErrorLog string
}

// Load reads the file at path and every file it includes into a Config.
func Load(path string, opts Options) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	l := newLoader(abs, opts)
	ds, err := conf.ParseFile(abs, conf.Options{Warn: l.warnAt})
	if err != nil {
		return nil, err
	}
	return l.load(ds)
}

// LoadBytes reads src as if it were the file at name (for the embedded
// default and tests).
func LoadBytes(name string, src []byte, opts Options) (*Config, error) {
	l := newLoader(name, opts)
	ds, err := conf.Parse(name, src, conf.Options{Warn: l.warnAt})
	if err != nil {
		return nil, err
	}
	return l.load(ds)
}

type loader struct {
	cfg       *Config
	opts      Options
	upstreams map[string]*Upstream
	pending   []pendingProxy
	limits    []pendingLimit
	maps      []func() error
	mapNames  map[string]*conf.Directive
	seen      map[string]*conf.Directive // main-level "only once" directives
	eventsSet bool
	// ignoredModules are the modules load_module named and wsgate does
	// not have, each with where it was loaded.
	ignoredModules []string
}

type pendingProxy struct {
	d   *conf.Directive
	lc  *LocConf
	loc *Location
}

func newLoader(file string, opts Options) *loader {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = filepath.Dir(file)
	}
	cfg := &Config{
		File:              file,
		Prefix:            prefix,
		PID:               "logs/wsgate.pid",
		WorkerProcesses:   1,
		ErrorLogs:         nil,
		WorkerConnections: 512,
		Vars:              vars.NewTable(),
	}
	defineCoreVars(cfg)
	return &loader{
		cfg:       cfg,
		opts:      opts,
		upstreams: map[string]*Upstream{},
		mapNames:  map[string]*conf.Directive{},
		seen:      map[string]*conf.Directive{},
	}
}

func (l *loader) warnAt(file string, line int, msg string) {
	if file != "" {
		msg = fmt.Sprintf("%s in %s:%d", msg, file, line)
	}
	l.cfg.Warnings = append(l.cfg.Warnings, msg)
}

func (l *loader) warn(d *conf.Directive, format string, args ...any) {
	l.warnAt(d.File, d.Line, fmt.Sprintf(format, args...))
}

func (l *loader) load(ds []*conf.Directive) (*Config, error) {
	if l.opts.Globals != "" {
		gs, err := conf.Parse("command line", []byte(l.opts.Globals), conf.Options{})
		if err != nil {
			return nil, err
		}
		ds = append(gs, ds...)
	}
	if err := l.declare(ds); err != nil {
		return nil, err
	}
	main := &scope{kind: cMain}
	if err := l.block(ds, main); err != nil {
		return nil, err
	}
	for _, f := range l.maps {
		if err := f(); err != nil {
			return nil, err
		}
	}
	if l.cfg.HTTP != nil {
		if err := l.finishHTTP(); err != nil {
			return nil, err
		}
	}
	if len(l.cfg.ErrorLogs) == 0 {
		path := "logs/error.log"
		if l.opts.ErrorLog != "" {
			path = l.opts.ErrorLog
		}
		l.cfg.ErrorLogs = []ErrorLog{{Path: path, Level: LevelError}}
	}
	return l.cfg, nil
}

// declare runs before everything else so that templates can name a map or
// a `set` variable defined further down, as nginx allows.
func (l *loader) declare(ds []*conf.Directive) error {
	for _, d := range ds {
		if f := blockVars[d.Name]; f != nil {
			if err := f(l, d); err != nil {
				return err
			}
			continue
		}
		switch d.Name {
		case "map":
			if !d.IsBlock() || len(d.Args) != 2 {
				continue // reported with its position by the main pass
			}
			name, ok := varName(d.Args[1])
			if !ok {
				return conf.Errorf(d, "invalid variable name %q", d.Args[1])
			}
			if prev := l.mapNames[name]; prev != nil {
				return conf.Errorf(d, "the duplicate \"%s\" variable", name)
			}
			l.mapNames[name] = d
			spec, err := l.mapSpec(d, name)
			if err != nil {
				return err
			}
			f, err := l.cfg.Vars.DeclareMap(spec)
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
			l.maps = append(l.maps, func() error {
				if err := f(); err != nil {
					return conf.Errorf(d, "%v", err)
				}
				return nil
			})
		case "server_name":
			if err := l.declareServerName(d); err != nil {
				return err
			}
		case "set", "auth_request_set":
			l.cfg.LimitRateSet = l.cfg.LimitRateSet || len(d.Args) == 2 && d.Args[0] == "$limit_rate"
			if len(d.Args) == 2 {
				if name, ok := varName(d.Args[0]); ok {
					if _, err := l.cfg.Vars.DefineSet(name); err != nil {
						return conf.Errorf(d, "%v", err)
					}
				}
			}
		}
		if err := l.declareCaptures(d); err != nil {
			return err
		}
		if d.IsBlock() && d.Name != "map" {
			if err := l.declare(d.Block); err != nil {
				return err
			}
		}
	}
	return nil
}

func varName(s string) (string, bool) {
	if len(s) < 2 || s[0] != '$' {
		return "", false
	}
	for i := 1; i < len(s); i++ {
		if !(s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
			return "", false
		}
	}
	return s[1:], true
}

func (l *loader) mapSpec(d *conf.Directive, name string) (vars.MapSpec, error) {
	spec := vars.MapSpec{Source: d.Args[0], Result: name}
	seenDefault := false
	for _, e := range d.Block {
		if e.IsBlock() {
			return spec, conf.Errorf(e, "unexpected \"{\"")
		}
		switch {
		case e.Name == "hostnames" && len(e.Args) == 0:
			spec.Hostnames = true
			continue
		case e.Name == "volatile" && len(e.Args) == 0:
			continue
		case e.Name == "default" && len(e.Args) == 1 && !quoted(e, -1):
			if seenDefault {
				return spec, conf.Errorf(e, "duplicate default map parameter")
			}
			seenDefault = true
			spec.Default = e.Args[0]
			continue
		case e.Name == "include":
			return spec, conf.Errorf(e, "\"include\" inside \"map\" is not supported")
		}
		if len(e.Args) != 1 {
			return spec, conf.Errorf(e, "invalid number of the map parameters")
		}
		spec.Entries = append(spec.Entries, vars.MapEntry{Key: e.Name, Value: e.Args[0]})
	}
	return spec, nil
}

// quoted reports whether the directive's name (i = -1) or argument i was
// quoted; the parser records it so that `'default'` is a key, not a keyword.
func quoted(d *conf.Directive, i int) bool {
	if i < 0 {
		return false
	}
	return i < len(d.Quoted) && d.Quoted[i]
}

// scope is where a directive appears and what it configures.
type scope struct {
	kind   ctxMask
	server *Server
	loc    *Location
	lc     *LocConf
	ups    *Upstream
}

func (l *loader) block(ds []*conf.Directive, s *scope) error {
	for _, d := range ds {
		if err := l.directive(d, s); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) directive(d *conf.Directive, s *scope) error {
	spec, ok := table[d.Name]
	if !ok {
		return l.unknownDirective(d)
	}
	if spec.ctx&s.kind == 0 {
		return conf.Errorf(d, "\"%s\" directive is not allowed here", d.Name)
	}
	if !spec.either && spec.block != d.IsBlock() {
		if spec.block {
			return conf.Errorf(d, "directive \"%s\" has no opening \"{\"", d.Name)
		}
		return conf.Errorf(d, "directive \"%s\" is not terminated by \";\"", d.Name)
	}
	if len(d.Args) < spec.min || (spec.max >= 0 && len(d.Args) > spec.max) {
		return conf.Errorf(d, "invalid number of arguments in \"%s\" directive", d.Name)
	}
	if spec.once && s.kind == cMain {
		if prev := l.seen[d.Name]; prev != nil {
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
		l.seen[d.Name] = d
	}
	if spec.fn == nil {
		return nil // accepted for compatibility; see docs/directives.md
	}
	return spec.fn(l, d, s)
}

// finishHTTP resolves what could not be resolved in file order (proxy_pass
// to an upstream defined further down) and pushes inherited settings down.
func (l *loader) finishHTTP() error {
	h := l.cfg.HTTP
	if err := l.resolveLimits(); err != nil {
		return err
	}
	if err := l.checkRunTimeResolve(); err != nil {
		return err
	}
	if err := l.finishACME(); err != nil {
		return err
	}
	var badFormat error
	checkFormats := func(lc *LocConf) {
		for _, al := range lc.AccessLogs {
			if _, ok := h.LogFormats[al.Format]; !ok && al.Format != "combined" && badFormat == nil {
				badFormat = &conf.Error{File: al.File, Line: al.Line, Msg: fmt.Sprintf("unknown log format \"%s\"", al.Format)}
			}
		}
	}
	checkFormats(h.Loc)
	for _, srv := range h.Servers {
		srv.Walk(func(loc *Location) { checkFormats(loc.Conf) })
	}
	if badFormat != nil {
		return badFormat
	}
	for _, p := range l.pending {
		if err := l.resolveProxy(p); err != nil {
			return err
		}
		if hc := p.lc.HealthCheck; hc != nil && p.lc.Proxy != nil {
			u := p.lc.Proxy.Upstream
			if u == nil || u.Implicit {
				return &conf.Error{File: hc.File, Line: hc.Line, Msg: "\"health_check\" requires an upstream block with a name"}
			}
			if u.Health != nil && *u.Health != *hc {
				return &conf.Error{File: hc.File, Line: hc.Line, Msg: fmt.Sprintf("upstream \"%s\" already has a different health_check", u.Name)}
			}
			u.Health = hc
		}
	}
	if rb := h.ClusterRebalance; rb != nil && l.cfg.Cluster == nil {
		return &conf.Error{File: rb.File, Line: rb.Line, Msg: "\"cluster_rebalance\" needs a \"cluster_store\""}
	}
	for _, u := range h.Upstreams {
		if u.Method == "" {
			u.Method = "round_robin"
		}
		if u.KeepaliveTimeout == 0 {
			u.KeepaliveTimeout = 60 * time.Second
		}
		if u.KeepaliveRequests == 0 {
			u.KeepaliveRequests = 1000
		}
		if u.NTLM && u.Keepalive == 0 {
			return &conf.Error{File: u.File, Line: u.Line, Msg: "\"ntlm\" needs \"keepalive\" in upstream \"" + u.Name + "\""}
		}
		if u.Rebalance != nil && (u.Method == "ip_hash" || u.Method == "hash" || u.Sticky != nil || u.StickyLearn != nil) {
			// Clients would reconnect to the peer they just left.
			return &conf.Error{File: u.Rebalance.File, Line: u.Rebalance.Line, Msg: "\"websocket_rebalance\" cannot be used with ip_hash, hash or sticky"}
		}
	}
	for _, srv := range h.Servers {
		merge(srv.Loc.Conf, h.Loc)
		l.mergeTree(srv.Loc, srv.Loc.Conf)
		l.mergeTree(srv.Locations, srv.Loc.Conf)
		if len(srv.Listens) == 0 {
			port := 8000
			if l.opts.Root {
				port = 80
			}
			ap := netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))
			srv.Listens = append(srv.Listens, Listen{Addr: ap.String(), AddrPort: ap, File: srv.File, Line: srv.Line})
		}
		if len(srv.Names) == 0 {
			srv.Names = []ServerName{{Name: "", Kind: NameExact}}
		}
	}
	if err := l.buildProxySSL(); err != nil {
		return err
	}
	if err := mergeListens(h.Servers); err != nil {
		return err
	}
	l.conflictingNames(h.Servers)
	if err := l.checkBuffering(); err != nil {
		return err
	}
	if err := l.checkCluster(); err != nil {
		return err
	}
	if err := checkReauth(h); err != nil {
		return err
	}
	for _, srv := range h.Servers {
		applySSLOn(srv)
		for _, ls := range srv.Listens {
			c := srv.Loc.Conf.SSL
			if (ls.SSL || ls.QUIC) && len(c.Certs) == 0 && !c.RejectHandshake {
				return &conf.Error{File: ls.File, Line: ls.Line, Msg: "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"}
			}
			if ls.SSL && len(c.Keys) != len(c.Certs) {
				return &conf.Error{File: srv.File, Line: srv.Line, Msg: "no \"ssl_certificate_key\" is defined for certificate \"" + c.Certs[min(len(c.Keys), len(c.Certs)-1)] + "\""}
			}
		}
	}
	var compressErr error
	for _, srv := range h.Servers {
		srv.Walk(func(loc *Location) {
			if err := checkCompression(loc.Conf); err != nil && compressErr == nil {
				compressErr = err
			}
		})
	}
	if compressErr != nil {
		return compressErr
	}
	for _, srv := range h.Servers {
		authURIs := authTargets(srv)
		srv.Walk(func(loc *Location) {
			if loc.Modifier == "if" || loc.Modifier == "limit_except" || loc == srv.Locations || loc == srv.Loc || authURIs[loc.Path] {
				return
			}
			c := loc.Conf
			if c.Proxy == nil {
				return
			}
			if !hasHeader(c.ProxyHeaders, "Upgrade") || !hasHeader(c.ProxyHeaders, "Connection") || c.ProxyHTTPVersion != "1.1" {
				l.warnAt(loc.File, loc.Line, fmt.Sprintf("location \"%s\" proxies without \"proxy_http_version 1.1\" and \"proxy_set_header Upgrade/Connection\": WebSocket handshakes through it will fail, as with nginx", loc.Path))
			}
		})
	}
	return nil
}

func hasHeader(hs []Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// Walk calls f for every location of s: the server-level pseudo-location,
// the root of its location tree, every nested location and every if block.
// Several of them may share one LocConf.
func (s *Server) Walk(f func(*Location)) {
	walk(s.Loc, f)
	walk(s.Locations, f)
}

func walk(loc *Location, f func(*Location)) {
	f(loc)
	for _, c := range loc.Children {
		walk(c, f)
	}
	for _, op := range loc.Rewrite {
		if op.Kind == OpIf {
			walk(op.If, f)
		}
	}
	if loc.LimitExcept != nil {
		walk(loc.LimitExcept.Loc, f)
	}
}

func (l *loader) mergeTree(loc *Location, parent *LocConf) {
	if loc.Conf != parent {
		merge(loc.Conf, parent)
	}
	for _, c := range loc.Children {
		l.mergeTree(c, loc.Conf)
	}
	for _, op := range loc.Rewrite {
		if op.Kind == OpIf {
			l.mergeTree(op.If, loc.Conf)
			if c := op.If.Conf; c.Proxy == nil {
				c.Proxy = loc.Conf.Proxy // an if block proxies as its location, as nginx
			}
		}
	}
	if le := loc.LimitExcept; le != nil {
		l.mergeTree(le.Loc, loc.Conf)
		// The location's content handler serves the block's methods too.
		if c := le.Loc.Conf; c.Proxy == nil {
			c.Proxy, c.StubStatus, c.Status = loc.Conf.Proxy, loc.Conf.StubStatus, loc.Conf.Status
		}
	}
}

func defaultLocConf() *LocConf {
	c := &LocConf{
		ProxyHTTPVersion:  "1.0",
		ConnectTimeout:    60 * time.Second,
		ReadTimeout:       60 * time.Second,
		SendTimeout:       60 * time.Second,
		Buffering:         true,
		RequestBuffering:  true,
		BufferSize:        4096,
		Buffers:           [2]int{8, 4096},
		KeepaliveTimeout:  75 * time.Second,
		KeepaliveRequests: 1000,
		TCPNoDelay:        true,
		Files:             defaultFiles(),
		Gzip:              gzipfilter.Default(),
		Index:             []string{"index.html"},
		ClientMaxBody:     1 << 20,
		ClientBodyBuffer:  16 << 10,
		ClientBodyTemp:    "client_body_temp",
		WebSocketFrames:   true,
		ServerTokens:      true,
		DefaultType:       "text/plain",
		HTTP3:             true,
		NextUpstream:      NextUpstream{Mask: NextError | NextTimeout},
		LimitReqStatus:    503,
		LimitReqLog:       LevelError,
		LimitConnStatus:   503,
		LimitConnLog:      LevelError,
		RealIPHeader:      "X-Real-IP",
		UninitWarn:        true,
		SSL:               SSL{Protocols: []string{"TLSv1.2", "TLSv1.3"}, Ciphers: "HIGH:!aNULL:!MD5", SessionCache: "none", SessionTimeout: 5 * time.Minute, SessionTickets: true},
		Client: ClientLimits{HeaderTimeout: 60 * time.Second, BodyTimeout: 60 * time.Second, HeaderBufferSize: 1024,
			LargeBuffers: [2]int{4, 8192}, SendTimeout: 60 * time.Second},
		WS:         WebSocket{PingTimeout: 10 * time.Second, DrainPeriod: 5 * time.Second},
		AccessLogs: []AccessLog{{Path: "logs/access.log", Format: "combined"}},
		set:        map[string]bool{},
	}
	coreDefaults(c)
	proxySSLDefaults(c)
	proxyBufferingDefaults(c)
	cacheDefaults(c)
	return c
}

func newLocConf() *LocConf { return &LocConf{set: map[string]bool{}} }

// merge fills every setting c did not write with parent's, nginx's
// ngx_conf_merge_* rule; arrays (proxy_set_header, add_header) are
// inherited only when c wrote none of them.
func merge(c, p *LocConf) {
	for name, copyFn := range mergers {
		if !c.set[name] {
			copyFn(c, p)
			if p.set[name] {
				c.set[name] = true // so a grandchild sees it as written above
			}
		}
	}
}

var mergers = map[string]func(c, p *LocConf){
	"proxy_pass":                  func(c, p *LocConf) {},
	"proxy_http_version":          func(c, p *LocConf) { c.ProxyHTTPVersion = p.ProxyHTTPVersion },
	"proxy_set_header":            func(c, p *LocConf) { c.ProxyHeaders = p.ProxyHeaders },
	"proxy_connect_timeout":       func(c, p *LocConf) { c.ConnectTimeout = p.ConnectTimeout },
	"proxy_read_timeout":          func(c, p *LocConf) { c.ReadTimeout = p.ReadTimeout },
	"proxy_send_timeout":          func(c, p *LocConf) { c.SendTimeout = p.SendTimeout },
	"proxy_buffering":             func(c, p *LocConf) { c.Buffering = p.Buffering },
	"proxy_request_buffering":     func(c, p *LocConf) { c.RequestBuffering = p.RequestBuffering },
	"proxy_buffer_size":           func(c, p *LocConf) { c.BufferSize = p.BufferSize },
	"proxy_buffers":               func(c, p *LocConf) { c.Buffers = p.Buffers },
	"add_header":                  func(c, p *LocConf) { c.AddHeaders = p.AddHeaders },
	"keepalive_timeout":           func(c, p *LocConf) { c.KeepaliveTimeout = p.KeepaliveTimeout },
	"keepalive_requests":          func(c, p *LocConf) { c.KeepaliveRequests = p.KeepaliveRequests },
	"tcp_nodelay":                 func(c, p *LocConf) { c.TCPNoDelay = p.TCPNoDelay },
	"index":                       func(c, p *LocConf) { c.Index = p.Index },
	"error_log":                   func(c, p *LocConf) { c.ErrorLogs = p.ErrorLogs },
	"client_max_body_size":        func(c, p *LocConf) { c.ClientMaxBody = p.ClientMaxBody },
	"client_body_buffer_size":     func(c, p *LocConf) { c.ClientBodyBuffer = p.ClientBodyBuffer },
	"client_body_temp_path":       func(c, p *LocConf) { c.ClientBodyTemp = p.ClientBodyTemp },
	"websocket_frames":            func(c, p *LocConf) { c.WebSocketFrames = p.WebSocketFrames },
	"server_tokens":               func(c, p *LocConf) { c.ServerTokens = p.ServerTokens },
	"proxy_next_upstream":         func(c, p *LocConf) { c.NextUpstream.Mask = p.NextUpstream.Mask },
	"limit_req":                   func(c, p *LocConf) { c.LimitReq = p.LimitReq },
	"ssl_certificate":             func(c, p *LocConf) { c.SSL.Certs = p.SSL.Certs },
	"http2":                       func(c, p *LocConf) { c.HTTP2 = p.HTTP2 },
	"http3":                       func(c, p *LocConf) { c.HTTP3 = p.HTTP3 },
	"quic_retry":                  func(c, p *LocConf) { c.QUICRetry = p.QUICRetry },
	"ssl_certificate_key":         func(c, p *LocConf) { c.SSL.Keys = p.SSL.Keys },
	"ssl_protocols":               func(c, p *LocConf) { c.SSL.Protocols = p.SSL.Protocols },
	"ssl_ciphers":                 func(c, p *LocConf) { c.SSL.Ciphers = p.SSL.Ciphers },
	"ssl_prefer_server_ciphers":   func(c, p *LocConf) { c.SSL.PreferServerCiphers = p.SSL.PreferServerCiphers },
	"ssl_ecdh_curve":              func(c, p *LocConf) { c.SSL.ECDHCurve = p.SSL.ECDHCurve },
	"ssl_session_cache":           func(c, p *LocConf) { c.SSL.SessionCache = p.SSL.SessionCache },
	"ssl_session_timeout":         func(c, p *LocConf) { c.SSL.SessionTimeout = p.SSL.SessionTimeout },
	"ssl_session_tickets":         func(c, p *LocConf) { c.SSL.SessionTickets = p.SSL.SessionTickets },
	"ssl_stapling":                func(c, p *LocConf) { c.SSL.Stapling = p.SSL.Stapling },
	"ssl_stapling_verify":         func(c, p *LocConf) { c.SSL.StaplingVerify = p.SSL.StaplingVerify },
	"ssl_trusted_certificate":     func(c, p *LocConf) { c.SSL.TrustedCertificate = p.SSL.TrustedCertificate },
	"ssl_stapling_file":           func(c, p *LocConf) { c.SSL.StaplingFile = p.SSL.StaplingFile },
	"ssl_stapling_responder":      func(c, p *LocConf) { c.SSL.StaplingResponder = p.SSL.StaplingResponder },
	"client_header_timeout":       func(c, p *LocConf) { c.Client.HeaderTimeout = p.Client.HeaderTimeout },
	"client_body_timeout":         func(c, p *LocConf) { c.Client.BodyTimeout = p.Client.BodyTimeout },
	"client_header_buffer_size":   func(c, p *LocConf) { c.Client.HeaderBufferSize = p.Client.HeaderBufferSize },
	"large_client_header_buffers": func(c, p *LocConf) { c.Client.LargeBuffers = p.Client.LargeBuffers },
	"send_timeout":                func(c, p *LocConf) { c.Client.SendTimeout = p.Client.SendTimeout },
	"reset_timedout_connection":   func(c, p *LocConf) { c.Client.ResetTimedOut = p.Client.ResetTimedOut },
	"websocket_ping_interval":     func(c, p *LocConf) { c.WS.PingInterval = p.WS.PingInterval },
	"websocket_ping_timeout":      func(c, p *LocConf) { c.WS.PingTimeout = p.WS.PingTimeout },
	"websocket_max_frame_size":    func(c, p *LocConf) { c.WS.MaxFrameSize = p.WS.MaxFrameSize },
	"websocket_max_message_size":  func(c, p *LocConf) { c.WS.MaxMessageSize = p.WS.MaxMessageSize },
	"websocket_message_rate": func(c, p *LocConf) {
		c.WS.MessageRate, c.WS.MessageBurst, c.WS.RateBoth = p.WS.MessageRate, p.WS.MessageBurst, p.WS.RateBoth
	},
	"websocket_allowed_origins": func(c, p *LocConf) { c.WS.Origins = p.WS.Origins },
	"websocket_subprotocols":    func(c, p *LocConf) { c.WS.Subprotocols = p.WS.Subprotocols },
	"websocket_drain_period":    func(c, p *LocConf) { c.WS.DrainPeriod = p.WS.DrainPeriod },
	"websocket_validate":        func(c, p *LocConf) { c.WS.Strict = p.WS.Strict },
	"websocket_message_metrics": func(c, p *LocConf) { c.WS.MessageMetrics = p.WS.MessageMetrics },
	"websocket_compression": func(c, p *LocConf) {
		c.WS.Compression.Mode, c.WS.Compression.File, c.WS.Compression.Line = p.WS.Compression.Mode, p.WS.Compression.File, p.WS.Compression.Line
	},
	"websocket_compression_level":            func(c, p *LocConf) { c.WS.Compression.Level = p.WS.Compression.Level },
	"websocket_capture_path":                 func(c, p *LocConf) { c.WS.CapturePath = p.WS.CapturePath },
	"websocket_compression_context_takeover": func(c, p *LocConf) { c.WS.Compression.ContextTakeover = p.WS.Compression.ContextTakeover },
	"websocket_compression_window_bits":      func(c, p *LocConf) { c.WS.Compression.WindowBits = p.WS.Compression.WindowBits },
	"websocket_max_session_time": func(c, p *LocConf) {
		c.WS.MaxSession, c.WS.SessionJitter, c.WS.SessionCode = p.WS.MaxSession, p.WS.SessionJitter, p.WS.SessionCode
	},
	"access_log":                  func(c, p *LocConf) { c.AccessLogs, c.AccessLogOff = p.AccessLogs, p.AccessLogOff },
	"limit_req_status":            func(c, p *LocConf) { c.LimitReqStatus = p.LimitReqStatus },
	"limit_req_log_level":         func(c, p *LocConf) { c.LimitReqLog = p.LimitReqLog },
	"limit_req_dry_run":           func(c, p *LocConf) { c.LimitReqDryRun = p.LimitReqDryRun },
	"limit_conn":                  func(c, p *LocConf) { c.LimitConn = p.LimitConn },
	"limit_conn_status":           func(c, p *LocConf) { c.LimitConnStatus = p.LimitConnStatus },
	"limit_conn_log_level":        func(c, p *LocConf) { c.LimitConnLog = p.LimitConnLog },
	"limit_conn_dry_run":          func(c, p *LocConf) { c.LimitConnDryRun = p.LimitConnDryRun },
	"access":                      func(c, p *LocConf) { c.Access = p.Access },
	"set_real_ip_from":            func(c, p *LocConf) { c.RealIPFrom = p.RealIPFrom },
	"real_ip_header":              func(c, p *LocConf) { c.RealIPHeader = p.RealIPHeader },
	"real_ip_recursive":           func(c, p *LocConf) { c.RealIPRecursive = p.RealIPRecursive },
	"proxy_next_upstream_tries":   func(c, p *LocConf) { c.NextUpstream.Tries = p.NextUpstream.Tries },
	"proxy_next_upstream_timeout": func(c, p *LocConf) { c.NextUpstream.Timeout = p.NextUpstream.Timeout },
}

// resolveProxy compiles a proxy_pass once every upstream is known.
func (l *loader) resolveProxy(p pendingProxy) error {
	d := p.d
	raw := d.Args[0]
	tpl, err := l.cfg.Vars.Compile(raw)
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	pp := &ProxyPass{}
	if !tpl.IsConst() {
		return l.dynamicProxy(p, tpl)
	}
	var rest string
	switch {
	case strings.HasPrefix(raw, "http://"):
		pp.Scheme, rest = "http", raw[len("http://"):]
	case strings.HasPrefix(raw, "https://"):
		pp.Scheme, rest = "https", raw[len("https://"):]
	default:
		return conf.Errorf(d, "invalid URL prefix in \"%s\"", raw)
	}
	hostport, uri, hasURI := splitProxyURL(rest)
	if hostport == "" {
		return conf.Errorf(d, "no host in \"%s\"", raw)
	}
	pp.HostPort, pp.URI, pp.HasURI = hostport, uri, hasURI
	loc := p.loc
	if hasURI && loc != nil && (loc.Modifier == "~" || loc.Modifier == "~*" || loc.Modifier == "if" || loc.Modifier == "@" || loc.Modifier == "limit_except") {
		return conf.Errorf(d, "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block")
	}
	if path, ok := strings.CutPrefix(hostport, "unix:"); ok {
		if path == "" {
			return conf.Errorf(d, "no path in the unix domain socket")
		}
		pp.Upstream = l.unixUpstream(d, hostport)
		pp.HostPort = "localhost" // nginx's $proxy_host for a unix socket
	} else if u, ok := l.upstreams[hostport]; ok {
		pp.Upstream = u
	} else {
		u, err := l.implicitUpstream(d, defaultPort(hostport, pp.Scheme))
		if err != nil {
			return err
		}
		pp.Upstream = u
	}
	p.lc.Proxy = pp
	return nil
}

func (l *loader) implicitUpstream(d *conf.Directive, hostport string) (*Upstream, error) {
	if u, ok := l.upstreams["\x00"+hostport]; ok {
		return u, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, "80"
	}
	addrs, err := l.resolve(host)
	if err != nil {
		return nil, conf.Errorf(d, "host not found in upstream \"%s\"", hostport)
	}
	u := &Upstream{Name: hostport, Implicit: true, Method: "round_robin", File: d.File, Line: d.Line}
	for _, a := range addrs {
		u.Servers = append(u.Servers, UpstreamServer{Name: hostport, Addr: net.JoinHostPort(a.String(), port), Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second})
	}
	l.upstreams["\x00"+hostport] = u
	return u, nil
}

func (l *loader) resolve(host string) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if l.opts.Resolve != nil {
		return l.opts.Resolve(host)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("host not found")
	}
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// Abs resolves a path from the prefix, as nginx does for logs, pid and root.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "stderr" || strings.HasPrefix(p, "/dev/") {
		return p
	}
	return filepath.Join(c.Prefix, p)
}
