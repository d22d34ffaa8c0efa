// Package http1 is wsgate's HTTP/1.1 message codec: it reads request and
// response heads from a bufio.Reader with nginx's limits, statuses and
// strictness (so a message either parses the way nginx would accept it or is
// refused before it can be smuggled past a backend), frames bodies
// (Content-Length, chunked, close-delimited) and writes status lines with
// nginx's reason phrases. It must not know about configuration, virtual
// servers, proxying, upstreams or WebSockets: it hands back parsed heads and
// typed errors, and the caller decides what they mean.
package http1
