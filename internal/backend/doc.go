// Package backend is wsgate's transport to upstream servers: it dials a
// peer (proxy_connect_timeout, tcp_nodelay), keeps idle connections for
// reuse (the upstream `keepalive` cache), writes a request head and body,
// and reads the response head.
//
// Its contract with the caller:
//
//   - Transport.Connect hands out a Conn bound to one peer: an idle
//     connection from the Pool, or a new one that holds a
//     worker_connections slot (Slots) until it is closed.
//   - Conn.Send writes one request and returns the response head. A
//     kept-alive connection the peer closed while it was idle is replaced
//     by a fresh one, once, when nothing of the body was read yet. An
//     error of the request body's source is returned unchanged (it is the
//     client's, not the peer's); every other error is an *Error, a failure
//     of the peer.
//   - Conn.Release ends the use, exactly once: a failed or spent
//     connection is closed and gives its slot back, a drained one (see
//     Conn.Drained) goes back to the Pool; the peer's Done is called with
//     the failed flag and the read buffer goes back to its pool. A Conn
//     handed to a tunnel is released with Detach instead: the tunnel then
//     owns the socket, its slot and the peer's use.
//
// The package knows nothing of locations, retries or the client: which
// failures are retried elsewhere (proxy_next_upstream) is the server's.
package backend
