package http1

import (
	"bufio"
	"io"
	"strings"
)

// DefaultResponseHeaderSize is nginx's proxy_buffer_size on this platform
// (one memory page): the most a response head may take.
const DefaultResponseHeaderSize = 4096

// Response is a parsed upstream response head. Its strings share one
// allocation (the head as received). It is not safe for concurrent mutation.
type Response struct {
	Proto  string // "HTTP/1.1"
	Major  int
	Minor  int
	Status int
	Reason string // as sent, possibly ""
	Header Header

	ContentLength int64 // -1 when absent
	Chunked       bool

	// BodyAllowed is false for responses that never have a body: to HEAD,
	// 1xx (including 101), 204 and 304, whatever their headers say.
	BodyAllowed bool
	// CloseDelimited is set when the body runs to the end of the
	// connection (a body is allowed and neither length nor chunking is given).
	CloseDelimited bool
	// Close is set when the connection cannot be reused after this response.
	Close bool

	HeaderBytes int // size of the head on the wire

	// Trailer holds the trailer fields of a chunked body, set by Body's
	// reader before it returns io.EOF.
	Trailer Header
}

// Body returns a reader for the response body framed by r's head.
func (r *Response) Body(br *bufio.Reader) io.Reader {
	if !r.BodyAllowed {
		return noBody{}
	}
	if r.Chunked {
		return NewChunkedReaderTrailer(br, &r.Trailer)
	}
	return BodyReader(br, r.ContentLength, r.Chunked, r.CloseDelimited)
}

// ReadResponse reads one response head from br for a request with method
// and leaves br at the first body byte. maxHeader bounds the head as
// proxy_buffer_size does (<= 0 means DefaultResponseHeaderSize). 1xx heads
// are returned like any other: the caller reads again for the final one.
//
// It returns io.EOF when br ends before any byte, io.ErrUnexpectedEOF inside
// the head, a *StatusError with status 502 for a head nginx would refuse,
// and other read errors unchanged.
func ReadResponse(br *bufio.Reader, method string, maxHeader int) (*Response, error) {
	if maxHeader <= 0 {
		maxHeader = DefaultResponseHeaderSize
	}
	sc := scanner{method: method, sim: bufSim{end: maxHeader}}
	s, err := readHead(br, &sc)
	if err != nil {
		return nil, err
	}
	return parseResponse(s, method, false)
}

// responseFields is a Response with room for the header fields of most
// answers (a 101 has three to six): the two in one allocation.
type responseFields struct {
	Response
	fields [6]Field
}

func parseResponse(s, method string, prefix bool) (*Response, error) {
	rf := &responseFields{Response: Response{ContentLength: -1, HeaderBytes: len(s)}}
	r := &rf.Response
	line, i := cutLine(s, 0)
	if !r.statusLine(line) {
		return nil, errRespStatusLine
	}
	if n := strings.Count(s[i:], "\n") - 1; n > len(rf.fields) {
		r.Header = make(Header, 0, n)
	} else if n > 0 {
		r.Header = rf.fields[:0:n]
	}
	var cl, te string
	var clSeen, teSeen bool
	for i < len(s) {
		line, i = cutLine(s, i)
		if line == "" {
			break
		}
		name, value, ok := parseFieldLine(line)
		if !ok {
			return nil, errRespHeader
		}
		switch classify(name) {
		case hContentLength:
			if clSeen {
				return nil, errRespDuplicate
			}
			clSeen, cl = true, value
		case hTransferEncoding:
			if teSeen {
				return nil, errRespDuplicate
			}
			teSeen, te = true, value
		}
		r.Header = append(r.Header, Field{Name: name, Value: value})
	}
	if prefix {
		return r, nil
	}
	if clSeen {
		n, ok := parseContentLength(cl)
		if !ok {
			return nil, errRespCL
		}
		r.ContentLength = n
	}
	if teSeen {
		if !equalFold(te, "chunked") {
			return nil, errRespTE
		}
		if clSeen {
			return nil, errRespTEAndCL
		}
		r.Chunked = true
	}
	r.BodyAllowed = method != "HEAD" && r.Status >= 200 && r.Status != 204 && r.Status != 304
	r.CloseDelimited = r.BodyAllowed && !r.Chunked && r.ContentLength < 0
	r.Close = r.CloseDelimited || connClose(r.Header, r.Minor)
	return r, nil
}

// statusLine parses "HTTP/1.x SP 3DIGIT [SP reason]"; like nginx it takes a
// missing reason.
func (r *Response) statusLine(line string) bool {
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return false
	}
	major, minor, ok, _ := parseVersion(line[:sp])
	if !ok {
		return false
	}
	rest := line[sp+1:]
	if len(rest) < 3 || rest[0] < '1' || rest[0] > '9' || !isDigit(rest[1]) || !isDigit(rest[2]) {
		return false
	}
	status := int(rest[0]-'0')*100 + int(rest[1]-'0')*10 + int(rest[2]-'0')
	reason := rest[3:]
	if reason != "" {
		if reason[0] != ' ' {
			return false
		}
		reason = reason[1:]
		for i := 0; i < len(reason); i++ {
			if c := reason[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return false
			}
		}
	}
	r.Proto, r.Major, r.Minor, r.Status, r.Reason = line[:sp], major, minor, status, reason
	return true
}
