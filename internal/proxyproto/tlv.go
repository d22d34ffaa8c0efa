package proxyproto

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// TLVKey names one value of a v2 header's TLV section: a TLV by its
// type, a sub-TLV of the SSL TLV (0x20), or the SSL TLV's verify field.
type TLVKey struct {
	Type   byte
	SSL    bool // Type is a sub-TLV of the SSL TLV
	Verify bool // the SSL TLV's 32-bit verify result, in decimal
}

const typeSSL = 0x20

var tlvNames = map[string]byte{"alpn": 0x01, "authority": 0x02, "unique_id": 0x05, "ssl": typeSSL, "netns": 0x30}

var sslNames = map[string]byte{"version": 0x21, "cn": 0x22, "cipher": 0x23, "sig_alg": 0x24, "key_alg": 0x25}

// ParseTLVName reads the NAME of nginx's $proxy_protocol_tlv_NAME: a type
// name ("alpn", "authority", "unique_id", "ssl", "netns") or a hexadecimal
// type ("0x01"); with the prefix "ssl_", a sub-TLV of the SSL TLV by name
// ("ssl_cn", "ssl_version", "ssl_cipher", "ssl_sig_alg", "ssl_key_alg")
// or type ("ssl_0x22"), or "ssl_verify".
func ParseTLVName(name string) (TLVKey, bool) {
	if t, ok := tlvNames[name]; ok {
		return TLVKey{Type: t}, true
	}
	if t, ok := hexType(name); ok {
		return TLVKey{Type: t}, true
	}
	sub, ok := strings.CutPrefix(name, "ssl_")
	if !ok {
		return TLVKey{}, false
	}
	if sub == "verify" {
		return TLVKey{SSL: true, Verify: true}, true
	}
	if t, ok := sslNames[sub]; ok {
		return TLVKey{Type: t, SSL: true}, true
	}
	if t, ok := hexType(sub); ok {
		return TLVKey{Type: t, SSL: true}, true
	}
	return TLVKey{}, false
}

func hexType(s string) (byte, bool) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || h == "" || len(h) > 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(h, 16, 8)
	return byte(n), err == nil
}

// Lookup returns the value k names in tlvs, a v2 header's TLV section
// (Header.TLVs); false when it is absent or the section is malformed.
func Lookup(tlvs []byte, k TLVKey) (string, bool) {
	if !k.SSL {
		v, ok := find(tlvs, k.Type)
		return string(v), ok
	}
	ssl, ok := find(tlvs, typeSSL)
	if !ok || len(ssl) < 5 { // client (1 byte), verify (4 bytes), sub-TLVs
		return "", false
	}
	if k.Verify {
		return strconv.FormatUint(uint64(binary.BigEndian.Uint32(ssl[1:5])), 10), true
	}
	v, ok := find(ssl[5:], k.Type)
	return string(v), ok
}

// find returns the value of the first TLV of type t in b.
func find(b []byte, t byte) ([]byte, bool) {
	for len(b) >= 3 {
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return nil, false
		}
		if b[0] == t {
			return b[3 : 3+n], true
		}
		b = b[3+n:]
	}
	return nil, false
}
