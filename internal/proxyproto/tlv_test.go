package proxyproto

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
)

// tlv encodes one TLV.
func tlv(t byte, v string) string {
	return string([]byte{t, byte(len(v) >> 8), byte(len(v))}) + v
}

// v2WithTLVs is a v2 PROXY header for TCP over IPv4 followed by tlvs.
func v2WithTLVs(tlvs string) string {
	h := AppendV2(nil, netip.MustParseAddrPort("198.51.100.7:4000"), netip.MustParseAddrPort("10.0.0.1:443"))
	n := 12 + len(tlvs)
	h[14], h[15] = byte(n>>8), byte(n)
	return string(h) + tlvs
}

// TestTLVs reads TLVs by the names nginx's $proxy_protocol_tlv_NAME takes.
func TestTLVs(t *testing.T) {
	ssl := tlv(0x20, "\x07"+"\x00\x00\x00\x12"+tlv(0x21, "TLSv1.3")+tlv(0x22, "client.example"))
	in := v2WithTLVs(tlv(0x01, "h2")+tlv(0x02, "ws.example.com")+ssl+tlv(0xe0, "custom")) + "GET /"
	br := bufio.NewReaderSize(strings.NewReader(in), 256)
	h, err := Read(br)
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := br.Peek(br.Buffered()); string(rest) != "GET /" {
		t.Fatalf("left %q", rest)
	}
	for name, want := range map[string]string{
		"alpn": "h2", "0x01": "h2", "authority": "ws.example.com", "0x02": "ws.example.com", "0xe0": "custom", "0xE0": "custom",
		"ssl_version": "TLSv1.3", "ssl_0x21": "TLSv1.3", "ssl_cn": "client.example", "ssl_verify": "18",
		"unique_id": "", "netns": "", "ssl_cipher": "", "0x03": "",
	} {
		k, ok := ParseTLVName(name)
		if !ok {
			t.Errorf("ParseTLVName(%q) refused", name)
			continue
		}
		if got, _ := Lookup(h.TLVs, k); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, bad := range []string{"", "x", "0x", "0x100", "0xg1", "ssl_", "ssl_nope", "ssl_0x", "sslcn", "alpn2"} {
		if _, ok := ParseTLVName(bad); ok {
			t.Errorf("ParseTLVName(%q) accepted", bad)
		}
	}
	// A TLV whose length runs past the section is not read.
	cut := v2WithTLVs("\x01\x00\x09h2") + "GET /"
	h, err = Read(bufio.NewReaderSize(strings.NewReader(cut), 256))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := Lookup(h.TLVs, TLVKey{Type: 0x01}); ok {
		t.Errorf("a truncated TLV gave %q", v)
	}
}
