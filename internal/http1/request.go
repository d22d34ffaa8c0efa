package http1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// nginx's defaults for client_header_buffer_size and
// large_client_header_buffers.
const (
	DefaultHeaderBufferSize = 1024
	DefaultLargeBuffers     = 4
	DefaultLargeBufferSize  = 8192
)

// Limits bound a request head as nginx's client_header_buffer_size and
// large_client_header_buffers do. A zero field takes nginx's default.
type Limits struct {
	HeaderBufferSize int // client_header_buffer_size
	LargeBuffers     int // large_client_header_buffers number
	LargeBufferSize  int // large_client_header_buffers size
	// KeepSlashes is merge_slashes off: $uri keeps runs of '/' (each
	// empty segment counts as one for ".."); dots are still resolved.
	KeepSlashes bool
	// MaxHeaders is max_headers, the most header lines a request may
	// have: 0 means DefaultMaxHeaders, a negative value allows none.
	MaxHeaders int
}

// DefaultMaxHeaders is nginx's default max_headers.
const DefaultMaxHeaders = 1000

func (l Limits) withDefaults() Limits {
	if l.HeaderBufferSize <= 0 {
		l.HeaderBufferSize = DefaultHeaderBufferSize
	}
	if l.LargeBuffers <= 0 {
		l.LargeBuffers = DefaultLargeBuffers
	}
	if l.LargeBufferSize <= 0 {
		l.LargeBufferSize = DefaultLargeBufferSize
	}
	switch {
	case l.MaxHeaders == 0:
		l.MaxHeaders = DefaultMaxHeaders
	case l.MaxHeaders < 0:
		l.MaxHeaders = 0
	}
	return l
}

// Request is a parsed request head. Its strings share one allocation (the
// head as received), so keeping any of them keeps the whole head alive. A
// Request is not safe for concurrent mutation.
type Request struct {
	Method string // e.g. "GET"
	// Target is the request-target as sent, the middle of nginx's
	// $request. RequestURI is nginx's $request_uri: the target in origin
	// form, path and query as sent; for an absolute-form target, the part
	// after the authority ("/" when empty), which is what a backend must
	// receive.
	Target     string
	RequestURI string
	// Line is a request line the parser refused, as received, for the
	// logs; it is set only when Proto is not.
	Line   string
	Proto  string // "HTTP/1.1", "HTTP/1.0"
	Major  int
	Minor  int
	Header Header

	// Host is the Host header as sent ("" without one). HostName is nginx's
	// $host: the host of an absolute-form target, else of the Host header,
	// lowercased, without port or trailing dot.
	Host     string
	HostName string

	ContentLength int64 // -1 when absent
	Chunked       bool  // Transfer-Encoding: chunked (never with ContentLength >= 0)
	Close         bool  // the client asked to close after this request

	// Path and RawQuery split the target at its first '?': for an
	// absolute-form target, the part after the authority ("/" when empty);
	// for "*", Path is "*".
	Path     string
	RawQuery string
	// URI is nginx's $uri: Path percent-decoded, with slashes merged and
	// dot segments resolved (see cleanPath); "*" for "*".
	URI string

	// HeaderBytes is the size of the head on the wire, request line to
	// empty line, without leading empty lines.
	HeaderBytes int
}

// Body returns a reader for the request body framed by r's head.
func (r *Request) Body(br *bufio.Reader) io.Reader {
	return BodyReader(br, r.ContentLength, r.Chunked, false)
}

// ReadRequest reads one request head from br (which should be ReaderSize
// bytes) and leaves br at the first body byte. Empty lines before the
// request line are skipped, as nginx does.
//
// It returns io.EOF when br ends before any byte of a request,
// io.ErrUnexpectedEOF when it ends inside the head, a *StatusError with the
// status nginx would answer for a head it refuses, and any other read error
// unchanged. Limits are nginx's: a request line that does not fit a large
// buffer is 414, a header line that does not (or one more large buffer than
// allowed) is 400 ReasonHeaderTooLarge; never 431. Each call measures its
// request as if it arrived on a fresh connection.
//
// With a *StatusError for a head that was read whole, the Request is not
// nil: it holds what was parsed before the refusal, for the logs. Its
// request line is complete (Proto set) when the line itself was valid,
// else Line holds it as received. A head cut short by a read error (a
// timeout, io.ErrUnexpectedEOF) comes with such a Request too when its
// request line had arrived, else with nil.
func ReadRequest(br *bufio.Reader, lim Limits) (*Request, error) {
	lim = lim.withDefaults()
	skipped, err := skipEmptyLines(br)
	if err != nil {
		return nil, err
	}
	// nginx drops a first buffer filled with nothing but line ends.
	base := skipped % lim.HeaderBufferSize
	sc := scanner{
		isReq: true,
		sim:   bufSim{end: lim.HeaderBufferSize - base, size: lim.LargeBufferSize, free: lim.LargeBuffers},
	}
	sc.lim = lim
	s, err := readHead(br, &sc)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if _, ok := err.(*StatusError); ok {
			return nil, err
		}
		return partialRequest(br), err
	}
	return parseRequest(s, false, lim)
}

