// Package proxy decides what wsgate sends to a backend and what it accepts
// back: the URI (nginx's proxy_pass replacement rules), the request head
// (proxy_set_header, nginx's default and hidden headers, body framing),
// the filtering of response headers, and the check of a 101 answer. It does
// no I/O: package backend writes the request and reads the answer, and the
// server package relays it to the client.
package proxy
