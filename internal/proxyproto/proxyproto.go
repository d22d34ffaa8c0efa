package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is a header that is neither a valid v1 nor v2 PROXY header.
var ErrInvalid = errors.New("broken header")

var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Header is what a PROXY header says. Source is invalid for LOCAL (v2)
// and UNKNOWN (v1) headers: the connection is the proxy's own.
type Header struct {
	Source, Dest netip.AddrPort
	// TLVs is a v2 header's TLV section, after the addresses (see Lookup).
	TLVs []byte
}

// Read consumes one PROXY header from br. br must have a buffer of at least
// 232 bytes (the largest v1 header is 107).
func Read(br *bufio.Reader) (Header, error) {
	first, err := br.Peek(1)
	if err != nil {
		return Header{}, err
	}
	switch first[0] {
	case 'P':
		return readV1(br)
	case '\r':
		return readV2(br)
	}
	return Header{}, ErrInvalid
}

func readV1(br *bufio.Reader) (Header, error) {
	// "PROXY TCP4 src dst sport dport\r\n", at most 107 bytes.
	var line []byte
	for len(line) < 108 {
		b, err := br.ReadByte()
		if err != nil {
			return Header{}, err
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) || !bytes.HasPrefix(line, []byte("PROXY ")) {
		return Header{}, ErrInvalid
	}
	f := strings.Split(string(line[6:len(line)-2]), " ")
	if len(f) >= 1 && f[0] == "UNKNOWN" {
		return Header{}, nil
	}
	if len(f) != 5 || (f[0] != "TCP4" && f[0] != "TCP6") {
		return Header{}, ErrInvalid
	}
	src, err1 := netip.ParseAddr(f[1])
	dst, err2 := netip.ParseAddr(f[2])
	sp, err3 := port(f[3])
	dp, err4 := port(f[4])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || src.Is4() != (f[0] == "TCP4") || dst.Is4() != (f[0] == "TCP4") {
		return Header{}, ErrInvalid
	}
	return Header{Source: netip.AddrPortFrom(src, sp), Dest: netip.AddrPortFrom(dst, dp)}, nil
}

func port(s string) (uint16, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, ErrInvalid
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func readV2(br *bufio.Reader) (Header, error) {
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return Header{}, err
	}
	if !bytes.Equal(hdr[:12], sigV2) || hdr[12]>>4 != 2 {
		return Header{}, ErrInvalid
	}
	cmd, fam := hdr[12]&0x0f, hdr[13]
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return Header{}, err
	}
	switch cmd {
	case 0: // LOCAL: health checks from the balancer itself
		return Header{}, nil
	case 1: // PROXY
	default:
		return Header{}, ErrInvalid
	}
	switch fam {
	case 0x11: // TCP over IPv4
		if n < 12 {
			return Header{}, ErrInvalid
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		return Header{
			Source: netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10])),
			Dest:   netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12])),
			TLVs:   body[12:],
		}, nil
	case 0x21: // TCP over IPv6
		if n < 36 {
			return Header{}, ErrInvalid
		}
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		return Header{
			Source: netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(body[32:34])),
			Dest:   netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(body[34:36])),
			TLVs:   body[36:],
		}, nil
	case 0x00: // UNSPEC
		return Header{}, nil
	}
	return Header{}, ErrInvalid
}

// AppendV2 writes a v2 PROXY header for src and dst (for tests and for
// proxying onward).
func AppendV2(dst []byte, src, to netip.AddrPort) []byte {
	dst = append(dst, sigV2...)
	dst = append(dst, 0x21)
	if src.Addr().Is4() && to.Addr().Is4() {
		dst = append(dst, 0x11, 0, 12)
		a, b := src.Addr().As4(), to.Addr().As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	} else {
		dst = append(dst, 0x21, 0, 36)
		a, b := src.Addr().As16(), to.Addr().As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, to.Port())
}