// partialRequest returns the request line of a head cut short, for the
// logs, if it is complete in br's buffer; nil otherwise.
func partialRequest(br *bufio.Reader) *Request {
	buf, _ := br.Peek(br.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return nil
	}
	line, _ := cutLine(string(buf[:i+1]), 0)
	r := &Request{ContentLength: -1}
	p := reqParser{r: r}
	if p.requestLine(line) != nil && r.Proto == "" {
		r.Line = line
	}
	return r
}

func skipEmptyLines(br *bufio.Reader) (int, error) {
	n := 0
	for {
		if _, err := br.Peek(1); err != nil {
			return n, err
		}
		buf, _ := br.Peek(br.Buffered())
		k := 0
		for k < len(buf) && (buf[k] == '\r' || buf[k] == '\n') {
			k++
		}
		br.Discard(k)
		n += k
		if k < len(buf) {
			return n, nil
		}
	}
}

// Headers whose duplicates nginx refuses ("client sent duplicate header
// line"), besides Host.
const (
	hOther = iota
	hHost
	hContentLength
	hTransferEncoding
	hExpect // from here on, other unique headers, one bit each
	hIfMatch
	hIfRange
	hAuthorization
	hIfNoneMatch
	hContentRange
	hIfModifiedSince
	hIfUnmodifiedSince
)

func classify(name string) int {
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			return hHost
		}
	case 6:
		if equalFold(name, "expect") {
			return hExpect
		}
	case 8:
		if equalFold(name, "if-match") {
			return hIfMatch
		}
		if equalFold(name, "if-range") {
			return hIfRange
		}
	case 13:
		if equalFold(name, "authorization") {
			return hAuthorization
		}
		if equalFold(name, "if-none-match") {
			return hIfNoneMatch
		}
		if equalFold(name, "content-range") {
			return hContentRange
		}
	case 14:
		if equalFold(name, "content-length") {
			return hContentLength
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return hTransferEncoding
		}
		if equalFold(name, "if-modified-since") {
			return hIfModifiedSince
		}
	case 19:
		if equalFold(name, "if-unmodified-since") {
			return hIfUnmodifiedSince
		}
	}
	return hOther
}

// reqParser holds what the header lines have told so far.
type reqParser struct {
	r        *Request
	uriHost  bool
	hostSeen bool
	cl, te   string
	clSeen   bool
	teSeen   bool
	unique   uint16 // bit per other unique header seen

	keepSlashes bool // merge_slashes off
}

// requestFields is a Request with room for the header fields of many
// (a WebSocket handshake's five to eight): the two in one allocation.
type requestFields struct {
	Request
	fields [8]Field
}

// parseRequest parses a complete head, or with prefix only checks the
// complete lines of a head still arriving.
func parseRequest(s string, prefix bool, lim Limits) (*Request, error) {
	rf := &requestFields{Request: Request{ContentLength: -1, HeaderBytes: len(s)}}
	r := &rf.Request
	p := reqParser{r: r, keepSlashes: lim.KeepSlashes}
	line, i := cutLine(s, 0)
	if err := p.requestLine(line); err != nil {
		if r.Proto == "" {
			r.Line = line
		}
		return r, err
	}
	if n := strings.Count(s[i:], "\n") - 1; n > len(rf.fields) {
		r.Header = make(Header, 0, n)
	} else if n > 0 {
		r.Header = rf.fields[:0:n]
	}
	for i < len(s) {
		line, i = cutLine(s, i)
		if line == "" {
			break
		}
		name, value, ok := parseFieldLine(line)
		if !ok {
			return r, errInvalidHeader
		}
		if len(r.Header) == lim.MaxHeaders {
			return r, errTooManyHeaders
		}
		if err := p.field(name, value); err != nil {
			return r, err
		}
		r.Header = append(r.Header, Field{Name: name, Value: value})
	}
	if prefix {
		return r, nil
	}
	if err := p.finish(); err != nil {
		return r, err
	}
	return r, nil
}

func (p *reqParser) requestLine(line string) error {
	r := p.r
	i := 0
	for i < len(line) && line[i] != ' ' {
		if !methodChar(line[i]) {
			return errInvalidMethod
		}
		i++
	}
	if i == 0 || i == len(line) {
		return errInvalidMethod
	}
	r.Method = line[:i]
	rest := line[i+1:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		return errInvalidRequest // HTTP/0.9 is not served
	}
	if err := p.target(rest[:sp]); err != nil {
		return err
	}
	v := rest[sp+1:]
	major, minor, ok, vers := parseVersion(v)
	if vers {
		return errInvalidVersion
	}
	if !ok {
		return errInvalidRequest
	}
	r.Proto, r.Major, r.Minor = v, major, minor
	return p.clean()
}

// clean sets $uri once the whole line is known, as nginx processes the
// URI after the request line: a URI it refuses still leaves the line for
// the logs.
func (p *reqParser) clean() error {
	r := p.r
	if r.Path == "*" {
		r.URI = "*"
		return nil
	}
	uri, ok := cleanPath(r.Path, p.keepSlashes)
	if !ok {
		return errInvalidRequest
	}
	r.URI = uri
	return nil
}

