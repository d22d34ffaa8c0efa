// Package sockio reads and writes sockets whose descriptors are always
// non-blocking, for the relay, the handshake's raw writes and, through
// Conn, the records of TLS connections; Dial makes the backend's TCP
// connections for plain clients and those that proxy_bind binds (Socket).
// Two costs of the usual path are left out, both measured with perf on the
// 64-byte echo benchmark (about 4% of wsgate's CPU per message together):
//   - read(2) and write(2) on a socket go through the VFS layer
//     (rw_verify_area, sock_read_iter); recvfrom(2) and sendto(2) with no
//     address go straight to the socket, as nginx's recv and send do;
//   - syscall.Syscall tells the scheduler a call may block, which costs
//     its bookkeeping of a system call and the chance that the processor
//     is handed to another thread meanwhile. These calls cannot block: at
//     worst a large send copies 32 KiB and delivers it on loopback, tens
//     of microseconds, so the raw call is used.
package sockio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recv reads from the non-blocking socket fd into p, which is not empty.
func Recv(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd),
		uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Send writes p, which is not empty, to the non-blocking socket fd.
// MSG_NOSIGNAL: a peer that has gone away is an EPIPE error, not a signal.
func Send(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd),
		uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
