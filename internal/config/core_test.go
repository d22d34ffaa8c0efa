package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMainContext(t *testing.T) {
	cfg, err := load(t, `
env TZ;
env WSGATE_X=a=b;
working_directory /tmp;
worker_rlimit_nofile 4096;
worker_priority -5;
worker_cpu_affinity 0101 1000;
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = load(t, "env TZ;\nenv WSGATE_X=a=b;\nworking_directory /tmp;\nworker_rlimit_nofile 4096;\nworker_priority -5;\nworker_cpu_affinity 0101 1000;\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvVar{{Name: "TZ"}, {Name: "WSGATE_X", Value: "a=b", HasValue: true}}
	if !slices.Equal(cfg.Env, want) {
		t.Errorf("env %+v", cfg.Env)
	}
	if cfg.WorkingDirectory != "/tmp" || cfg.RlimitNoFile != 4096 || cfg.Priority != -5 || !cfg.HasPriority {
		t.Errorf("main %+v", cfg)
	}
	slices.Sort(cfg.CPUs)
	if !slices.Equal(cfg.CPUs, []int{0, 2, 3}) || cfg.CPUAffinityAuto {
		t.Errorf("cpus %v", cfg.CPUs)
	}
	cfg, err = load(t, "worker_cpu_affinity auto;")
	if err != nil || !cfg.CPUAffinityAuto || cfg.CPUs != nil {
		t.Errorf("auto: %v %+v", err, cfg)
	}
	cfg, err = load(t, "worker_cpu_affinity auto 0110;")
	if err != nil || !cfg.CPUAffinityAuto || !slices.Equal(cfg.CPUs, []int{2, 1}) {
		t.Errorf("auto with a mask: %v %v", err, cfg.CPUs)
	}
}

// TestLoadModuleIgnored: a dynamic module wsgate does not have is ignored
// with a warning naming it, so that a distribution's modules-enabled does
// not stop a configuration that uses none of them; a directive of one is
// refused, by module name where wsgate knows the module, and otherwise as
// unknown with the modules loaded named.
func TestLoadModuleIgnored(t *testing.T) {
	cfg, err := load(t, `
load_module modules/ngx_stream_module.so;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
load_module modules/ngx_nothing.so;
`)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		`"load_module" of "modules/ngx_stream_module.so" ignored: wsgate loads no dynamic modules and does not implement ngx_stream_core_module; its directives are refused in `,
		`does not implement ngx_http_echo_module;`,
		`does not implement ngx_nothing;`,
	} {
		if len(cfg.Warnings) != 3 || !strings.Contains(cfg.Warnings[i], want) {
			t.Fatalf("warnings %q, want %q at %d", cfg.Warnings, want, i)
		}
	}
	_, err = load(t, "load_module modules/ngx_stream_module.so;\nstream { }\n")
	if err == nil || !strings.Contains(err.Error(), `"stream" belongs to nginx's ngx_stream_core_module, which wsgate does not implement`) {
		t.Errorf("stream block: %v", err)
	}
	_, err = load(t, "load_module modules/ngx_http_echo_module.so;\nhttp { server { location / { echo hi; } } }\n")
	if err == nil || !strings.Contains(err.Error(), `unknown directive "echo" (wsgate does not implement ngx_http_echo_module, loaded at `) {
		t.Errorf("echo: %v", err)
	}
}

func TestMainContextErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"worker_priority 21;", `invalid number "21"`},
		{"worker_rlimit_nofile 0;", `invalid number "0"`},
		{"worker_cpu_affinity 01x;", `invalid character "01x"`},
		{"working_directory /a; working_directory /b;", `"working_directory" directive is duplicate`},
		{"env =x;", `invalid value "=x"`},
		{"http { keepalive_disable opera; }", `invalid value "opera"`},
		{"http { lingering_close sometimes; }", `it must be "off", "on" or "always"`},
		{"http { limit_rate fast; }", `"limit_rate" directive invalid value`},
		{"http { satisfy some; }", `it must be "all" or "any"`},
		{"http { server { location / { underscores_in_headers on; } } }", `"underscores_in_headers" directive is not allowed here`},
		{"http { client_body_in_file_only maybe; }", `"on", "clean" or "off"`},
		{"http { server { listen 1 setfib=1; } }", `invalid parameter "setfib=1": routing tables (setfib) exist on FreeBSD only`},
		{"http { server { listen 1 backlog=x; } }", `invalid backlog "x"`},
		{"http { server { listen 1 so_keepalive=1:2; } }", `invalid so_keepalive value: "1:2"`},
		{"http { server { listen 1 ipv6only=maybe; } }", `invalid ipv6only flags "maybe"`},
		{"http { server { listen 9-8; } }", `invalid port range in "9-8"`},
		{"http { server { listen 127.0.0.1:70000; } }", `invalid port in "127.0.0.1:70000"`},
		{"http { server { listen 1 wat; } }", `invalid parameter "wat"`},
		{"http { server { listen 1; listen 1; } }", `a duplicate listen 0.0.0.0:1`},
		{"http { server { listen 1 backlog=5; } server { listen 1 rcvbuf=8k; } }", `duplicate listen options for 0.0.0.0:1`},
		{"http { server { listen 1-3 reuseport; } server { listen 2 bind; } }", `duplicate listen options for 0.0.0.0:2`},
		{"http { server { listen 127.0.0.1:5 bind; } server { listen 5; } }", `127.0.0.1:5 has "bind" or socket options, so it needs a socket of its own, but the wildcard listen 0.0.0.0:5 (`},
		{"http { server { listen [::1]:5 backlog=9; } server { listen [::]:5; } }", `[::1]:5 has "bind" or socket options`},
		{"http { server { server_name a*b; } }", `invalid server name or wildcard "a*b"`},
		{"http { server { server_name ~(; } }", `invalid server name regex`},
		{"user nosuchuser_wsgate;", `getpwnam("nosuchuser_wsgate") failed`},
		{"user root nosuchgroup_wsgate;", `getgrnam("nosuchgroup_wsgate") failed`},
	}
	for _, tt := range tests {
		_, err := LoadBytes(filepath.Join(t.TempDir(), "wsgate.conf"), []byte(tt.src), Options{Resolve: resolveExamples, Root: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), "wsgate.conf:") {
			t.Errorf("%q: error %q has no file:line", tt.src, err)
		}
	}
	// Without root, `user` is not looked up; nginx ignores it then, saying so.
	cfg, err := load(t, "user nosuchuser_wsgate;")
	if err != nil {
		t.Errorf("user as non-root: %v", err)
	} else if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], `the "user" directive makes sense only if the master process runs with super-user privileges, ignored in `) {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

func TestConnectionSettings(t *testing.T) {
	cfg, err := load(t, `http {
	keepalive_time 10m;
	limit_rate 100k;
	underscores_in_headers on;
	server_tokens off;
	send_lowat 1k;
	msie_padding on; msie_refresh off; connection_pool_size 512; request_pool_size 4k;
	client_body_in_file_only clean; client_body_in_single_buffer on;
	server {
		listen 1;
		ignore_invalid_headers off;
		lingering_close always;
		location / { limit_rate_after 1m; keepalive_disable msie6 safari; satisfy any; auth_delay 2s; }
		location /v { limit_rate $arg_rate; server_tokens build; }
		location /s { server_tokens "Gate $host"; keepalive_disable none; lingering_time 1s; lingering_timeout 2s; chunked_transfer_encoding off; }
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	loc := func(p string) *LocConf {
		for _, l := range srv.Locations.Children {
			if l.Path == p {
				return l.Conf
			}
		}
		t.Fatalf("no location %s", p)
		return nil
	}
	root, v, s := loc("/"), loc("/v"), loc("/s")
	if root.KeepaliveTime != 10*time.Minute || root.LimitRate.N != 100<<10 || root.LimitRateAfter.N != 1<<20 {
		t.Errorf("root %+v %+v %v", root.LimitRate, root.LimitRateAfter, root.KeepaliveTime)
	}
	if root.KeepaliveDisable != KeepaliveDisableMSIE6|KeepaliveDisableSafari || s.KeepaliveDisable != 0 || v.KeepaliveDisable != KeepaliveDisableMSIE6 {
		t.Errorf("keepalive_disable %b %b %b", root.KeepaliveDisable, s.KeepaliveDisable, v.KeepaliveDisable)
	}
	if !root.SatisfyAny || root.AuthDelay != 2*time.Second || v.SatisfyAny {
		t.Errorf("satisfy %v %v", root.SatisfyAny, root.AuthDelay)
	}
	if !root.UnderscoresInHeaders || root.IgnoreInvalidHeaders || root.LingeringClose != LingerAlways {
		t.Errorf("headers %v %v %v", root.UnderscoresInHeaders, root.IgnoreInvalidHeaders, root.LingeringClose)
	}
	if s.LingeringTime != time.Second || s.LingeringTimeout != 2*time.Second || v.LingeringTime != 30*time.Second || v.LingeringTimeout != 5*time.Second {
		t.Errorf("lingering %v %v %v %v", s.LingeringTime, s.LingeringTimeout, v.LingeringTime, v.LingeringTimeout)
	}
	if root.ServerTokens || !v.ServerTokens || !v.ServerTokensBuild || s.ServerTokensText == nil || s.ServerTokens {
		t.Errorf("server_tokens %v %v %v %v", root.ServerTokens, v.ServerTokens, v.ServerTokensBuild, s.ServerTokensText)
	}
	if s.ChunkedTransferEncoding || !v.ChunkedTransferEncoding {
		t.Errorf("chunked_transfer_encoding %v %v", s.ChunkedTransferEncoding, v.ChunkedTransferEncoding)
	}
	if v.LimitRate.Var == nil || v.LimitRateAfter.N != 0 {
		t.Errorf("limit_rate with a variable: %+v", v.LimitRate)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `"send_lowat" is not supported, ignored`) {
		t.Errorf("warnings %q", cfg.Warnings)
	}
	// Defaults.
	d, err := load(t, "http { server { listen 1; } }")
	if err != nil {
		t.Fatal(err)
	}
	dc := d.HTTP.Servers[0].Loc.Conf
	if dc.KeepaliveTime != time.Hour || dc.KeepaliveDisable != KeepaliveDisableMSIE6 || dc.LingeringClose != LingerOn ||
		!dc.IgnoreInvalidHeaders || dc.UnderscoresInHeaders || !dc.ServerTokens || dc.LimitRate.N != 0 {
		t.Errorf("defaults %+v", dc)
	}
}

func TestListenParameters(t *testing.T) {
	cfg, err := load(t, `http {
	server { listen 127.0.0.1:8000-8002 default_server backlog=64 rcvbuf=64k sndbuf=32k fastopen=8 deferred so_keepalive=30m::10 reuseport; }
	server { listen 127.0.0.1:8001 proxy_protocol; client_header_timeout 7s; listen [::1]:9000 ipv6only=off accept_filter=dataready; listen 127.0.0.1; listen 9001; listen 8003-8003 so_keepalive=off; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.HTTP.Servers[0], cfg.HTTP.Servers[1]
	if len(a.Listens) != 3 {
		t.Fatalf("a port range gave %d listens", len(a.Listens))
	}
	for i, ls := range a.Listens {
		if ls.AddrPort != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(8000+i)) {
			t.Errorf("listen %d: %v", i, ls.AddrPort)
		}
		o := ls.SockOpts
		if !ls.DefaultServer || o.Backlog != 64 || o.RcvBuf != 64<<10 || o.SndBuf != 32<<10 || o.FastOpen != 8 || !o.Deferred || !o.ReusePort ||
			o.KeepAlive != (SoKeepalive{Set: true, On: true, Idle: 30 * time.Minute, Count: 10}) {
			t.Errorf("listen %d: %+v", i, ls)
		}
		if o.DeferWait != 60*time.Second {
			t.Errorf("listen %d: deferred waits %v, want the default server's client_header_timeout", i, o.DeferWait)
		}
		// proxy_protocol on another server's listen applies to the address.
		if ls.ProxyProtocol != (i == 1) {
			t.Errorf("listen %d proxy_protocol %v", i, ls.ProxyProtocol)
		}
	}
	// The socket options of 8001 come from the first server, for both.
	if b.Listens[0].Backlog != 64 || !b.Listens[0].ProxyProtocol || b.Listens[0].DefaultServer {
		t.Errorf("merged %+v", b.Listens[0])
	}
	if b.Listens[1].IPv6Only || b.Listens[1].AddrPort.String() != "[::1]:9000" {
		t.Errorf("ipv6only=off %+v", b.Listens[1])
	}
	if b.Listens[2].AddrPort.String() != "127.0.0.1:80" || b.Listens[3].AddrPort.String() != "0.0.0.0:9001" {
		t.Errorf("defaults %v %v", b.Listens[2].AddrPort, b.Listens[3].AddrPort)
	}
	if k := b.Listens[4].KeepAlive; !k.Set || k.On {
		t.Errorf("so_keepalive=off %+v", k)
	}
}

func TestListenBindBesideWildcard(t *testing.T) {
	// Another family's wildcard does not hold the port.
	if _, err := load(t, "http { server { listen 127.0.0.1:5 bind; } server { listen [::]:5; } }"); err != nil {
		t.Error(err)
	}
	// Without bind or options the specific address shares the wildcard's socket.
	if _, err := load(t, "http { server { listen 127.0.0.1:5; } server { listen 5 backlog=9; } }"); err != nil {
		t.Error(err)
	}
}

func TestServerNames(t *testing.T) {
	cfg, err := load(t, `http {
	log_format n '$sub $tld';
	server { listen 1; server_name a.example.com a.example.com *.example.com .example.org www.example.*; }
	server { listen 1; server_name "~^(?<sub>[a-z]+)\.(?P<tld>[a-z]+)$" ~^w(\d+)$ .example.com example.org; }
	server { listen 2; server_name a.example.com; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`conflicting server name "a.example.com" on 0.0.0.0:1, ignored`,
		`conflicting server name ".example.com" on 0.0.0.0:1, ignored`,
		`conflicting server name "example.org" on 0.0.0.0:1, ignored`,
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", cfg.Warnings, want)
	}
	names := cfg.HTTP.Servers[0].Names
	kinds := []NameKind{NameExact, NameExact, NameWildcardPrefix, NameWildcardPrefix, NameWildcardSuffix}
	for i, n := range names {
		if n.Kind != kinds[i] {
			t.Errorf("%s: kind %v", n.Name, n.Kind)
		}
	}
	re := cfg.HTTP.Servers[1].Names[0]
	if re.Kind != NameRegex {
		t.Fatalf("regex %+v", re)
	}
	sub, _ := cfg.Vars.Lookup("sub")
	tld, _ := cfg.Vars.Lookup("tld")
	// The named captures are bound as those of location regexes are.
	if got, want := cfg.Captures[re.Regex], []NamedCapture{{Group: 1, Var: sub}, {Group: 2, Var: tld}}; !slices.Equal(got, want) {
		t.Errorf("captures %v, want %v", got, want)
	}
	if ok, _ := re.Regex.MatchString("WWW.EXAMPLE"); !ok {
		t.Errorf("server name regexes compare without case")
	}
	if n := cfg.HTTP.Servers[1].Names[1]; len(cfg.Captures[n.Regex]) != 0 {
		t.Errorf("numbered capture bound to a variable: %v", cfg.Captures[n.Regex])
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = load(t, "http { server { listen 1; server_name $hostname; } }")
	if err != nil || cfg.HTTP.Servers[0].Names[0].Name != strings.ToLower(host) {
		t.Errorf("server_name $hostname: %v %+v, want %q", err, cfg.HTTP.Servers[0].Names, host)
	}
}
