package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wsgate/wsgate/internal/resolver/dnstest"
)

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestLookupHostAAndAAAA(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetHost("app.test", "127.0.0.2", "::1")
	r := New(Config{Servers: []string{ns.Addr}, Timeout: 5 * time.Second})
	got, ttl, err := r.LookupHost(context.Background(), "app.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.2", "::1"}; !slices.Equal(addrStrings(got), want) {
		t.Fatalf("addrs %v, want %v", got, want)
	}
	if ttl <= 0 || ttl > time.Second {
		t.Fatalf("ttl %v, want the record's 1s", ttl)
	}
	r4 := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	got, _, _ = r4.LookupHost(context.Background(), "app.test")
	if want := []string{"127.0.0.2"}; !slices.Equal(addrStrings(got), want) {
		t.Fatalf("ipv6=off: %v, want %v", got, want)
	}
	r6 := New(Config{Servers: []string{ns.Addr}, NoIPv4: true})
	got, _, _ = r6.LookupHost(context.Background(), "app.test")
	if want := []string{"::1"}; !slices.Equal(addrStrings(got), want) {
		t.Fatalf("ipv4=off: %v, want %v", got, want)
	}
}

func TestCacheHonoursTTLAndValid(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetTTL(3600)
	ns.SetHost("app.test", "127.0.0.2")
	now := time.Unix(1000, 0)
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	r.now = func() time.Time { return now }
	ctx := context.Background()
	if _, ttl, _ := r.LookupHost(ctx, "app.test"); ttl != time.Hour {
		t.Fatalf("ttl %v, want 1h", ttl)
	}
	ns.SetHost("app.test", "127.0.0.3")
	q := ns.Queries()
	got, _, _ := r.LookupHost(ctx, "APP.test")
	if addrStrings(got)[0] != "127.0.0.2" || ns.Queries() != q {
		t.Fatalf("cached answer: got %v and %d new queries", got, ns.Queries()-q)
	}
	now = now.Add(time.Hour)
	got, _, _ = r.LookupHost(ctx, "app.test")
	if addrStrings(got)[0] != "127.0.0.3" {
		t.Fatalf("after the TTL: %v, want the new record", got)
	}

	rv := New(Config{Servers: []string{ns.Addr}, NoIPv6: true, Valid: 5 * time.Second})
	rv.now = func() time.Time { return now }
	if _, ttl, _ := rv.LookupHost(ctx, "app.test"); ttl != 5*time.Second {
		t.Fatalf("valid=5s: ttl %v", ttl)
	}
}

func TestServersTriedInTurn(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // takes questions, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	ns := dnstest.Start(t)
	ns.SetHost("app.test", "127.0.0.9")
	r := New(Config{Servers: []string{dead.LocalAddr().String(), ns.Addr}, NoIPv6: true, Timeout: 10 * time.Second})
	got, _, err := r.LookupHost(context.Background(), "app.test")
	if err != nil || addrStrings(got)[0] != "127.0.0.9" {
		t.Fatalf("got %v, %v; want the second server's answer", got, err)
	}
}

func TestTruncatedAnswerRetriedOverTCP(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetHost("app.test", "127.0.0.4")
	ns.SetTruncate(true)
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	got, _, err := r.LookupHost(context.Background(), "app.test")
	if err != nil || addrStrings(got)[0] != "127.0.0.4" {
		t.Fatalf("got %v, %v", got, err)
	}
	if ns.TCPQueries() == 0 {
		t.Fatal("no question came over TCP")
	}
}

