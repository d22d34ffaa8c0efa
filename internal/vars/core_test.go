package vars

import (
	"net/netip"
	"regexp"
	"testing"
	"time"
)

// coreInfo is a fixed answer to the server's side of the core variables.
type coreInfo struct {
	start     time.Time
	pipelined bool
	completed bool
	body      string
	dest      netip.AddrPort
	tlvs      []byte
	tcp       *TCPInfo
}

func (i *coreInfo) ConnStart() time.Time                { return i.start }
func (i *coreInfo) Pipelined() bool                     { return i.pipelined }
func (i *coreInfo) Completed() bool                     { return i.completed }
func (i *coreInfo) RequestBody() string                 { return i.body }
func (i *coreInfo) ProxyProtocolServer() netip.AddrPort { return i.dest }
func (i *coreInfo) ProxyProtocolTLVs() []byte           { return i.tlvs }
func (i *coreInfo) TCPInfo() (TCPInfo, bool) {
	if i.tcp == nil {
		return TCPInfo{}, false
	}
	return *i.tcp, true
}

func coreGet(t *testing.T, c *Ctx, name string) string {
	t.Helper()
	v, ok := c.GetName(name)
	if !ok {
		t.Fatalf("$%s is unknown", name)
	}
	return v
}

// TestCoreVarsWithoutServer: a Ctx without the server's answers gives
// nginx's values for a request that has none of these facts.
func TestCoreVarsWithoutServer(t *testing.T) {
	c := newCtx(NewTable())
	for name, want := range map[string]string{
		"pipe": ".", "request_completion": "", "request_body": "", "request_body_file": "",
		"connection_time": "", "proxy_protocol_server_addr": "", "proxy_protocol_server_port": "",
		"tcpinfo_rtt": "", "tcpinfo_rcv_space": "", "sent_trailer_grpc_status": "",
	} {
		if got := coreGet(t, c, name); got != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}
}

// TestCoreVars: each variable shows the server's answer in nginx's form.
func TestCoreVars(t *testing.T) {
	info := &coreInfo{
		start:     time.Now().Add(-1500 * time.Millisecond),
		pipelined: true,
		body:      "a=1&b=2",
		dest:      netip.MustParseAddrPort("[::ffff:192.0.2.7]:8443"),
		tcp:       &TCPInfo{RTT: 51, RTTVar: 25, SndCwnd: 10, RcvSpace: 65483},
		tlvs:      []byte("\x01\x00\x02h2"),
	}
	c := newCtx(NewTable())
	c.Core = info
	for name, want := range map[string]string{
		"pipe": "p", "request_body": "a=1&b=2", "request_completion": "",
		"proxy_protocol_server_addr": "192.0.2.7", "proxy_protocol_server_port": "8443",
		"tcpinfo_rtt": "51", "tcpinfo_rttvar": "25", "tcpinfo_snd_cwnd": "10", "tcpinfo_rcv_space": "65483",
		"proxy_protocol_tlv_alpn": "h2", "proxy_protocol_tlv_0x01": "h2", "proxy_protocol_tlv_authority": "",
	} {
		if got := coreGet(t, c, name); got != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}
	if ct := coreGet(t, c, "connection_time"); !regexp.MustCompile(`^[1-9][0-9]*\.[0-9]{3}$`).MatchString(ct) {
		t.Errorf("$connection_time = %q, want seconds.milliseconds of at least 1.5", ct)
	}
	// $tcpinfo_* are read at each use; $request_completion keeps its
	// first value, as nginx's.
	info.completed = true
	info.tcp.RTT = 77
	if got := coreGet(t, c, "request_completion"); got != "" {
		t.Errorf("$request_completion changed within a request: %q", got)
	}
	if got := coreGet(t, c, "tcpinfo_rtt"); got != "77" {
		t.Errorf("$tcpinfo_rtt is cached: %q", got)
	}
	c2 := newCtx(NewTable())
	c2.Core = info
	if got := coreGet(t, c2, "request_completion"); got != "OK" {
		t.Errorf("$request_completion after completion = %q", got)
	}
}

// TestRequestID: 32 hexadecimal digits, fixed within a request, new for
// the next one.
func TestRequestID(t *testing.T) {
	tab := NewTable()
	c := newCtx(tab)
	id := coreGet(t, c, "request_id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("$request_id = %q", id)
	}
	if again := coreGet(t, c, "request_id"); again != id {
		t.Errorf("$request_id changed within a request: %q then %q", id, again)
	}
	c.Reset(tab)
	if next := coreGet(t, c, "request_id"); next == id {
		t.Errorf("$request_id repeated for the next request: %q", next)
	}
}

// TestNginxVersion: $nginx_version is the version the server sets.
func TestNginxVersion(t *testing.T) {
	old := ServerVersion
	defer func() { ServerVersion = old }()
	ServerVersion = "9.8.7"
	if got := coreGet(t, newCtx(NewTable()), "nginx_version"); got != "9.8.7" {
		t.Errorf("$nginx_version = %q", got)
	}
}

// TestProxyProtocolTLVNames: a TLV name nginx does not know is an unknown
// variable at load.
func TestProxyProtocolTLVNames(t *testing.T) {
	tab := NewTable()
	for _, ok := range []string{"$proxy_protocol_tlv_alpn", "$proxy_protocol_tlv_ssl_cn", "$proxy_protocol_tlv_0x30", "$proxy_protocol_tlv_ssl_verify"} {
		if _, err := tab.Compile(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"$proxy_protocol_tlv_nope", "$proxy_protocol_tlv_0x123", "$proxy_protocol_tlv_ssl_x"} {
		if _, err := tab.Compile(bad); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
