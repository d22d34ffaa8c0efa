package vars

import (
	"fmt"
	"iter"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Header is the read side of a request's header list. The HTTP front end's
// header type satisfies it; vars needs nothing more.
type Header interface {
	Get(name string) string
	Values(name string) iter.Seq[string]
	// Join returns every value of name joined by sep.
	Join(name, sep string) string
}

// FileVars maps the request's URI to the filesystem as the current
// location's root or alias does.
type FileVars interface {
	DocumentRoot() string
	RealpathRoot() string
	RequestFilename() string
}

// Ctx is one request's state as variables see it. The server owns it and
// fills the fields it knows; it is not safe for concurrent use.
type Ctx struct {
	Method     string
	Target     string // the request-target as sent, in $request (see RequestLine)
	RequestURI string // $request_uri: the target in origin form, with the query
	Path       string // $uri: decoded and normalised
	// URIChanged says a rewrite or an internal redirect replaced the
	// request's URI: RequestURI no longer names what is served.
	URIChanged bool
	// URIBreak says a `rewrite ... break` replaced the URI in the current
	// location: proxy_pass sends it whole, without its own URI part.
	URIBreak   bool
	Args       string
	Proto      string // "HTTP/1.1"
	Header     Header
	Host       string // $host: lowercased, no port
	Scheme     string
	ServerName string // the matched server's first name
	Remote     netip.AddrPort
	Local      netip.AddrPort
	ConnID     uint64
	ConnReqs   int
	Start      time.Time
	ReqLength  int64
	LimitRate  int64 // $limit_rate: the response's limit_rate, bytes per second

	// Filled while the response goes out and at the end (for logs).
	Status           int
	BytesSent        int64
	BodyBytesSent    int64
	GzipRatio        string         // $gzip_ratio, set when a compressed body ends
	ProxyHost        string         // $proxy_host: the proxy_pass host (or upstream name) and port
	ProxyScheme      string         // proxy_pass's scheme, for $proxy_port's default
	RealRemote       netip.AddrPort // $realip_remote_addr: the peer before realip replaced Remote
	ProxyProtocol    netip.AddrPort // $proxy_protocol_addr/port, from a PROXY protocol header
	Stats            ConnStats      // stub_status counters, for $connections_*
	WS               WSSession      // a WebSocket session, filled when its tunnel closes
	SSLProtocol      string         // "TLSv1.3"
	SSLCipher        string
	SSLServerName    string
	TLS              *SSL // nil on plain connections; see ssl.go
	LimitReqStatus   string
	LimitConnStatus  string
	UpstreamAddr     string
	UpstreamStatus   string
	UpstreamRespTime string
	UpstreamCache    string    // $upstream_cache_status: MISS, HIT ...; "" without a cache
	Upstream         *Upstream // the tries behind $upstream_* (upstream.go); nil before any
	RespHeader       Header
	UpstreamHeader   Header // the upstream response's head, for $upstream_http_*; nil when none
	UpstreamTrailer  Header // the upstream response's trailer fields, for $upstream_trailer_*; nil when none
	End              time.Time
	// Files answers $document_root, $realpath_root and $request_filename
	// for the location the request is in; nil leaves them empty.
	Files FileVars
	// Core answers $connection_time, $pipe, $request_completion,
	// $request_body, $proxy_protocol_server_* and $tcpinfo_*.
	Core CoreInfo
	// Loc answers the per-location module variables (see LocVars); nil
	// leaves them empty.
	Loc LocVars

	// Captures holds $0..$9 of the last regex that matched (location, map, if).
	Captures []string
	// Warn, when set, hears of every read of a `set` variable that has no
	// value yet (uninitialized_variable_warn).
	Warn UninitWarner

	origMethod string // the method of the request line, once SetMethod changed Method

	tab    *Table
	vals   []string
	have   []bool
	active []bool // guards map/set cycles
	buf    []byte
	// lateRead is set when a variable of isLate is evaluated (see Freeze).
	lateRead bool
}

// RequestLine is $request: the request line as sent (the target as the
// client wrote it, absolute form included). For a request line the
// parser refused, Method is empty and Target holds the line as received.
func (c *Ctx) RequestLine() string {
	if c.Method == "" {
		return c.Target
	}
	t := c.Target
	if t == "" {
		t = c.RequestURI
	}
	m := c.Method
	if c.origMethod != "" {
		m = c.origMethod
	}
	return m + " " + t + " " + c.Proto
}

// SetMethod changes $request_method (error_page turns a request into a
// GET); $request keeps the method as sent.
func (c *Ctx) SetMethod(m string) {
	if c.origMethod == "" {
		c.origMethod = c.Method
	}
	c.Method = m
}

// Reset prepares c for a new request evaluated against tab, keeping its
// allocations.
func (c *Ctx) Reset(tab *Table) {
	*c = Ctx{tab: tab, vals: c.vals[:0], have: c.have[:0], active: c.active[:0], buf: c.buf[:0], Captures: c.Captures[:0]}
	n := 0
	if tab != nil {
		n = len(tab.vars)
	}
	c.vals = grow(c.vals, n)
	c.have = growB(c.have, n)
	c.active = growB(c.active, n)
}

func grow(s []string, n int) []string {
	if cap(s) >= n {
		s = s[:n]
		clear(s)
		return s
	}
	return make([]string, n)
}

func growB(s []bool, n int) []bool {
	if cap(s) >= n {
		s = s[:n]
		clear(s)
		return s
	}
	return make([]bool, n)
}

// UninitWarner is told the name of a `set` variable read before any
// `set` gave it a value.
type UninitWarner interface {
	UninitializedVariable(name string)
}

// Table is the set of variables one configuration snapshot knows: the
// built-in ones, map results and `set` targets. It is built at load and
// read-only afterwards.
type Table struct {
	vars  []variable
	index map[string]int
}

type variable struct {
	name string
	get  func(c *Ctx) string // nil for `set` variables: their value lives in Ctx
	set  bool
	vol  bool // never cached: see isVolatile
	late bool // settled only when the session ends: see isLate
}

// NewTable returns a table with the built-in variables.
func NewTable() *Table {
	t := &Table{index: map[string]int{}}
	for name, f := range builtins {
		t.add(name, f, false)
	}
	return t
}

func (t *Table) add(name string, get func(*Ctx) string, set bool) int {
	if i, ok := t.index[name]; ok {
		if get != nil {
			t.vars[i].get = get
		}
		t.vars[i].set = t.vars[i].set || set
		return i
	}
	t.vars = append(t.vars, variable{name: name, get: get, set: set, vol: isVolatile(name), late: isLate(name)})
	t.index[name] = len(t.vars) - 1
	return len(t.vars) - 1
}

// Len reports how many variables the table holds.
func (t *Table) Len() int { return len(t.vars) }

// DefineSet declares a variable assigned by `set`; the value lives in each
// request's Ctx.
func (t *Table) DefineSet(name string) (int, error) {
	if v, ok := t.index[name]; ok && !t.vars[v].set && t.vars[v].get != nil {
		if _, builtin := builtins[name]; builtin {
			return 0, fmt.Errorf("the duplicate %q variable", name)
		}
	}
	return t.add(name, nil, true), nil
}

// DefineCapture declares the variable of a regex's named group; like a
// `set` variable its value lives in Ctx, but reading it unset is no
// mistake (nothing warns).
func (t *Table) DefineCapture(name string) (int, error) {
	if _, builtin := builtins[name]; builtin {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	if i, ok := t.index[name]; ok && t.vars[i].get != nil {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	return t.add(name, nil, false), nil
}

// DefineFunc declares a computed variable such as a map result.
func (t *Table) DefineFunc(name string, get func(*Ctx) string) (int, error) {
	if _, ok := builtins[name]; ok {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	if i, ok := t.index[name]; ok && t.vars[i].get != nil {
		return 0, fmt.Errorf("the duplicate %q variable", name)
	}
	return t.add(name, get, false), nil
}

// Lookup resolves a variable name to its index, creating the prefix
// families ($http_*, $arg_*, $cookie_*, $sent_http_*) on demand.
func (t *Table) Lookup(name string) (int, bool) {
	if i, ok := t.index[name]; ok {
		return i, true
	}
	if f := prefixed(name); f != nil {
		return t.add(name, f, false), true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n <= 9 && len(name) == 1 {
		return t.add(name, func(c *Ctx) string {
			if n < len(c.Captures) {
				return c.Captures[n]
			}
			return ""
		}, false), true
	}
	return 0, false
}

// Set stores v as the value of `set` variable i for this request.
func (c *Ctx) Set(i int, v string) {
	c.vals[i] = v
	c.have[i] = true
}

// Get evaluates variable i, at most once per request.
func (c *Ctx) Get(i int) string {
	if c.have[i] {
		return c.vals[i]
	}
	v := c.tab.vars[i]
	if v.get == nil || c.active[i] {
		if v.get == nil && v.set && c.Warn != nil {
			c.Warn.UninitializedVariable(v.name)
		}
		return "" // an unset `set` variable, or a cycle through maps
	}
	c.active[i] = true
	if v.late {
		c.lateRead = true
	}
	s := v.get(c)
	c.active[i] = false
	if !v.vol {
		c.vals[i] = s
		c.have[i] = true
	}
	return s
}

// GetName evaluates a variable by name; for tests and rare paths only.
func (c *Ctx) GetName(name string) (string, bool) {
	i, ok := c.tab.Lookup(name)
	if !ok {
		return "", false
	}
	if i >= len(c.vals) {
		c.vals = append(c.vals, make([]string, i+1-len(c.vals))...)
		c.have = append(c.have, make([]bool, i+1-len(c.have))...)
		c.active = append(c.active, make([]bool, i+1-len(c.active))...)
	}
	return c.Get(i), true
}

// Template is a compiled string with variables.
type Template struct {
	raw   string
	parts []part
}

type part struct {
	lit string
	v   int // -1 for a literal
}

// Compile parses s ("$var", "${var}", "\$" is not special: nginx has no
// escape, so "$" not followed by a name is an error).
func (t *Table) Compile(s string) (*Template, error) {
	tpl := &Template{raw: s}
	var lit strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		i++
		var name string
		if i < len(s) && s[i] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("the closing bracket in %q variable is missing", s[i+1:])
			}
			name = s[i+1 : i+end]
			i += end + 1
		} else {
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name = s[i:j]
			i = j
		}
		if name == "" {
			return nil, fmt.Errorf("invalid variable name in %q", s)
		}
		idx, ok := t.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("unknown %q variable", name)
		}
		if lit.Len() > 0 {
			tpl.parts = append(tpl.parts, part{lit: lit.String(), v: -1})
			lit.Reset()
		}
		tpl.parts = append(tpl.parts, part{v: idx})
	}
	if lit.Len() > 0 || len(tpl.parts) == 0 {
		tpl.parts = append(tpl.parts, part{lit: lit.String(), v: -1})
	}
	return tpl, nil
}

// MustCompile is Compile for strings known at build time.
func (t *Table) MustCompile(s string) *Template {
	tpl, err := t.Compile(s)
	if err != nil {
		panic(err)
	}
	return tpl
}

func isNameChar(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// Raw returns the source text.
func (t *Template) Raw() string { return t.raw }

// IsConst reports whether t has no variables.
func (t *Template) IsConst() bool { return len(t.parts) == 1 && t.parts[0].v < 0 }

// Vars returns the indexes of the variables t reads.
func (t *Template) Vars() []int {
	var out []int
	for _, p := range t.parts {
		if p.v >= 0 {
			out = append(out, p.v)
		}
	}
	return out
}

// Eval renders t for c.
func (t *Template) Eval(c *Ctx) string {
	if len(t.parts) == 1 {
		p := t.parts[0]
		if p.v < 0 {
			return p.lit
		}
		return c.Get(p.v)
	}
	return string(t.Append(nil, c))
}

// Append renders t onto dst.
func (t *Template) Append(dst []byte, c *Ctx) []byte {
	for _, p := range t.parts {
		if p.v < 0 {
			dst = append(dst, p.lit...)
		} else {
			dst = append(dst, c.Get(p.v)...)
		}
	}
	return dst
}

// AppendEscaped renders t with every variable's value passed through esc
// (log escaping); literals are copied as they are.
func (t *Template) AppendEscaped(dst []byte, c *Ctx, esc func([]byte, string) []byte) []byte {
	for _, p := range t.parts {
		if p.v < 0 {
			dst = append(dst, p.lit...)
		} else {
			dst = esc(dst, c.Get(p.v))
		}
	}
	return dst
}

var hostname, _ = os.Hostname()

// ConnStats reports nginx's connection counters for $connections_active,
// $connections_reading, $connections_writing and $connections_waiting.
type ConnStats interface {
	ConnCounts() (active, reading, writing, waiting int64)
}

// addrVars are the variables derived from the client address; SetRemote
// forgets their cached values.
var addrVars = []string{"remote_addr", "remote_port", "binary_remote_addr", "proxy_add_x_forwarded_for", "realip_remote_addr", "realip_remote_port"}

// SetRemote replaces the client address (realip), keeping the original for
// $realip_remote_addr, and drops values computed from the old one.
func (c *Ctx) SetRemote(ap netip.AddrPort) {
	if !c.RealRemote.IsValid() {
		c.RealRemote = c.Remote
	}
	c.Remote = ap
	for _, n := range addrVars {
		if i, ok := c.tab.index[n]; ok && i < len(c.have) {
			c.have[i] = false
		}
	}
}

// WSSession is what a closed tunnel reports for the $websocket_*
// variables.
type WSSession struct {
	MessagesIn, MessagesOut int64 // from the client, to the client
	CloseCode               uint16
	ClosedBy                string // "client", "backend", "proxy"
	CloseReason             string // why the session ended: "peer", "idle", "limit" ...
	Closed                  bool
}
