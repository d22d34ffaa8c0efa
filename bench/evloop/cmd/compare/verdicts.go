package main

// verdicts ends results.md: what each library cannot do that wsgate needs,
// read from its source and checked by the module's tests. The figures above
// say what each costs.
const verdicts = `## Differences from wsgate

The relays forward the request head unparsed and copy bytes; wsgate parses
the request, routes it, applies limits and parses every WebSocket frame
header. Their figures are a floor for a loop's own cost, not a like-for-like
proxy.

## Verdicts

- **gnet v2**: cannot connect inside its loop: EventLoop.Register dials with
  net.Dial on a worker goroutine (Go's netpoller), dups the descriptor and
  enrolls the copy (dup, close, and a cross-thread hand-off per backend).
  It closes a socket on its end of input, so a half-close tears the other
  direction down (the relay shuts the peer's output through Fd(), which
  gnet does not offer itself). Output buffers grow without bound (no
  read pause for back-pressure). No splice, no TLS; a socket can be copied
  out (Dup) but not handed to a goroutine and back.
- **nbio**: has a real non-blocking DialAsync in its pollers (plus a
  getsockname and fcntl per dial). Closes on end of input (EPOLLRDHUP is an
  error to it), so no half-close. The backend lands on the poller its
  descriptor hashes to, not the client's, so tunnels need locks. Accepts
  through a net.Listener (Go's netpoller). Write buffering is bounded only by
  closing. Its TLS and HTTP layers exist (nbhttp, llib) but are its own, not
  crypto/tls on a net.Conn.
- **evio**: serves accepted sockets only: no dial, no foreign socket, no
  descriptor, no half-close; the backend side has to be goroutines. Its Wake
  replaces output still waiting for the socket, so large transfers lose
  data (the module's test shows it on 1 MiB); every write re-arms epoll twice.
  Unmaintained. Not usable.
- **netpoll**: reads into per-connection link buffers and runs the handler
  on a goroutine pool; DialConnection does a non-blocking connect that the
  calling goroutine waits out. It closes on end of input (no half-close)
  and does not tell a clean end from an error. Its per-connection buffers
  and goroutine hand-offs are the model wsgate already has in Go's runtime.
- **std** (goroutine per connection per direction): the reference for what
  Go's netpoller costs; keeps half-close, can splice (not used here, as a
  frame-parsing proxy cannot), TLS through crypto/tls, but pays two goroutine
  stacks and two buffers per tunnel.
- **epoll** (this module's raw loop, about 350 lines): everything wsgate's
  hot path needs in the loop itself: accept4, non-blocking connect,
  edge-triggered registration once per socket (no epoll_ctl after ADD),
  short-read stop, back-pressure by pausing reads, half-close both ways,
  two small structs per tunnel. It lacks what a library would add: TLS,
  timers, and handing a socket to a goroutine (a descriptor can leave the
  loop with EPOLL_CTL_DEL and os.NewFile/net.FileConn, one dup, and come
  back with EPOLL_CTL_ADD, under wsgate's own control).

## Recommendation

Write wsgate's own loop on golang.org/x/sys/unix, as the epoll relay here
does, rather than take one of these libraries. None of the libraries keeps a
half-closed tunnel open (wsgate must pass a half-close on, not tear the
tunnel down), gnet and evio cannot connect inside the loop, evio loses data,
none lets wsgate keep frame parsing, TLS and the slow path on goroutines with
a clean hand-off, and their costs (see the tables) do not beat a direct loop.
The raw loop's figures are the floor to aim at; keep the standard-library
path for TLS, HTTP/2, HTTP/3 and anything that blocks.
`
