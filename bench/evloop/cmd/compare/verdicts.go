package main

// verdicts ends results.md: what each library costs and cannot do that
// wsgate needs, read from its source and checked by this module's tests
// (cmd/evproxy). The tables above carry the figures.
const verdicts = `## Differences from wsgate

The relays forward the request head unparsed and then copy bytes; wsgate
parses and routes the request, applies its limits, and parses every
WebSocket frame header. Their figures are the floor of each loop's own cost,
not a like-for-like proxy. CPU figures vary from run to run by more than
some of the differences between targets (nginx's own paced figure was 123
µs in one run and 176 in the next): read the CPU tables as rough; the
system-call counts and the idle memory are the firm part.

## Verdicts

- **gnet v2** (v2.9.7). Cheap per idle tunnel (a connection struct and its
  ring buffers, allocated lazily). Cannot connect inside its loop:
  EventLoop.Register runs net.Dial on a worker goroutine (Go's netpoller:
  its own epoll_ctl add and delete), dups the descriptor, closes the
  original and hands the copy to the loop, hence about 34 socket and epoll
  calls per handshake against nginx's 20 and wsgate's 26. It closes a socket at its end of
  input, so a half-close tears the reverse direction down (the relay shuts
  the peer's output through Fd(); gnet has no shutdown of its own). Output
  buffers grow without bound and there is no way to pause reading a
  connection (no back-pressure). No TLS, no splice; a socket can be copied
  out (Dup) but not handed to a goroutine and taken back.
- **nbio** (v1.6.8). Has a real non-blocking connect in its pollers
  (DialAsync, plus a getsockname and fcntl per dial) and small idle
  tunnels. But it accepts through a net.Listener (Go's netpoller), then dups
  and closes every accepted descriptor; it closes a socket on EPOLLRDHUP, so
  no half-close; a backend lands on the poller its descriptor hashes to, not
  the client's, so a tunnel needs a lock. Under the 16-worker handshake load
  about three handshakes in a thousand got end-of-file before the 101 (see
  the failures) where nginx, wsgate and the other relays had none; nbio indexes
  connections by descriptor with no generation, which a stale event for a
  reused descriptor can hit. Its TLS is its own fork of crypto/tls (llib).
- **evio** (v1.0.8). Serves accepted sockets only: no connect, no foreign
  socket, no descriptor, no shutdown; the backend side has to be goroutines
  (a 16 KiB buffer and a stack per tunnel). Its Wake replaces output that
  still waits for the socket, so large transfers lose data (this module's
  test shows it at 1 MiB), and every write re-arms epoll twice. Unmaintained.
  Unusable for wsgate.
- **netpoll** (cloudwego, v0.7.2). Reads into per-connection linked buffers
  and runs the handler on a goroutine pool; DialConnection is a non-blocking
  connect that the calling goroutine waits out. About 37 socket and epoll
  calls per handshake (fcntl and epoll_ctl six times each) and some 22 KiB
  per idle tunnel; it closes a connection at its end of input and tells a
  clean end from an error to no one, so no half-close. It is the
  goroutine-per-request model wsgate already gets from the Go runtime.
- **std** (net, a goroutine per direction). The reference for Go's
  netpoller: keeps half-close, can splice, TLS through crypto/tls; pays two
  stacks and two buffers per tunnel (34 KiB idle here) and ten setsockopt
  calls per handshake (keep-alive options and TCP_NODELAY on both sockets).
- **epoll** (this module, golang.org/x/sys/unix, about 350 lines). Does
  all of wsgate's hot path inside the loop: accept4 without the peer address,
  non-blocking connect, one edge-triggered registration per socket for both
  directions (no epoll_ctl after the add), stop reading at a short read,
  back-pressure by pausing the reader, half-close both ways, stale events
  told apart by a generation number, two small structs per tunnel. About 21
  socket and epoll calls per handshake, nginx's count, and well under 1 KiB
  per idle tunnel. Blocking in epoll_wait keeps a thread in a system call,
  and the Go runtime's monitor then wakes often (the nanosleep counts).
- **epark** (the same loop, its epoll descriptor waited on in Go's
  netpoller, then a non-blocking epoll_wait). An idle loop gives its thread
  back and the runtime's nanosleeps drop somewhat; it costs a second
  epoll_wait when a wake-up finds the set empty. Same socket calls as
  epoll.
- **eraw** (epark with raw system calls). The same calls as epark, each
  made with syscall.RawSyscall, which does not tell the scheduler. None can
  block: the sockets are non-blocking, and the loop's epoll_wait runs only
  once the netpoller has reported events. So none wakes the runtime's
  monitor thread (sysmon), which sleeps while every processor is idle and,
  once a call through the scheduler's path has woken it, polls every 20 µs
  until the process idles again: under strace its nanosleeps per handshake
  fall from about 7 to 0.1. At a paced 2,000 handshakes/s, where the loop
  idles between handshakes, it was the cheapest Go relay in two runs: 148
  µs per handshake against epark's 188 (nginx 176, wsgate 294), and 161
  against 196 (nginx 123, wsgate 311). At saturation, where the process
  never idles, it is level with epoll and epark within the noise.

## Recommendation

Write wsgate's own loop on golang.org/x/sys/unix, as the epoll relay here
does, and take none of these libraries:

- none of them keeps a half-closed tunnel open, which wsgate must (each
  closes a socket at its end of input);
- gnet and evio cannot connect inside the loop, and evio loses data;
- nbio, the one with an in-loop connect, failed handshakes under load;
- none lets a socket leave the loop for a goroutine (TLS, a slow path) and
  come back, none splices, and none uses crypto/tls;
- their handshakes cost 29 to 38 socket and epoll calls, more than wsgate's
  goroutine path today (26), while a direct loop costs about nginx's 20,
  and holds an idle tunnel in well under a kilobyte (wsgate: about 3 KiB,
  nginx: 17.5 KiB);
- their median CPU per handshake was about wsgate's or above it here (0.93
  to 1.47 times), and above the direct loops'.

CPU: per message every relay, wsgate included, is within about 20% of
nginx, the kernel's work dominating. Per handshake the direct loops came out
0.95 to 1.06 times nginx at saturation, and wsgate 1.42 (1.25 to 1.33, and
1.57, in the run before). At a paced
2,000/s the raw-call loop was 0.84 and 1.31 times nginx in two runs,
against 1.07 and 1.59 for the same loop with ordinary calls, and 1.67 and
2.52 for wsgate. The relays parse nothing, so these are floors, not what
wsgate's own loop would cost; but they locate wsgate's excess per
handshake: its goroutine path and the net package at saturation, and at
part load also the monitor thread's wake-ups that any call through the
scheduler's path brings.

Wsgate's own loop has to add what these relays leave out: frame parsing,
timers, limits, and the hand-off of a descriptor to the goroutine path
(EPOLL_CTL_DEL, then os.NewFile and net.FileConn) and back (EPOLL_CTL_ADD).
It should wait parked in Go's netpoller (an idle loop then holds no thread,
and costs the same as a blocking epoll_wait within the noise) and make only
raw calls on its sockets and its epoll set, as eraw does: a single call
through the scheduler's path per handshake (an accept, a read, a close)
wakes the monitor thread at part load.
`