func TestErrorsAreNginxWorded(t *testing.T) {
	ns := dnstest.Start(t)
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true, Timeout: time.Second})
	_, _, err := r.LookupHost(context.Background(), "missing.test")
	if err == nil || err.Error() != "missing.test could not be resolved (3: Host not found)" {
		t.Fatalf("NXDOMAIN: %v", err)
	}
	ns.SetSilent(true)
	_, _, err = r.LookupHost(context.Background(), "other.test")
	var e *Error
	if !errors.As(err, &e) || !e.Timeout() || !strings.Contains(err.Error(), "(110: Operation timed out)") {
		t.Fatalf("silent server: %v", err)
	}
	if s := r.Stats(); s.NXDomain != 1 || s.TimedOut != 1 || s.Name != 2 || s.SRV != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLookupSRV(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetHost("a.test", "127.0.0.5")
	ns.SetHost("b.test", "127.0.0.6")
	ns.SetSRV("_http._tcp.app.test",
		dnstest.SRV{Target: "b.test", Port: 8002, Priority: 20, Weight: 1},
		dnstest.SRV{Target: "a.test", Port: 8001, Priority: 10, Weight: 5},
		dnstest.SRV{Target: "gone.test", Port: 8003, Priority: 10, Weight: 1})
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	got, _, err := r.LookupSRV(context.Background(), "_http._tcp.app.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Target != "a.test" || got[0].Port != 8001 || got[0].Weight != 5 ||
		got[0].Addrs[0].String() != "127.0.0.5" || got[1].Port != 8002 {
		t.Fatalf("got %+v", got)
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetTTL(60)
	ns.SetHost("app.test", "127.0.0.2")
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	done := make(chan error)
	for range 20 {
		go func() {
			_, _, err := r.LookupHost(context.Background(), "app.test")
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if q := ns.Queries(); q != 1 {
		t.Fatalf("%d queries for 20 concurrent lookups, want 1", q)
	}
}

func TestServerAddr(t *testing.T) {
	cases := map[string]string{"127.0.0.1": "127.0.0.1:53", "[::1]:5353": "[::1]:5353", "[::1]": "[::1]:53", "10.0.0.1:5300": "10.0.0.1:5300"}
	for in, want := range cases {
		got, err := ServerAddr(in, nil)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:70000", "ns.test"} {
		if _, err := ServerAddr(bad, nil); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	got, err := ServerAddr("ns.test:5300", func(string) ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("127.0.0.7")}, nil })
	if err != nil || got[0] != "127.0.0.7:5300" {
		t.Errorf("host name: %v %v", got, err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetTTL(3600)
	for i := range MaxEntries + 10 {
		ns.SetHost(fmt.Sprintf("h%d.test", i), "127.0.0.1")
	}
	r := New(Config{Servers: []string{ns.Addr}, NoIPv6: true})
	for i := range MaxEntries + 10 {
		if _, _, err := r.LookupHost(context.Background(), fmt.Sprintf("h%d.test", i)); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	n := len(r.cache)
	r.mu.Unlock()
	if n > MaxEntries {
		t.Fatalf("%d cached answers, want at most %d", n, MaxEntries)
	}
}

func TestAnswerToAnotherQuestionIsIgnored(t *testing.T) {
	// A server that answers every question with a record for another name.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			resp := new(dns.Msg)
			resp.SetReply(&q)
			resp.Question[0].Name = "evil.test."
			resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "evil.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 6, 6, 6)}}
			out, _ := resp.Pack()
			pc.WriteTo(out, from)
		}
	}()
	r := New(Config{Servers: []string{pc.LocalAddr().String()}, NoIPv6: true, Timeout: time.Second})
	if addrs, _, err := r.LookupHost(context.Background(), "app.test"); err == nil {
		t.Fatalf("took %v from an answer to another question", addrs)
	}
}

func TestEmptyAnswerDoesNotShortenTTL(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetTTL(300)
	ns.SetHost("v4only.test", "127.0.0.2") // no AAAA: an empty answer
	r := New(Config{Servers: []string{ns.Addr}})
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	addrs, ttl, err := r.LookupHost(context.Background(), "v4only.test")
	if err != nil || len(addrs) != 1 || ttl != 300*time.Second {
		t.Fatalf("got %v, ttl %v, %v; want the A record's 300s", addrs, ttl, err)
	}
}
