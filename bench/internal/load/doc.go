// Package load is the harness's load generator: closed-loop handshake, echo
// and throughput modes that time a window and sample the target process's CPU
// time around it, and an idle-tunnel agent driven line by line by the runner.
// It speaks WebSocket through the harness's own codec and treats the target as
// a black box reached on a loopback address: it must not know which proxy, if
// any, sits between it and the echo backend.
package load
