package backend

import (
	"syscall"
)

// transparent sets IP_TRANSPARENT (IPV6_TRANSPARENT for IPv6) before the
// bind, so that proxy_bind may name an address that is not this host's.
// The kernel refuses it without CAP_NET_ADMIN: the dial then fails with
// "operation not permitted", logged as the connect error.
func transparent(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if network == "tcp6" {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Transparent, 1)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_TRANSPARENT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ipv6Transparent is IPV6_TRANSPARENT from linux/in6.h, which the syscall
// package does not name.
const ipv6Transparent = 75
