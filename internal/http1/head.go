package http1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// ReaderSize is the bufio.Reader size callers should use for client and
// upstream connections: a WebSocket handshake, cookies included, fits, so
// its head is parsed straight out of the reader's buffer. Longer heads are
// accumulated up to the Limits.
const ReaderSize = 4096

// bufSim replays nginx's header buffer allocation so that wsgate refuses
// exactly the heads nginx refuses: the head is read into a first buffer;
// a line that does not fit in what is left of the current buffer moves,
// whole, to a fresh large buffer; no line may exceed a large buffer and no
// more than the configured number of large buffers may be used. Offsets are
// those of the scanned data.
type bufSim struct {
	end  int // one past the current buffer
	size int // size of a large buffer
	free int // large buffers not yet used
}

// fit reports whether bytes [s, e) of one line can sit in one buffer,
// taking large buffers as nginx would. complete is false while the line's
// end is still to come: nginx then needs room for at least one more byte.
func (b *bufSim) fit(s, e int, complete bool) bool {
	for e > b.end || (!complete && e == b.end) {
		// nginx refuses to move a partial line that already fills a whole
		// large buffer; a line that starts exactly at the end of the
		// previous buffer has nothing to move.
		if s < b.end && b.end-s >= b.size {
			return false
		}
		if b.free <= 0 {
			return false
		}
		b.free--
		b.end = s + b.size
	}
	return true
}

// scanner finds the end of a head in growing data, enforcing the buffer
// limits line by line and, whenever it has to wait for more bytes,
// rejecting what nginx would already have rejected, so a client sending
// garbage (a TLS hello on a plain port, say) is answered at once rather
// than when its timeout fires.
type scanner struct {
	sim       bufSim
	isReq     bool
	method    string // request method, for parsing a response prefix
	lineStart int
	pos       int
	lines     int // complete lines so far
	line0End  int
	line0Done bool // line 0 fully validated
	checked   int  // bytes past the early byte check
	l0state   int  // element of a partial request line: method, target, version
	l0pos     int  // bytes of a partial request line checked
	l0mark    int  // start of the current element

	lim Limits // a request's limits, with their defaults
}

// scan continues over data (which only grows between calls and starts at
// the same byte) and returns the head's length once its empty line is in,
// 0 when more bytes are needed, or the error nginx would answer with.
//
// The outcome does not depend on how the bytes were split between calls:
// a limit met by a complete line is reported as if the line had arrived
// byte by byte, which is how nginx meets it.
func (sc *scanner) scan(data []byte) (int, error) {
	for {
		i := bytes.IndexByte(data[sc.pos:], '\n')
		if i < 0 {
			break
		}
		e := sc.pos + i + 1
		before := sc.sim
		if !sc.sim.fit(sc.lineStart, e, true) {
			return 0, sc.sizeFail(data, sc.lineStart, e, before)
		}
		n := e - sc.lineStart
		empty := n == 1 || (n == 2 && data[sc.lineStart] == '\r')
		if sc.lines == 0 {
			sc.line0End = e
		}
		sc.lines++
		sc.lineStart, sc.pos = e, e
		if empty && sc.lines > 1 {
			return e, nil
		}
	}
	sc.pos = len(data)
	probe := sc.sim
	if !probe.fit(sc.lineStart, len(data), false) {
		return 0, sc.sizeFail(data, sc.lineStart, len(data)+1, sc.sim)
	}
	sc.sim = probe
	return 0, sc.early(data)
}

// sizeFail reports a line that does not fit (complete as [ls, e), or
// partial with e one past the data): it finds how far a byte-by-byte reader
// would have got before running out of room and lets the early checks speak
// first for those bytes only.
func (sc *scanner) sizeFail(data []byte, ls, e int, sim bufSim) error {
	x := ls
	for x < e && sim.fit(ls, x, false) {
		x++
	}
	if err := sc.early(data[:x]); err != nil {
		return err
	}
	return sc.fail(data, ls, sc.tooLarge())
}

func (sc *scanner) tooLarge() error {
	switch {
	case !sc.isReq:
		return errRespTooBig
	case sc.lines == 0:
		return errURITooLong
	default:
		return errHeaderTooLarge
	}
}

