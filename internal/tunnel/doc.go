// Package tunnel relays bytes between a client and a backend once an HTTP
// upgrade has succeeded. It passes WebSocket frames through untouched while
// tracking their boundaries, so that wsgate can close a tunnel with a proper
// close frame on its own decisions (shutdown, drain, timeouts, limits, a
// frame it cannot follow), after what the other peer had sent and lingering
// on the closed peer's answer, while a peer's own end, frames the endpoints
// must judge (unless strict validation is asked for) and everything else
// pass as on a direct connection; enforce
// frame, message and rate limits on frame headers, and ping a silent leg at a
// frame boundary and consume the answer; it holds no buffer while a tunnel is
// idle, and after a second or two of silence no goroutine either (park.go).
// A parked direction's messages are relayed by wsgate's own epoll loop, one
// per P, without a goroutine, whenever that cannot block, and it stays
// parked (loop.go); everything else (a send that would block, a large
// frame, a close, a handover, pings and limits) goes back to the
// direction's relay goroutine.
// The payload of a large frame moves by splice(2), kernel to kernel, once
// its header has been parsed (splice.go).
// It knows nothing of HTTP, of configuration, of upstream selection or
// of the registry of live tunnels: the caller hands it two connections and
// the limits that apply, and is told, once, how they ended.
package tunnel
