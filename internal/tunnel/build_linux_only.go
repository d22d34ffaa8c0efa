//go:build !linux

package tunnel

// This package uses system calls only Linux has (epoll, splice(2),
// recvfrom(2) flags, IP_BIND_ADDRESS_NO_PORT): on any other system this
// file stops the build with "undefined: wsgate_builds_only_on_Linux".
var _ = wsgate_builds_only_on_Linux