// early runs the checks that need no complete head: the start line as it
// arrives, and bytes of header lines that are never valid (control
// characters, a CR not followed by LF). Each check gives the error the
// complete line would get, so the answer does not depend on timing.
func (sc *scanner) early(data []byte) error {
	from := 0
	switch {
	case sc.lines == 0 && sc.isReq:
		return sc.partialRequestLine(data)
	case sc.lines == 0:
		// For a response any fault in the status line is the same error,
		// so the byte check below covers it.
	case !sc.line0Done:
		sc.line0Done = true
		if err := sc.parsePrefix(data[:sc.line0End]); err != nil {
			return err
		}
		fallthrough
	default:
		if sc.isReq {
			from = sc.line0End
		}
	}
	j := max(sc.checked, from)
	for ; j < len(data); j++ {
		c := data[j]
		if c >= 0x20 && c != 0x7f || c == '\t' || c == '\n' {
			continue
		}
		if c == '\r' {
			if j+1 == len(data) {
				break // decided when the next byte is in
			}
			if data[j+1] == '\n' {
				continue
			}
		}
		ls := bytes.LastIndexByte(data[:j], '\n') + 1
		e := errInvalidHeader
		switch {
		case !sc.isReq && ls == 0:
			e = errRespStatusLine
		case !sc.isReq:
			e = errRespHeader
		}
		return sc.fail(data, ls, e)
	}
	sc.checked = j
	return nil
}

