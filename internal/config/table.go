package config

import (
	"maps"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
)

type ctxMask uint16

const (
	cMain ctxMask = 1 << iota
	cEvents
	cHTTP
	cServer
	cLocation
	cLocIf
	cSrvIf
	cUpstream
	cTypes
)

const (
	cLoc    = cLocation | cLocIf
	cHSL    = cHTTP | cServer | cLocation
	cHSLIf  = cHSL | cLocIf
	cAnyRew = cServer | cLocation | cLocIf | cSrvIf
)

type dirSpec struct {
	ctx      ctxMask
	min, max int // argument count; max -1 means any
	block    bool
	either   bool // block or simple; fn decides (server)
	once     bool
	fn       func(l *loader, d *conf.Directive, s *scope) error
}

var table map[string]dirSpec

// blockVars declares the variables of blocks such as `geo` and
// `split_clients` before the main pass, so that any template may name
// them; the main pass leaves their contents alone.
var blockVars = map[string]func(l *loader, d *conf.Directive) error{}

func init() {
	noop := func(*loader, *conf.Directive, *scope) error { return nil }
	table = map[string]dirSpec{
		// main
		"worker_processes":     {ctx: cMain, min: 1, max: 1, once: true, fn: dWorkerProcesses},
		"error_log":            {ctx: cMain | cHSL, min: 1, max: 2, fn: dErrorLog},
		"pid":                  {ctx: cMain, min: 1, max: 1, once: true, fn: func(l *loader, d *conf.Directive, s *scope) error { l.cfg.PID = d.Args[0]; return nil }},
		"user":                 {ctx: cMain, min: 1, max: 2, once: true, fn: dUser},
		"daemon":               {ctx: cMain, min: 1, max: 1, once: true, fn: dDaemon},
		"worker_rlimit_nofile": {ctx: cMain, min: 1, max: 1, once: true, fn: dRlimitNoFile},
		"pcre_jit":             {ctx: cMain, min: 1, max: 1, fn: noop},
		"events":               {ctx: cMain, block: true, once: true, fn: dEvents},
		"worker_connections":   {ctx: cEvents, min: 1, max: 1, fn: dWorkerConnections},
		"use":                  {ctx: cEvents, min: 1, max: 1, fn: noop},
		"multi_accept":         {ctx: cEvents, min: 1, max: 1, fn: noop},
		"accept_mutex":         {ctx: cEvents, min: 1, max: 1, fn: noop},
		"http":                 {ctx: cMain, block: true, once: true, fn: dHTTP},

		"worker_shutdown_timeout": {ctx: cMain, min: 1, max: 1, once: true, fn: dWorkerShutdownTimeout},

		"websocket_upgrade_drain_period": {ctx: cMain, min: 1, max: 1, once: true, fn: dUpgradeDrainPeriod},

		// http
		"server":               {ctx: cHTTP | cUpstream, min: 0, max: -1, either: true, fn: dServer},
		"upstream":             {ctx: cHTTP, min: 1, max: 1, block: true, fn: dUpstream},
		"map":                  {ctx: cHTTP, min: 2, max: 2, block: true, fn: noop}, // declared in the first pass
		"sendfile":             {ctx: cHSLIf, min: 1, max: 1, fn: noop},
		"tcp_nopush":           {ctx: cHSL, min: 1, max: 1, fn: noop},
		"tcp_nodelay":          {ctx: cHSL, min: 1, max: 1, fn: flag("tcp_nodelay", func(c *LocConf) *bool { return &c.TCPNoDelay })},
		"keepalive_timeout":    {ctx: cHSL | cUpstream, min: 1, max: 2, fn: dKeepaliveTimeout},
		"client_max_body_size": {ctx: cHSL, min: 1, max: 1, fn: dClientMaxBody},

		// server
		"listen":      {ctx: cServer, min: 1, max: -1, fn: dListen},
		"server_name": {ctx: cServer, min: 1, max: -1, fn: dServerName},
		"location":    {ctx: cServer | cLocation, min: 1, max: 2, block: true, fn: dLocation},

		// rewrite
		"return": {ctx: cAnyRew, min: 1, max: 2, fn: dReturn},
		"set":    {ctx: cAnyRew, min: 2, max: 2, fn: dSet},
		"if":     {ctx: cServer | cLocation, min: 1, max: -1, block: true, fn: dIf},
		"break":  {ctx: cAnyRew, min: 0, max: 0, fn: dBreak},

		// proxy
		"proxy_pass":              {ctx: cLoc | cLmt, min: 1, max: 1, fn: dProxyPass},
		"proxy_http_version":      {ctx: cHSL, min: 1, max: 1, fn: dProxyHTTPVersion},
		"proxy_set_header":        {ctx: cHSL, min: 2, max: 2, fn: dProxySetHeader},
		"proxy_connect_timeout":   {ctx: cHSL, min: 1, max: 1, fn: duration("proxy_connect_timeout", func(c *LocConf) *durationField { return &c.ConnectTimeout })},
		"proxy_read_timeout":      {ctx: cHSL, min: 1, max: 1, fn: duration("proxy_read_timeout", func(c *LocConf) *durationField { return &c.ReadTimeout })},
		"proxy_send_timeout":      {ctx: cHSL, min: 1, max: 1, fn: duration("proxy_send_timeout", func(c *LocConf) *durationField { return &c.SendTimeout })},
		"proxy_buffering":         {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_buffering", func(c *LocConf) *bool { return &c.Buffering })},
		"proxy_request_buffering": {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_request_buffering", func(c *LocConf) *bool { return &c.RequestBuffering })},
		"proxy_buffer_size":       {ctx: cHSL, min: 1, max: 1, fn: dProxyBufferSize},
		"proxy_buffers":           {ctx: cHSL, min: 2, max: 2, fn: dProxyBuffers},
		"add_header":              {ctx: cHSLIf, min: 2, max: 3, fn: dAddHeader},
		"index":                   {ctx: cHSL, min: 1, max: -1, fn: dIndex},
		"websocket_frames":        {ctx: cHSL, min: 1, max: 1, fn: flag("websocket_frames", func(c *LocConf) *bool { return &c.WebSocketFrames })},

		// balancing, logs, status, limits, access, client addresses, TLS
		"ip_hash":                                {ctx: cUpstream, max: 0, fn: dMethod},
		"least_conn":                             {ctx: cUpstream, max: 0, fn: dMethod},
		"least_time":                             {ctx: cUpstream, min: 1, max: 2, fn: dMethod},
		"hash":                                   {ctx: cUpstream, min: 1, max: 2, fn: dMethod},
		"random":                                 {ctx: cUpstream, max: 2, fn: dMethod},
		"keepalive":                              {ctx: cUpstream, min: 1, max: 1, fn: dKeepalive},
		"ntlm":                                   {ctx: cUpstream, max: 0, fn: dNTLM},
		"keepalive_requests":                     {ctx: cHSL | cUpstream, min: 1, max: 1, fn: dKeepaliveRequests},
		"zone":                                   {ctx: cUpstream, min: 1, max: 2, fn: dZone},
		"state":                                  {ctx: cUpstream, min: 1, max: 1, fn: dState},
		"queue":                                  {ctx: cUpstream, min: 1, max: 2, fn: dQueue},
		"health_check":                           {ctx: cUpstream | cLocation, max: -1, fn: dHealthCheck},
		"sticky":                                 {ctx: cUpstream, min: 2, max: -1, fn: dSticky},
		"proxy_next_upstream":                    {ctx: cHSL, min: 1, max: -1, fn: dNextUpstream},
		"proxy_next_upstream_tries":              {ctx: cHSL, min: 1, max: 1, fn: dNextUpstreamTries},
		"proxy_next_upstream_timeout":            {ctx: cHSL, min: 1, max: 1, fn: dNextUpstreamTimeout},
		"log_format":                             {ctx: cHTTP, min: 2, max: -1, fn: dLogFormat},
		"access_log":                             {ctx: cHSL | cLocIf | cLmt, min: 1, max: -1, fn: dAccessLog},
		"metrics":                                {ctx: cServer | cLocation, max: 0, fn: dStatusHandler},
		"api":                                    {ctx: cServer | cLocation, max: 1, fn: dStatusHandler},
		"dashboard":                              {ctx: cServer | cLocation, max: 0, fn: dStatusHandler},
		"stub_status":                            {ctx: cServer | cLocation, max: 1, fn: dStubStatus},
		"limit_req_zone":                         {ctx: cHTTP, min: 3, max: 4, fn: dLimitReqZone},
		"limit_req":                              {ctx: cHSL, min: 1, max: 3, fn: dLimitReq},
		"limit_conn_zone":                        {ctx: cHTTP, min: 2, max: 3, fn: dLimitConnZone},
		"limit_conn":                             {ctx: cHSL, min: 2, max: 2, fn: dLimitConn},
		"limit_req_status":                       {ctx: cHSL, min: 1, max: 1, fn: dLimitStatus},
		"limit_conn_status":                      {ctx: cHSL, min: 1, max: 1, fn: dLimitStatus},
		"allow":                                  {ctx: cHSL | cLmt, min: 1, max: 1, fn: dAccess},
		"deny":                                   {ctx: cHSL | cLmt, min: 1, max: 1, fn: dAccess},
		"limit_req_log_level":                    {ctx: cHSL, min: 1, max: 1, fn: dLimitLogLevel},
		"limit_conn_log_level":                   {ctx: cHSL, min: 1, max: 1, fn: dLimitLogLevel},
		"limit_req_dry_run":                      {ctx: cHSL, min: 1, max: 1, fn: flag("limit_req_dry_run", func(c *LocConf) *bool { return &c.LimitReqDryRun })},
		"limit_conn_dry_run":                     {ctx: cHSL, min: 1, max: 1, fn: flag("limit_conn_dry_run", func(c *LocConf) *bool { return &c.LimitConnDryRun })},
		"real_ip_recursive":                      {ctx: cHSL, min: 1, max: 1, fn: flag("real_ip_recursive", func(c *LocConf) *bool { return &c.RealIPRecursive })},
		"set_real_ip_from":                       {ctx: cHSL, min: 1, max: 1, fn: dRealIPFrom},
		"real_ip_header":                         {ctx: cHSL, min: 1, max: 1, fn: dRealIPHeader},
		"ssl_certificate":                        {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_certificate_key":                    {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_protocols":                          {ctx: cHTTP | cServer, min: 1, max: -1, fn: dSSL},
		"ssl_ciphers":                            {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_prefer_server_ciphers":              {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_stapling":                           {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_stapling_verify":                    {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_trusted_certificate":                {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_session_cache":                      {ctx: cHTTP | cServer, min: 1, max: 2, fn: dSSL},
		"ssl_session_timeout":                    {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_session_tickets":                    {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_ecdh_curve":                         {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_stapling_file":                      {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"ssl_stapling_responder":                 {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSL},
		"http2":                                  {ctx: cHTTP | cServer, min: 1, max: 1, fn: flag("http2", func(c *LocConf) *bool { return &c.HTTP2 })},
		"http2_websocket":                        {ctx: cHTTP, min: 1, max: 1, fn: dH2WebSocket},
		"http3":                                  {ctx: cHTTP | cServer, min: 1, max: 1, fn: flag("http3", func(c *LocConf) *bool { return &c.HTTP3 })},
		"quic_retry":                             {ctx: cHTTP | cServer, min: 1, max: 1, fn: flag("quic_retry", func(c *LocConf) *bool { return &c.QUICRetry })},
		"websocket_ping_interval":                {ctx: cHSL, min: 1, max: 1, fn: duration("websocket_ping_interval", func(c *LocConf) *durationField { return &c.WS.PingInterval })},
		"websocket_ping_timeout":                 {ctx: cHSL, min: 1, max: 1, fn: duration("websocket_ping_timeout", func(c *LocConf) *durationField { return &c.WS.PingTimeout })},
		"websocket_max_frame_size":               {ctx: cHSL, min: 1, max: 1, fn: wsSize},
		"websocket_max_message_size":             {ctx: cHSL, min: 1, max: 1, fn: wsSize},
		"websocket_message_rate":                 {ctx: cHSL, min: 1, max: 3, fn: dMessageRate},
		"websocket_allowed_origins":              {ctx: cHSL, min: 1, max: -1, fn: dOrigins},
		"websocket_subprotocols":                 {ctx: cHSL, min: 1, max: -1, fn: dSubprotocols},
		"websocket_drain_period":                 {ctx: cHSL, min: 1, max: 1, fn: duration("websocket_drain_period", func(c *LocConf) *durationField { return &c.WS.DrainPeriod })},
		"websocket_validate":                     {ctx: cHSL, min: 1, max: 1, fn: dValidate},
		"websocket_message_metrics":              {ctx: cHSL, min: 1, max: 1, fn: flag("websocket_message_metrics", func(c *LocConf) *bool { return &c.WS.MessageMetrics })},
		"websocket_max_session_time":             {ctx: cHSL, min: 1, max: 3, fn: dMaxSession},
		"websocket_reauth_interval":              {ctx: cHSL, min: 1, max: 2, fn: dReauth},
		"websocket_rebalance":                    {ctx: cUpstream, max: 2, fn: dRebalance},
		"client_header_timeout":                  {ctx: cHTTP | cServer, min: 1, max: 1, fn: duration("client_header_timeout", func(c *LocConf) *durationField { return &c.Client.HeaderTimeout })},
		"client_body_timeout":                    {ctx: cHSL, min: 1, max: 1, fn: duration("client_body_timeout", func(c *LocConf) *durationField { return &c.Client.BodyTimeout })},
		"client_body_buffer_size":                {ctx: cHSL, min: 1, max: 1, fn: dClientBodyBuffer},
		"client_body_temp_path":                  {ctx: cHSL, min: 1, max: 4, fn: dClientBodyTemp},
		"client_header_buffer_size":              {ctx: cHTTP | cServer, min: 1, max: 1, fn: dClientHeaderBuffer},
		"large_client_header_buffers":            {ctx: cHTTP | cServer, min: 2, max: 2, fn: dLargeBuffers},
		"send_timeout":                           {ctx: cHSL, min: 1, max: 1, fn: duration("send_timeout", func(c *LocConf) *durationField { return &c.Client.SendTimeout })},
		"reset_timedout_connection":              {ctx: cHSL, min: 1, max: 1, fn: dResetTimedOut},
		"websocket_compression":                  {ctx: cHSL, min: 1, max: 1, fn: dCompression},
		"websocket_compression_level":            {ctx: cHSL, min: 1, max: 1, fn: dCompressionLevel},
		"websocket_capture_path":                 {ctx: cHTTP, min: 1, max: 1, fn: dCapturePath},
		"websocket_compression_context_takeover": {ctx: cHSL, min: 1, max: 1, fn: flag("websocket_compression_context_takeover", func(c *LocConf) *bool { return &c.WS.Compression.ContextTakeover })},
		"websocket_compression_window_bits":      {ctx: cHSL, min: 1, max: 1, fn: dCompressionBits},
	}
	maps.Copy(table, noEffect)
	maps.Copy(table, staticDirectives)
	maps.Copy(table, rewriteDirectives)
	maps.Copy(table, coreDirectives)
	maps.Copy(table, mainRestDirectives)
	maps.Copy(table, gzipDirectives)
	maps.Copy(table, headersDirectives)
	maps.Copy(mergers, coreMergers)
	maps.Copy(table, tlsDirectives)
	maps.Copy(table, acmeDirectives)
	maps.Copy(table, coreRestDirectives)
	maps.Copy(mergers, coreRestMergers)
	maps.Copy(table, clusterDirectives)
	maps.Copy(table, authDirectives)
	maps.Copy(table, proxySSLDirectives)
	maps.Copy(table, proxyDirectives)
	maps.Copy(table, resolverDirectives)
	maps.Copy(table, geoDirectives)
	maps.Copy(blockVars, geoBlockVars)
	maps.Copy(table, splitDirectives)
	maps.Copy(blockVars, splitBlockVars)
	maps.Copy(table, refererDirectives)
	maps.Copy(mergers, refererMergers)
	maps.Copy(table, secureLinkDirectives)
	maps.Copy(mergers, secureLinkMergers)
	maps.Copy(table, useridDirectives)
	maps.Copy(mergers, useridMergers)
	maps.Copy(table, emptyGifDirectives)
	maps.Copy(table, mirrorDirectives)
	maps.Copy(mergers, mirrorMergers)
	maps.Copy(table, charsetDirectives)
	maps.Copy(mergers, charsetMergers)
	maps.Copy(blockVars, charsetBlockVars)
	maps.Copy(table, subDirectives)
	maps.Copy(mergers, subMergers)
	maps.Copy(table, otelDirectives)
	maps.Copy(mergers, otelMergers)
	maps.Copy(table, bufferingDirectives)
	maps.Copy(mergers, bufferingMergers)
	maps.Copy(table, cacheDirectives)
	maps.Copy(mergers, cacheMergers)
}

type durationField = time.Duration

func flag(name string, field func(*LocConf) *bool) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		v, err := parseFlag(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
		}
		*field(s.lc) = v
		return s.lc.mark(d, name)
	}
}

func duration(name string, field func(*LocConf) *durationField) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		v, err := ParseDuration(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
		}
		*field(s.lc) = v
		return s.lc.mark(d, name)
	}
}

// mark records that this level wrote a setting; writing it twice at one
// level is nginx's "is duplicate" error, except for list directives.
func (c *LocConf) mark(d *conf.Directive, name string) error {
	if c.set[name] {
		switch name {
		case "proxy_set_header", "add_header", "error_log", "index":
		default:
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
	}
	c.set[name] = true
	return nil
}

func dWorkerProcesses(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "auto" {
		l.cfg.WorkerProcesses = runtime.NumCPU()
		return nil
	}
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 1 {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	l.cfg.WorkerProcesses = n
	return nil
}

func dUser(l *loader, d *conf.Directive, s *scope) error {
	if err := l.checkUser(d); err != nil {
		return err
	}
	l.cfg.User = d.Args[0]
	if len(d.Args) == 2 {
		l.cfg.Group = d.Args[1]
	}
	return nil
}

func dDaemon(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"daemon\" directive, it must be \"on\" or \"off\"", d.Args[0])
	}
	l.cfg.Daemon = v
	return nil
}

func dWorkerShutdownTimeout(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	l.cfg.WorkerShutdownTimeout = v
	return nil
}

func dEvents(l *loader, d *conf.Directive, s *scope) error {
	return l.block(d.Block, &scope{kind: cEvents})
}

func dWorkerConnections(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 1 {
		return conf.Errorf(d, "invalid number \"%s\"", d.Args[0])
	}
	l.cfg.WorkerConnections = n
	return nil
}

func dHTTP(l *loader, d *conf.Directive, s *scope) error {
	h := &HTTP{Loc: defaultLocConf(), H2WebSocket: true}
	l.cfg.HTTP = h
	return l.block(d.Block, &scope{kind: cHTTP, lc: h.Loc})
}

func dServer(l *loader, d *conf.Directive, s *scope) error {
	if s.kind == cUpstream {
		return dUpstreamServer(l, d, s)
	}
	if !d.IsBlock() || len(d.Args) != 0 {
		if !d.IsBlock() {
			return conf.Errorf(d, "directive \"server\" has no opening \"{\"")
		}
		return conf.Errorf(d, "invalid number of arguments in \"server\" directive")
	}
	srv := &Server{File: d.File, Line: d.Line}
	srv.Loc = &Location{Conf: newLocConf(), File: d.File, Line: d.Line}
	srv.Locations = &Location{Conf: srv.Loc.Conf, File: d.File, Line: d.Line}
	l.cfg.HTTP.Servers = append(l.cfg.HTTP.Servers, srv)
	return l.block(d.Block, &scope{kind: cServer, server: srv, loc: srv.Loc, lc: srv.Loc.Conf})
}

func dLocation(l *loader, d *conf.Directive, s *scope) error {
	loc := &Location{Conf: newLocConf(), File: d.File, Line: d.Line}
	if len(d.Args) == 2 {
		loc.Modifier, loc.Path = d.Args[0], d.Args[1]
		switch loc.Modifier {
		case "=", "^~", "~", "~*":
		default:
			return conf.Errorf(d, "invalid location modifier \"%s\"", loc.Modifier)
		}
	} else {
		a := d.Args[0]
		switch {
		case strings.HasPrefix(a, "="):
			loc.Modifier, loc.Path = "=", a[1:]
		case strings.HasPrefix(a, "^~"):
			loc.Modifier, loc.Path = "^~", a[2:]
		case strings.HasPrefix(a, "~*"):
			loc.Modifier, loc.Path = "~*", a[2:]
		case strings.HasPrefix(a, "~"):
			loc.Modifier, loc.Path = "~", a[1:]
		case strings.HasPrefix(a, "@"):
			return l.namedLocation(d, s, a)
		default:
			loc.Path = a
		}
	}
	if loc.Path == "" {
		return conf.Errorf(d, "invalid location path")
	}
	if loc.Modifier == "~" || loc.Modifier == "~*" {
		re, err := l.compileRegex(loc.Path, loc.Modifier == "~*")
		if err != nil {
			return conf.Errorf(d, "invalid location regex \"%s\": %v", loc.Path, err)
		}
		loc.Regex = re
	}
	parent := s.server.Locations
	if s.kind == cLocation {
		parent = s.loc
		if parent.Modifier == "=" {
			return conf.Errorf(d, "location \"%s\" cannot be inside the exact location \"%s\"", loc.Path, parent.Path)
		}
		if (loc.Modifier == "" || loc.Modifier == "^~" || loc.Modifier == "=") && (parent.Modifier == "" || parent.Modifier == "^~") && !strings.HasPrefix(loc.Path, parent.Path) {
			return conf.Errorf(d, "location \"%s\" is outside location \"%s\"", loc.Path, parent.Path)
		}
	}
	for _, sib := range parent.Children {
		if sib.Modifier != "~" && sib.Modifier != "~*" && (sib.Modifier == "=") == (loc.Modifier == "=") && loc.Modifier != "~" && loc.Modifier != "~*" && sib.Path == loc.Path {
			return conf.Errorf(d, "duplicate location \"%s\"", loc.Path)
		}
	}
	loc.Parent = parent
	parent.Children = append(parent.Children, loc)
	switch loc.Modifier {
	case "=":
		parent.Exacts = append(parent.Exacts, loc)
	case "", "^~":
		parent.Prefixes = append(parent.Prefixes, loc)
	default:
		parent.Regexes = append(parent.Regexes, loc)
	}
	return l.block(d.Block, &scope{kind: cLocation, server: s.server, loc: loc, lc: loc.Conf})
}

var redirectCodes = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

func dReturn(l *loader, d *conf.Directive, s *scope) error {
	op := Op{Kind: OpReturn}
	a0 := d.Args[0]
	code, err := strconv.Atoi(a0)
	switch {
	case err == nil:
		if code < 0 || code > 999 {
			return conf.Errorf(d, "invalid return code \"%s\"", a0)
		}
		op.Code = code
		if len(d.Args) == 2 {
			t, err := l.cfg.Vars.Compile(d.Args[1])
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
			op.Text = t
		}
	case len(d.Args) == 1 && (strings.HasPrefix(a0, "http://") || strings.HasPrefix(a0, "https://") || strings.HasPrefix(a0, "$scheme")):
		op.Code = 302
		t, err := l.cfg.Vars.Compile(a0)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		op.Text = t
	default:
		return conf.Errorf(d, "invalid return code \"%s\"", a0)
	}
	s.loc.Rewrite = append(s.loc.Rewrite, op)
	return nil
}

func dSet(l *loader, d *conf.Directive, s *scope) error {
	name, ok := varName(d.Args[0])
	if !ok {
		return conf.Errorf(d, "invalid variable name \"%s\"", d.Args[0])
	}
	idx, ok := l.cfg.Vars.Lookup(name)
	if !ok {
		return conf.Errorf(d, "unknown \"%s\" variable", name)
	}
	t, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.loc.Rewrite = append(s.loc.Rewrite, Op{Kind: OpSet, Var: idx, Value: t})
	return nil
}

func dBreak(l *loader, d *conf.Directive, s *scope) error {
	s.loc.Rewrite = append(s.loc.Rewrite, Op{Kind: OpBreak})
	return nil
}

// dIf reads `if (cond) { ... }`. The parser splits "($a" and "b)" into
// arguments; nginx does the same and strips the parentheses.
func dIf(l *loader, d *conf.Directive, s *scope) error {
	args := append([]string(nil), d.Args...)
	if len(args) == 0 || !strings.HasPrefix(args[0], "(") || !strings.HasSuffix(args[len(args)-1], ")") {
		return conf.Errorf(d, "invalid condition \"%s\"", strings.Join(d.Args, " "))
	}
	args[0] = args[0][1:]
	last := len(args) - 1
	args[last] = args[last][:len(args[last])-1]
	if args[0] == "" {
		args = args[1:]
		last--
	}
	if len(args) > 0 && args[len(args)-1] == "" {
		args = args[:len(args)-1]
	}
	c := &Cond{}
	var err error
	bad := func() error { return conf.Errorf(d, "invalid condition \"%s\"", strings.Join(d.Args, " ")) }
	switch len(args) {
	case 1:
		if !strings.HasPrefix(args[0], "$") {
			return bad()
		}
		if c.Var, err = l.cfg.Vars.Compile(args[0]); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	case 2:
		switch args[0] {
		case "-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x":
			c.Op = args[0]
			if c.Var, err = l.cfg.Vars.Compile(args[1]); err != nil {
				return conf.Errorf(d, "%v", err)
			}
		default:
			return bad()
		}
	case 3:
		if !strings.HasPrefix(args[0], "$") {
			return bad()
		}
		if c.Var, err = l.cfg.Vars.Compile(args[0]); err != nil {
			return conf.Errorf(d, "%v", err)
		}
		c.Op = args[1]
		switch c.Op {
		case "=", "!=":
			if c.Value, err = l.cfg.Vars.Compile(args[2]); err != nil {
				return conf.Errorf(d, "%v", err)
			}
		case "~", "~*", "!~", "!~*":
			c.Pattern = args[2]
			if c.Regex, err = l.compileRegex(args[2], strings.HasSuffix(c.Op, "*")); err != nil {
				return conf.Errorf(d, "invalid regex \"%s\": %v", args[2], err)
			}
		default:
			return conf.Errorf(d, "unexpected \"%s\" in condition", c.Op)
		}
	default:
		return bad()
	}
	kind := cLocIf
	if s.kind == cServer {
		kind = cSrvIf
	}
	loc := &Location{Modifier: "if", Path: s.loc.Path, Parent: s.loc, Conf: newLocConf(), File: d.File, Line: d.Line}
	s.loc.Rewrite = append(s.loc.Rewrite, Op{Kind: OpIf, Cond: c, If: loc})
	return l.block(d.Block, &scope{kind: kind, server: s.server, loc: loc, lc: loc.Conf})
}

func dProxyPass(l *loader, d *conf.Directive, s *scope) error {
	if err := s.lc.mark(d, "proxy_pass"); err != nil {
		return err
	}
	l.pending = append(l.pending, pendingProxy{d: d, lc: s.lc, loc: s.loc})
	return nil
}

func dProxyHTTPVersion(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "1.0", "1.1":
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"proxy_http_version\" directive", d.Args[0])
	}
	s.lc.ProxyHTTPVersion = d.Args[0]
	return s.lc.mark(d, "proxy_http_version")
}

func dProxySetHeader(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if !validHeaderName(d.Args[0]) {
		return conf.Errorf(d, "invalid header name \"%s\"", d.Args[0])
	}
	if !s.lc.set["proxy_set_header"] {
		s.lc.ProxyHeaders = nil
	}
	s.lc.ProxyHeaders = append(s.lc.ProxyHeaders, Header{Name: d.Args[0], Value: t})
	return s.lc.mark(d, "proxy_set_header")
}

// alwaysHeader reads the arguments of add_header and add_trailer: a
// name, a value with variables and an optional "always".
func (l *loader) alwaysHeader(d *conf.Directive) (Header, error) {
	t, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return Header{}, conf.Errorf(d, "%v", err)
	}
	if !validHeaderName(d.Args[0]) {
		return Header{}, conf.Errorf(d, "invalid header name \"%s\"", d.Args[0])
	}
	h := Header{Name: d.Args[0], Value: t}
	if len(d.Args) == 3 {
		if d.Args[2] != "always" {
			return Header{}, conf.Errorf(d, "invalid parameter \"%s\"", d.Args[2])
		}
		h.Always = true
	}
	return h, nil
}

func dAddHeader(l *loader, d *conf.Directive, s *scope) error {
	h, err := l.alwaysHeader(d)
	if err != nil {
		return err
	}
	if !s.lc.set["add_header"] {
		s.lc.AddHeaders = nil
	}
	s.lc.AddHeaders = append(s.lc.AddHeaders, h)
	return s.lc.mark(d, "add_header")
}

func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func dProxyBufferSize(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil || n == 0 {
		return conf.Errorf(d, "\"proxy_buffer_size\" directive invalid value")
	}
	s.lc.BufferSize = int(n)
	return s.lc.mark(d, "proxy_buffer_size")
}

func dProxyBuffers(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	size, err2 := ParseSize(d.Args[1])
	if err != nil || err2 != nil || n < 1 || size < 1 {
		return conf.Errorf(d, "invalid value \"%s %s\" in \"proxy_buffers\" directive", d.Args[0], d.Args[1])
	}
	s.lc.Buffers = [2]int{n, int(size)}
	return s.lc.mark(d, "proxy_buffers")
}

func dIndex(l *loader, d *conf.Directive, s *scope) error {
	if !s.lc.set["index"] {
		s.lc.Index, s.lc.IndexVars = nil, nil // a second index at one level adds to the first, as nginx
	}
	s.lc.Index = append(s.lc.Index, d.Args...)
	for _, a := range d.Args {
		t, err := l.cfg.Vars.Compile(a)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		s.lc.IndexVars = append(s.lc.IndexVars, t)
	}
	return s.lc.mark(d, "index")
}
