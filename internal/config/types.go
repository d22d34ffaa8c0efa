package config

import (
	"crypto/tls"
	"github.com/wsgate/wsgate/internal/charset"
	"github.com/wsgate/wsgate/internal/gzipfilter"
	"github.com/wsgate/wsgate/internal/otel"
	"github.com/wsgate/wsgate/internal/referer"
	"github.com/wsgate/wsgate/internal/regex"
	"github.com/wsgate/wsgate/internal/userid"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// Config is one loaded configuration. It is never modified after Load
// returns, so the server may share it between goroutines freely.
type Config struct {
	File   string // the main file, absolute
	Prefix string // -p: relative logs, pid and root resolve from here

	WorkerProcesses   int // "auto" is resolved to the CPU count at load
	ErrorLogs         []ErrorLog
	PID               string
	User, Group       string
	Daemon            bool
	WorkerConnections int
	// CharsetMaps are the http level's charset_map blocks.
	CharsetMaps []*charset.Map
	// WorkerShutdownTimeout bounds a graceful stop: once it passes, the
	// connections still open are closed. Zero waits for them all.
	WorkerShutdownTimeout time.Duration
	// UpgradeDrainPeriod bounds how long the old process of a binary
	// upgrade keeps the tunnels that cannot move (TLS, HTTP/2)
	// before it closes them with 1001 (websocket_upgrade_drain_period).
	UpgradeDrainPeriod time.Duration

	Env              []EnvVar // env: variables to set or keep
	WorkingDirectory string   // working_directory, absolute; "" keeps the current one
	RlimitNoFile     uint64   // worker_rlimit_nofile; 0 leaves the limit alone
	RlimitCore       uint64   // worker_rlimit_core, when HasRlimitCore
	HasRlimitCore    bool
	DebugConnections DebugConnections // debug_connection
	Priority         int              // worker_priority, a nice value, when HasPriority
	HasPriority      bool
	CPUs             []int // worker_cpu_affinity: the CPUs the masks name together
	CPUAffinityAuto  bool
	LimitRateVar     int  // the index of $limit_rate
	LimitRateSet     bool // some `set $limit_rate` exists
	// Charsets are the charsets `charset` and `source_charset` name with
	// constant values, lowercased: those X-Accel-Charset may name, as
	// nginx's known charsets.
	Charsets map[string]bool

	HTTP *HTTP
	Vars *vars.Table
	// Captures binds the named groups of location, if and rewrite regexes
	// to the variables they set when the regex matches.
	Captures map[*regex.Regexp][]NamedCapture
	// Cluster is cluster_store: the store that zones declared with sync
	// share; nil keeps every zone local.
	Cluster *ClusterStore

	// Warnings are notices `wsgate -t` prints; loading still succeeded.
	Warnings []string
	// Source is the text of a configuration that was not read from a file
	// (the embedded default), for -T.
	Source string
}

// Level is an error_log severity, debug (most verbose) to emerg.
type Level int

// Severity levels, in nginx's order.
const (
	LevelDebug Level = iota
	LevelInfo
	LevelNotice
	LevelWarn
	LevelError
	LevelCrit
	LevelAlert
	LevelEmerg
)

var levelNames = []string{"debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"}

func (l Level) String() string { return levelNames[l] }

// ErrorLog is one error_log target.
type ErrorLog struct {
	Path  string // "stderr" for the standard error stream
	Level Level
}

// HTTP is the http{} block.
type HTTP struct {
	Servers    []*Server
	Upstreams  []*Upstream // in file order; names are unique
	LogFormats map[string]*LogFormat
	ReqZones   []*ReqZone
	ConnZones  []*ConnZone
	Loc        *LocConf // http-level defaults, already merged into every location
	// H2WebSocket is http2_websocket: advertise RFC 8441 extended CONNECT
	// on HTTP/2 connections. Process-wide: Go's HTTP/2 reads it at start.
	H2WebSocket bool
	// Otel is otel_exporter with otel_service_name and
	// otel_resource_attr; nil when none is written. Spans are exported
	// only when it has an endpoint.
	Otel *otel.Config
	// ClusterRebalance is cluster_rebalance: this instance closes WebSockets
	// with 1012 while it holds more than the cluster's mean; nil: off.
	ClusterRebalance *Rebalance
	CachePaths       []*CachePath // proxy_cache_path, in file order
	// ACMEIssuers are the acme_issuer blocks, by name.
	ACMEIssuers map[string]*ACMEIssuer
}

// Upstream is an upstream{} block, or the implicit one-server group that a
// proxy_pass to a literal address creates.
type Upstream struct {
	Name              string
	Implicit          bool
	Servers           []UpstreamServer
	Method            string         // "round_robin", "ip_hash", "hash", "least_conn", "random", "least_time"
	HashKey           *vars.Template // hash key
	HashConsistent    bool
	RandomTwo         bool
	LeastTimeLastByte bool         // least_time last_byte: timed to the response's end, not its head
	Health            *HealthCheck // from health_check in the upstream or in a location proxying to it
	Sticky            *StickyCookie
	StickyRoute       []*vars.Template // sticky route: the first non-empty one names the server
	StickyLearn       *StickyLearn
	Rebalance         *Rebalance
	Keepalive         int
	KeepaliveTimeout  time.Duration // idle backend connections are closed after this
	KeepaliveRequests int           // a backend connection serves at most this many requests
	KeepaliveTime     time.Duration // keepalive_time: a backend connection takes no request after this long; 0: 1h
	NTLM              bool          // ntlm: a client connection keeps the backend connection of its NTLM/Negotiate request
	Zone              string        // zone's name: needed by the api's changes and by servers that resolve
	State             string        // state file: the servers come from it, and api changes go to it
	Queue             int           // queue: requests that may wait for a peer; 0: none wait
	QueueTimeout      time.Duration // queue's timeout=; 0: 60s
	Resolver          *ResolverConf // for `server ... resolve`: the upstream's own, else the http level's
	ResolverTimeout   time.Duration // 0: 30s
	File              string
	Line              int
}

// HealthCheck is a health_check directive (nginx Plus syntax).
type HealthCheck struct {
	Interval  time.Duration
	Fails     int
	Passes    int
	URI       string
	Port      int
	WebSocket bool // type=websocket: a real handshake and a clean close
	// TLS is set for an upstream of https:// peers: the checks use the
	// proxy_ssl_* settings of a location that proxies to it.
	TLS  *tls.Config
	File string
	Line int
}

// UpstreamServer is one `server` line of an upstream; a host name that
// resolves to several addresses yields one entry per address.
type UpstreamServer struct {
	Name        string // as written
	Addr        string // resolved ip:port; "" for a server resolved at run time
	Weight      int
	MaxFails    int
	FailTimeout time.Duration
	Backup      bool
	Down        bool
	MaxConns    int
	SlowStart   time.Duration
	Drain       bool   // drain: only requests bound to the server by `sticky` reach it (also from the api and state files)
	Route       string // route=: the server's name for `sticky route`
	Resolve     bool   // `resolve`: the name is resolved at run time, as its records change
	Service     string // service=: SRV records give the addresses, ports and weights
}

// Listen is one listen directive.
type Listen struct {
	Addr          string         // host:port as bound, e.g. "127.0.0.1:8080", "0.0.0.0:80", "[::]:80"; "unix:/path"
	AddrPort      netip.AddrPort // for a unix socket, UnixAddrPort(Unix)
	Unix          string         // the socket's path for `listen unix:path`; "" for TCP
	DefaultServer bool
	SockOpts           // socket options, merged across the address's listens
	ProxyProtocol bool // a PROXY protocol header (v1 or v2) precedes every connection
	SSL           bool
	HTTP2         bool // listen ... http2
	QUIC          bool // listen ... quic: HTTP/3 on the UDP port
	File          string
	Line          int
}

// Server is a server{} block.
type Server struct {
	Listens []Listen
	Names   []ServerName
	// Loc holds the server-level settings and the server rewrite phase.
	Loc       *Location
	Locations *Location // a root whose Children are the server's locations
	// Named holds the `location @name` blocks, reachable only by an
	// internal redirect (error_page, try_files).
	Named map[string]*Location
	// ACME is the server's acme_certificate, nil without one.
	ACME *ACMECertificate
	File string
	Line int
}

// ServerName is one server_name entry.
type ServerName struct {
	Name  string        // lowercased; "" matches requests without Host
	Kind  NameKind      // how Name matches
	Regex *regex.Regexp // for NameRegex; its named captures are in Config.Captures
}

// NameKind says how a server name matches.
type NameKind int

// Server name kinds, in nginx's order of precedence.
const (
	NameExact          NameKind = iota
	NameWildcardPrefix          // "*.example.com" or ".example.com"
	NameWildcardSuffix          // "www.example.*"
	NameRegex
)

// Location is a location{} block, or the pseudo-location of an if{} or
// limit_except{} block.
type Location struct {
	Modifier string // "", "=", "^~", "~", "~*"; "@" for a named location; "if" and "limit_except" for those blocks
	Path     string
	Regex    *regex.Regexp
	Parent   *Location
	Children []*Location // nested locations in file order
	Exacts   []*Location // Children with "="
	Prefixes []*Location // Children with "" or "^~"
	Regexes  []*Location // Children with "~" or "~*", in file order

	Rewrite []Op // the rewrite phase: rewrite, return, set, if, break, in order
	// LimitExcept is the limit_except block: its configuration applies to
	// the methods it does not list.
	LimitExcept *LimitExcept
	Conf        *LocConf
	File        string
	Line        int
}

// OpKind is the kind of a rewrite-phase instruction.
type OpKind int

// Rewrite-phase instructions.
const (
	OpReturn OpKind = iota
	OpSet
	OpIf
	OpBreak
	OpRewrite
)

// Op is one rewrite-phase instruction.
type Op struct {
	Kind OpKind
	// OpReturn
	Code int
	Text *vars.Template // body, or the Location of a redirect; nil for none
	// OpSet
	Var   int
	Value *vars.Template
	// OpIf
	Cond *Cond
	If   *Location
	// OpRewrite
	Rw *Rewrite
}

// Cond is an if() condition.
type Cond struct {
	Var   *vars.Template
	Op    string // "", "=", "!=", "~", "~*", "!~", "!~*", "-f", "!-f", "-d", "!-d", "-e", "!-e"
	Value *vars.Template
	Regex *regex.Regexp
	// Pattern is the regex as written, for rewrite_log.
	Pattern string
}

// Header is a proxy_set_header or add_header entry.
type Header struct {
	Name   string
	Value  *vars.Template
	Always bool
}

// ProxyPass is a compiled proxy_pass.
type ProxyPass struct {
	Scheme   string // "http" or "https"
	Upstream *Upstream
	HostPort string // the text after the scheme: $proxy_host
	URI      string // the URI part, "" when none was given
	HasURI   bool
	// Dynamic is the whole URL when it has variables: Upstream is nil and
	// Scheme is "" when the scheme is a variable too; each request
	// evaluates it and finds an upstream block or resolves the host.
	Dynamic *vars.Template
}

// LocConf holds the settings nginx inherits from http to server to location
// to nested location and if{} blocks. After Load, every location's LocConf
// is complete: nothing is looked up in a parent at request time.
type LocConf struct {
	Referers          *referer.Rules // valid_referers; nil when none apply
	SecureLink        SecureLinkConf
	UserID            userid.Conf
	Otel              OtelLoc
	EmptyGif          bool     // empty_gif is the content handler
	Mirrors           []string // mirror URIs
	MirrorNoBody      bool     // mirror_request_body off
	mirrorOff         bool     // `mirror off` at this level
	Charset           CharsetConf
	Sub               SubConf
	Proxy             *ProxyPass
	Resolver          *ResolverConf // resolver: nil when none applies
	ResolverTimeout   time.Duration // resolver_timeout; 0: 30s
	ProxySSL          ProxySSL
	ProxyHTTPVersion  string // "1.0" or "1.1"
	ProxyHeaders      []Header
	ConnectTimeout    time.Duration
	ReadTimeout       time.Duration
	SendTimeout       time.Duration
	Buffering         bool
	RequestBuffering  bool
	BufferSize        int
	Buffers           [2]int         // number, size
	ProxyBuf          ProxyBuffering // proxy_busy_buffers_size, proxy_temp_*, proxy_store
	AddHeaders        []Header
	Trailers          []Header // add_trailer
	Expires           Expires
	KeepaliveTimeout  time.Duration
	KeepaliveRequests int // requests one client connection may carry
	TCPNoDelay        bool
	Files             Files // root, alias, types and the static-file settings
	Gzip              gzipfilter.Conf
	Index             []string
	IndexVars         []*vars.Template // Index compiled; nil for the built-in default
	ErrorLogs         []ErrorLog       // location-level error_log (e.g. a debug log)
	ClientMaxBody     int64
	ClientBodyBuffer  int64  // client_body_buffer_size: a buffered body's part kept in memory
	ClientBodyTemp    string // client_body_temp_path: where the rest of a buffered body goes
	WebSocketFrames   bool
	ServerTokens      bool           // server_tokens on (or build): the version is shown
	ServerTokensBuild bool           // server_tokens build
	ServerTokensText  *vars.Template // server_tokens "string": the Server header as given
	DefaultType       string
	HealthCheck       *HealthCheck // a location's health_check, moved to its upstream at load
	NextUpstream      NextUpstream
	WS                WebSocket
	SSL               SSL
	HTTP2             bool // `http2 on` (server and http level)
	HTTP3             bool // `http3 on`
	QUICRetry         bool // `quic_retry on`: validate client addresses first
	Client            ClientLimits
	AccessLogs        []AccessLog // empty with AccessLogOff: no access log here
	AccessLogOff      bool
	StubStatus        bool
	Status            string // "metrics", "api" or "dashboard": wsgate's own status handlers
	LimitReq          []LimitReq
	LimitReqStatus    int
	LimitReqLog       Level
	LimitReqDryRun    bool
	LimitConn         []LimitConn
	LimitConnStatus   int
	LimitConnLog      Level
	LimitConnDryRun   bool
	Access            []AccessRule
	Cluster           ClusterLoc // websocket_session_key, api write=on
	Auth              AuthConf   // auth_basic, auth_request
	RealIPFrom        []netip.Prefix
	RealIPHeader      string
	RealIPRecursive   bool
	// Rewrite module and internal redirects.
	RewriteLog          bool
	UninitWarn          bool
	Internal            bool        // `internal`: external requests get 404
	ErrorPages          []ErrorPage // in file order
	RecursiveErrorPages bool
	InterceptErrors     bool      // proxy_intercept_errors
	TryFiles            []TryFile // not inherited, as in nginx
	ProxyRest           ProxyRest // proxy_redirect, proxy_hide_header, proxy_cookie_* ...
	Cache               CacheConf // proxy_cache and proxy_cache_*

	KeepaliveTime        time.Duration // keepalive_time: a connection serves requests this long at most
	KeepaliveMinTimeout  time.Duration // keepalive_min_timeout: an idle keep-alive connection is kept this long at least
	KeepaliveDisable     uint8         // keepalive_disable: KeepaliveDisable* bits
	LingeringClose       LingerMode
	LingeringTime        time.Duration
	LingeringTimeout     time.Duration
	LimitRate            RateValue // bytes per second to the client; 0: unlimited
	LimitRateAfter       RateValue // bytes sent before limit_rate applies
	SatisfyAny           bool      // satisfy any
	AuthDelay            time.Duration
	UnderscoresInHeaders bool
	IgnoreInvalidHeaders bool
	// ChunkedTransferEncoding off: a response of unknown length to an
	// HTTP/1.1 client is delimited by closing the connection instead.
	ChunkedTransferEncoding bool

	set map[string]bool // which directives this level wrote, for merging
}

// ListenError is a listener that could not be bound, with the directive
// that asked for it.
type ListenError struct {
	Listen Listen
	Err    error
}

func (e *ListenError) Error() string {
	return "bind() to " + e.Listen.Addr + " failed (" + e.Err.Error() + ") in " + e.Listen.File + ":" + itoa(e.Listen.Line)
}

func (e *ListenError) Unwrap() error { return e.Err }

// NextUpstream is proxy_next_upstream with its tries and timeout.
type NextUpstream struct {
	Mask    uint16
	Tries   int           // 0: one per peer
	Timeout time.Duration // 0: unlimited
}

// proxy_next_upstream conditions.
const (
	NextError uint16 = 1 << iota
	NextTimeout
	NextInvalidHeader
	NextHTTP500
	NextHTTP502
	NextHTTP503
	NextHTTP504
	NextHTTP403
	NextHTTP404
	NextHTTP429
	NextNonIdempotent
	NextOff
)

var nextNames = map[string]uint16{
	"error": NextError, "timeout": NextTimeout, "invalid_header": NextInvalidHeader,
	"http_500": NextHTTP500, "http_502": NextHTTP502, "http_503": NextHTTP503, "http_504": NextHTTP504,
	"http_403": NextHTTP403, "http_404": NextHTTP404, "http_429": NextHTTP429,
	"non_idempotent": NextNonIdempotent, "off": NextOff,
}

// NextStatus is the condition bit for a response status, 0 for none.
func NextStatus(code int) uint16 {
	switch code {
	case 500:
		return NextHTTP500
	case 502:
		return NextHTTP502
	case 503:
		return NextHTTP503
	case 504:
		return NextHTTP504
	case 403:
		return NextHTTP403
	case 404:
		return NextHTTP404
	case 429:
		return NextHTTP429
	}
	return 0
}

// StickyCookie is `sticky cookie name ...` (nginx Plus syntax).
type StickyCookie struct {
	Name     string
	Expires  time.Duration // 0: a session cookie; -1: "max"
	Domain   string
	Path     string
	HTTPOnly bool
	Secure   bool
	SameSite string
}

// ReqZone is a limit_req_zone.
type ReqZone struct {
	Name      string
	Key       *vars.Template
	Size      int64
	RateMilli int64 // requests per 1000 seconds, nginx's unit: 10r/s = 10000
	Sync      bool  // shared through the cluster store, if one is configured
	File      string
	Line      int
}

// ConnZone is a limit_conn_zone.
type ConnZone struct {
	Name string
	Key  *vars.Template
	Size int64
	Sync bool // shared through the cluster store, if one is configured
	File string
	Line int
}

// LimitReq is one limit_req.
type LimitReq struct {
	Zone    *ReqZone
	Burst   int
	NoDelay bool
	Delay   int
}

// LimitConn is one limit_conn.
type LimitConn struct {
	Zone *ConnZone
	N    int
}

// AccessRule is one allow or deny, matched in order.
type AccessRule struct {
	Allow  bool
	All    bool
	Prefix netip.Prefix
}

// PosError is an error found while building a runtime from the config,
// tied to the directive it came from.
type PosError struct {
	File string
	Line int
	Err  error
}

func (e *PosError) Error() string {
	if e.File == "" {
		return e.Err.Error() // a built-in default, such as logs/access.log
	}
	return e.Err.Error() + " in " + e.File + ":" + itoa(e.Line)
}

func (e *PosError) Unwrap() error { return e.Err }

// LogFormat is a log_format; "combined" is predefined.
type LogFormat struct {
	Name   string
	Escape string // "default", "json", "none"
	Parts  []string
	File   string
	Line   int
}

// AccessLog is one access_log target.
type AccessLog struct {
	Path   string
	Format string
	Buffer int64
	Flush  time.Duration
	If     *vars.Template
	File   string
	Line   int
}

// WebSocket holds the websocket_* settings of a location.
type WebSocket struct {
	PingInterval   time.Duration
	PingTimeout    time.Duration
	MaxFrameSize   int64
	MaxMessageSize int64
	MessageRate    float64 // messages per second; 0: unlimited
	MessageBurst   int
	RateBoth       bool // websocket_message_rate ... both: also limit the backend
	Origins        []string
	Subprotocols   []string
	DrainPeriod    time.Duration
	Strict         bool          // websocket_validate strict
	MaxSession     time.Duration // websocket_max_session_time; 0: none
	SessionJitter  time.Duration // taken off MaxSession at random, per tunnel
	SessionCode    uint16        // the close code at MaxSession; 0: 1001
	MessageMetrics bool          // websocket_message_metrics on
	Reauth         Reauth        // websocket_reauth_interval
	Compression    Compression   // websocket_compression and its settings
	CapturePath    string        // websocket_capture_path, absolute; "" for none
}

// Compression is websocket_compression: the leg whose permessage-deflate
// wsgate offloads, and how.
type Compression struct {
	Mode            string // "" (off), "on" (the client's) or "backend"
	ContextTakeover bool   // websocket_compression_context_takeover on
	WindowBits      int    // websocket_compression_window_bits; 0: 15
	Level           int    // websocket_compression_level; 0: the stateless compressor
	File            string // where websocket_compression was set, for -t
	Line            int
}

// ClientLimits are the client-side limits nginx reads from http and
// server (header settings come from the default server of the address).
type ClientLimits struct {
	HeaderTimeout    time.Duration
	BodyTimeout      time.Duration
	HeaderBufferSize int
	LargeBuffers     [2]int // number, size
	SendTimeout      time.Duration
	ResetTimedOut    bool
	KeepSlashes      bool // merge_slashes off
	MaxHeaders       int  // max_headers, as http1.Limits.MaxHeaders
}

// Rebalance is websocket_rebalance: when open tunnels per weight spread by
// more than Threshold (a fraction) above the mean, up to Rate tunnels a
// second are closed with 1012 on the busiest peers.
type Rebalance struct {
	Threshold float64
	Rate      float64
	File      string
	Line      int
}

// SSL holds the ssl_* settings of http and server blocks.
type SSL struct {
	Certs               []string // ssl_certificate, absolute
	Keys                []string // ssl_certificate_key, absolute
	Protocols           []string
	Ciphers             string
	PreferServerCiphers bool
	ECDHCurve           string
	SessionCache        string
	SessionTimeout      time.Duration
	SessionTickets      bool
	Stapling            bool
	StaplingVerify      bool
	TrustedCertificate  string
	StaplingFile        string
	StaplingResponder   string

	// Client certificates.
	VerifyClient      string // "", "on", "optional" or "optional_no_ca"
	ClientCertificate string
	VerifyDepth       int
	CRL               string
	OCSP              string // "", "on" or "leaf"
	OCSPResponder     string
	OCSPCache         string

	On              bool   // `ssl on`: every listen of the server is ssl
	RejectHandshake bool   // ssl_reject_handshake
	PasswordFile    string // ssl_password_file
	DHParam         string // ssl_dhparam, checked only
	EarlyData       bool
	BufferSize      int64
	ConfCommands    [][2]string // ssl_conf_command name value, in order
	CertCache       string      // ssl_certificate_cache, as written
	TicketKeys      []string    // ssl_session_ticket_key files, the first encrypts
}