// partialRequestLine checks a request line still arriving, element by
// element as the complete parse does, resuming where it stopped.
func (sc *scanner) partialRequestLine(data []byte) error {
	for ; sc.l0pos < len(data); sc.l0pos++ {
		i, c := sc.l0pos, data[sc.l0pos]
		if c == '\r' && i+1 == len(data) {
			return nil // decided when the next byte is in
		}
		switch sc.l0state {
		case 0: // method
			if c == ' ' {
				if i == 0 {
					return errInvalidMethod
				}
				sc.l0state, sc.l0mark = 1, i+1
			} else if !methodChar(c) {
				return errInvalidMethod
			}
		case 1: // target
			if c == ' ' {
				p := reqParser{r: &Request{Method: string(data[:sc.l0mark-1])}}
				if err := p.target(string(data[sc.l0mark:i])); err != nil {
					return err
				}
				sc.l0state, sc.l0mark = 2, i+1
				continue
			}
			if c <= ' ' || c == 0x7f || c == '#' {
				return errInvalidRequest
			}
			if i == sc.l0mark && c != '/' && c != '*' && !isAlpha(c) ||
				i == sc.l0mark+1 && data[sc.l0mark] == '*' {
				return errInvalidRequest
			}
		default: // version
			if err := versionPrefix(data[sc.l0mark : i+1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// versionPrefix reports the error parseVersion will give for any version
// that starts with v, if that is already certain.
func versionPrefix(v []byte) error {
	const http = "HTTP/"
	for i := 0; i < len(v) && i < len(http); i++ {
		if v[i] != http[i] {
			return errInvalidRequest
		}
	}
	if len(v) <= len(http) {
		return nil
	}
	if v[5] < '1' || v[5] > '9' {
		return errInvalidRequest
	}
	i, major := 5, 0
	for ; i < len(v) && isDigit(v[i]); i++ {
		if major = major*10 + int(v[i]-'0'); major > 1 {
			return errInvalidVersion
		}
	}
	if i == len(v) {
		return nil
	}
	if v[i] != '.' {
		return errInvalidRequest
	}
	minor := 0
	for i++; i < len(v); i++ {
		if !isDigit(v[i]) {
			return errInvalidRequest
		}
		if minor = minor*10 + int(v[i]-'0'); minor > 99 {
			return errInvalidRequest
		}
	}
	return nil
}

// fail returns the first error in the complete lines data[:upTo], which
// nginx would have met before e, or else e.
func (sc *scanner) fail(data []byte, upTo int, e error) error {
	if upTo > 0 {
		if err := sc.parsePrefix(data[:upTo]); err != nil {
			return err
		}
	}
	return e
}

func (sc *scanner) parsePrefix(p []byte) error {
	if sc.isReq {
		_, err := parseRequest(string(p), true, sc.lim)
		return err
	}
	_, err := parseResponse(string(p), sc.method, true)
	return err
}

// readHead returns the head (start line through the empty line) as one
// string, consuming exactly those bytes from br. It returns io.EOF if the
// reader is at EOF before the first byte.
func readHead(br *bufio.Reader, sc *scanner) (string, error) {
	want := 1
	for {
		if _, err := br.Peek(want); err != nil {
			if err == io.EOF {
				if want == 1 {
					return "", io.EOF
				}
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		buf, _ := br.Peek(br.Buffered())
		end, err := sc.scan(buf)
		if err != nil {
			return "", err
		}
		if end > 0 {
			s := string(buf[:end]) // the head's only copy: fields slice it
			br.Discard(end)
			return s, nil
		}
		if len(buf) >= br.Size() {
			return readHeadSlow(br, sc, buf)
		}
		want = len(buf) + 1
	}
}

// readHeadSlow accumulates a head longer than br's buffer; the scanner's
// limits bound how much it takes.
func readHeadSlow(br *bufio.Reader, sc *scanner, buf []byte) (string, error) {
	acc := make([]byte, len(buf), 2*len(buf))
	copy(acc, buf)
	br.Discard(len(buf))
	for {
		chunk, rerr := br.ReadSlice('\n')
		acc = append(acc, chunk...)
		end, err := sc.scan(acc)
		if err != nil {
			return "", err
		}
		if end > 0 {
			// ReadSlice stops at each LF and the head ends at one, so
			// nothing past end has been taken from br.
			return string(acc[:end]), nil
		}
		if rerr != nil && rerr != bufio.ErrBufferFull {
			if rerr == io.EOF {
				return "", io.ErrUnexpectedEOF
			}
			return "", rerr
		}
	}
}

// cutLine returns the line starting at s[i:] without its LF or CRLF, and
// the offset of the next line.
func cutLine(s string, i int) (string, int) {
	j := strings.IndexByte(s[i:], '\n')
	if j < 0 {
		return s[i:], len(s)
	}
	line := s[i : i+j]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, i + j + 1
}

// parseFieldLine splits "Name: value" strictly: the name is a non-empty
// token immediately followed by a colon (so no obsolete folding and no
// whitespace before the colon), the value holds no control character
// other than HT, and surrounding whitespace is trimmed.
func parseFieldLine(line string) (name, value string, ok bool) {
	i := 0
	for i < len(line) && tchar[line[i]] {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return "", "", false
	}
	v := trimOWS(line[i+1:])
	for k := 0; k < len(v); k++ {
		if c := v[k]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	return line[:i], v, true
}

func methodChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || c == '_' || c == '-'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// parseVersion parses "HTTP/x.y" as nginx: the major version starts with a
// non-zero digit and anything above 1 is unsupported (vers, 505 for a
// request), the minor version is at most 99.
func parseVersion(v string) (major, minor int, ok, vers bool) {
	if len(v) < 6 || v[:5] != "HTTP/" || v[5] < '1' || v[5] > '9' {
		return 0, 0, false, false
	}
	i := 5
	for ; i < len(v) && isDigit(v[i]); i++ {
		major = major*10 + int(v[i]-'0')
		if major > 1 {
			return 0, 0, false, true
		}
	}
	if i == len(v) || v[i] != '.' {
		return 0, 0, false, false
	}
	i++
	if i == len(v) {
		return 0, 0, false, false
	}
	for ; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, 0, false, false
		}
		minor = minor*10 + int(v[i]-'0')
		if minor > 99 {
			return 0, 0, false, false
		}
	}
	return major, minor, true, false
}

// parseContentLength accepts digits only, as nginx's ngx_atoof.
func parseContentLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		d := int64(s[i] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// connClose applies HTTP's persistence default for the version to the
// Connection header.
func connClose(h Header, minor int) bool {
	if h.HasToken("Connection", "close") {
		return true
	}
	return minor == 0 && !h.HasToken("Connection", "keep-alive")
}