func (p *reqParser) target(t string) error {
	r := p.r
	r.Target, r.RequestURI = t, t
	switch {
	case t == "":
		return errInvalidRequest
	case t[0] == '/':
		if !validURI(t) {
			return errInvalidRequest
		}
		return p.originForm(t)
	case t == "*":
		if r.Method != "OPTIONS" {
			return errInvalidRequest
		}
		r.Path = "*"
	case isAlpha(t[0]):
		return p.absolute(t)
	default:
		return errInvalidRequest
	}
	return nil
}

// absolute parses scheme://host[:port][/path] with nginx's host syntax
// (letters, digits, '.', '-', or an IP literal); userinfo is refused.
func (p *reqParser) absolute(t string) error {
	i := 1
	for i < len(t) && (isAlpha(t[i]) || isDigit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.') {
		i++
	}
	if !strings.HasPrefix(t[i:], "://") {
		return errInvalidRequest
	}
	i += 3
	hs := i
	if i < len(t) && t[i] == '[' {
		for i++; i < len(t) && t[i] != ']'; i++ {
			if !ipLiteralChar(t[i]) {
				return errInvalidRequest
			}
		}
		if i == len(t) {
			return errInvalidRequest
		}
		i++
	} else {
		for i < len(t) && (isAlpha(t[i]) || isDigit(t[i]) || t[i] == '.' || t[i] == '-') {
			i++
		}
	}
	he := i
	if i < len(t) && t[i] == ':' {
		for i++; i < len(t) && isDigit(t[i]); i++ {
		}
	}
	if i < len(t) && t[i] != '/' {
		return errInvalidRequest
	}
	path := t[i:]
	if path == "" {
		path = "/"
	} else if !validURI(path) {
		return errInvalidRequest
	}
	name, ok := hostName(t[hs:he])
	if !ok {
		return errInvalidURIHost
	}
	p.r.HostName, p.uriHost = name, true
	return p.originForm(path)
}

// originForm sets the fields that come from a target in origin form.
func (p *reqParser) originForm(t string) error {
	p.r.RequestURI = t
	p.r.Path, p.r.RawQuery = splitQuery(t)
	return nil
}

func ipLiteralChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case ':', '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// validURI refuses spaces, control characters and fragments: a fragment
// is never sent by a client and nginx's meaning of one is surprising.
func validURI(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

func splitQuery(t string) (path, query string) {
	if i := strings.IndexByte(t, '?'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return t, ""
}

// hostName validates a host as nginx's ngx_http_validate_host and returns
// it lowercased, without port or trailing dot. It allocates only when the
// host has upper-case letters.
func hostName(h string) (string, bool) {
	const (
		usual = iota
		literal
		rest
	)
	dot, n, state, upper := -2, len(h), usual, false
	for i := 0; i < len(h); i++ {
		switch c := h[i]; c {
		case '.':
			if dot == i-1 {
				return "", false
			}
			dot = i
		case ':':
			if state == usual {
				n, state = i, rest
			}
		case '[':
			if i == 0 {
				state = literal
			}
		case ']':
			if state == literal {
				n, state = i+1, rest
			}
		case '/', '\\':
			return "", false
		default:
			if c <= ' ' || c == 0x7f {
				return "", false
			}
			if 'A' <= c && c <= 'Z' && i < n {
				upper = true
			}
		}
	}
	if dot == n-1 {
		n--
	}
	if n <= 0 {
		return "", false
	}
	if upper {
		return strings.ToLower(h[:n]), true
	}
	return h[:n], true
}

func (p *reqParser) field(name, value string) error {
	switch k := classify(name); k {
	case hOther:
	case hHost:
		if p.hostSeen {
			return errDuplicateHost
		}
		p.hostSeen = true
		hn, ok := hostName(value)
		if !ok {
			return errInvalidHost
		}
		p.r.Host = value
		if !p.uriHost {
			p.r.HostName = hn
		}
	case hContentLength:
		if p.clSeen {
			return errDuplicateHeader
		}
		p.clSeen, p.cl = true, value
	case hTransferEncoding:
		if p.teSeen {
			return errDuplicateHeader
		}
		p.teSeen, p.te = true, value
	default:
		bit := uint16(1) << (k - hExpect)
		if p.unique&bit != 0 {
			return errDuplicateHeader
		}
		p.unique |= bit
	}
	return nil
}

// finish applies the whole-head rules in nginx's order.
func (p *reqParser) finish() error {
	r := p.r
	if r.Minor >= 1 && !p.hostSeen {
		return errNoHost
	}
	if p.clSeen {
		n, ok := parseContentLength(p.cl)
		if !ok {
			return errInvalidCL
		}
		r.ContentLength = n
	}
	if r.Method == "TRACE" {
		return errTrace
	}
	if p.teSeen {
		if r.Minor < 1 {
			return errTE10
		}
		if !equalFold(p.te, "chunked") {
			return errUnknownTE
		}
		if p.clSeen {
			return errTEAndCL
		}
		r.Chunked = true
	}
	r.Close = connClose(r.Header, r.Minor)
	return nil
}
