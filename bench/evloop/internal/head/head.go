// Package head finds the end of an HTTP/1.1 request head, the one piece of
// HTTP the evaluation proxies understand: they forward the head as it came
// and relay bytes afterwards without parsing WebSocket frames.
package head

import "bytes"

// Max is the longest request head a proxy accepts; a longer one is refused
// with BadRequest.
const Max = 16 << 10

// BadRequest is the answer to a head longer than Max.
var BadRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

var crlf2 = []byte("\r\n\r\n")

// End returns the length of the head at the start of b, through its
// CRLFCRLF, or -1 when b holds no complete head yet.
func End(b []byte) int {
	i := bytes.Index(b, crlf2)
	if i < 0 {
		return -1
	}
	return i + len(crlf2)
}

// Accumulator gathers a request head that arrives in pieces.
type Accumulator struct {
	buf []byte
}

// Add appends p. It returns the bytes so far once they hold a complete head
// (the head and any bytes after it, which belong to the tunnel), done=false
// while more is needed, and tooLong when Max bytes hold no head.
func (a *Accumulator) Add(p []byte) (all []byte, done, tooLong bool) {
	a.buf = append(a.buf, p...)
	if End(a.buf) >= 0 {
		all, a.buf = a.buf, nil
		return all, true, false
	}
	return nil, false, len(a.buf) >= Max
}
