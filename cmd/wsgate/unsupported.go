//go:build !linux

package main

// wsgate builds and runs on Linux only: its relay parks idle tunnels in
// epoll and moves bytes with splice(2) and recvfrom(2) flags that other
// systems lack. On any other system this file stops the build with
// "undefined: wsgate_builds_only_on_Linux".
var _ = wsgate_builds_only_on_Linux

func main() {}
