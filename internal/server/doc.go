// Package server is wsgate's HTTP/1.1 front end and request pipeline: it
// owns the listening sockets and client connections, picks the server block
// and location for each request, runs nginx's phases in order (rewrite,
// content, log) and hands upgraded connections to the tunnel package. It
// reads only the typed config snapshot; a reload swaps the snapshot without
// touching open connections.
//
// For proxy_pass it keeps the request's side: reading (and, with
// proxy_request_buffering, buffering) the client's body, the choice of
// peers and proxy_next_upstream's retry policy, and the relay of the
// response to the client. What is sent is decided by package proxy; the
// backend connections themselves (dialing, the keepalive cache, writing
// the request, reading the response head, releasing the connection) are
// package backend's.
package server
