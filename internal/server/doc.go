// Package server is wsgate's HTTP/1.1 front end and request pipeline: it
// owns the listening sockets and client connections, picks the server block
// and location for each request, runs nginx's phases in order (rewrite,
// content, log) and hands upgraded connections to the tunnel package. It
// reads only the typed config snapshot; a reload swaps the snapshot without
// touching open connections. Backend-side work (request heads, dialing)
// lives in package proxy.
package server
