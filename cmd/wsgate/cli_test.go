package main

import (
	"bytes"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/config"
)

func TestParseFlagsForms(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want options
	}{
		{[]string{"-t", "-c", "a.conf"}, options{test: true, conf: "a.conf"}},
		{[]string{"--test", "--conf", "a.conf"}, options{test: true, conf: "a.conf"}},
		{[]string{"--conf=a.conf", "--quiet", "--dump"}, options{conf: "a.conf", quiet: true, dump: true}},
		{[]string{"-tq", "-ca.conf"}, options{test: true, quiet: true, conf: "a.conf"}},
		{[]string{"-sreload", "-p", "/srv"}, options{signal: "reload", prefix: "/srv"}},
		{[]string{"--signal", "quit", "--prefix", "/srv", "-g", "daemon off;"}, options{signal: "quit", prefix: "/srv", globals: "daemon off;"}},
		{[]string{"-c", "-tq"}, options{conf: "-tq"}}, // a value is never split
		{[]string{"-V"}, options{versionLong: true}},
		{[]string{"--build-info"}, options{versionLong: true}},
		{[]string{"-?"}, options{help: true}},
	} {
		var o options
		var stderr bytes.Buffer
		if _, err := parseFlags("wsgate", mainFlags(&o), tt.args, &stderr); err != nil {
			t.Errorf("%q: %v %s", tt.args, err, &stderr)
			continue
		}
		if !reflect.DeepEqual(o, tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.args, o, tt.want)
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{{"-x"}, {"--nope"}, {"-tx"}, {"-c"}} {
		var o options
		var stderr bytes.Buffer
		if _, err := parseFlags("wsgate", mainFlags(&o), args, &stderr); err == nil {
			t.Errorf("%q accepted", args)
		}
		if !strings.Contains(stderr.String(), "Try 'wsgate --help'") {
			t.Errorf("%q: no pointer to --help in %q", args, stderr.String())
		}
	}
}

func TestBuildDetails(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"},
		{Key: "vcs.time", Value: "2026-12-06T15:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := buildDetails(bi)
	for _, want := range []string{"commit: 0123abcd (with uncommitted changes)\n", "commit time: 2026-12-06T15:00:00Z\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("buildDetails = %q, want %q in it", got, want)
		}
	}
	if got := buildDetails(&debug.BuildInfo{}); !strings.Contains(got, "commit: unknown") {
		t.Errorf("without a VCS stamp: %q", got)
	}
	buildCommit, buildTime = "feedbeef", "2026-12-01T00:00:00Z"
	defer func() { buildCommit, buildTime = "", "" }()
	if got := buildDetails(&debug.BuildInfo{}); got != "commit: feedbeef\ncommit time: 2026-12-01T00:00:00Z\n" {
		t.Errorf("with -X values: %q", got)
	}
	if got := buildDetails(bi); !strings.Contains(got, "0123abcd") {
		t.Errorf("the toolchain's stamp does not win: %q", got)
	}
}

func TestRedact(t *testing.T) {
	src := `ssl_certificate_key "data:-----BEGIN EC PRIVATE KEY-----SECRET1";
ssl_password_file data:SECRET2;
ssl_certificate_key /etc/ssl/key.pem;
proxy_set_header Authorization "Basic SECRET3";
proxy_set_header authorization $http_authorization;
add_header Set-Cookie "session=SECRET4";
proxy_set_header Host $host;
http { server { location / { proxy_set_header Cookie "a=SECRET5"; } } }
secure_link_secret SECRET6;
`
	ds, err := conf.Parse("t.conf", []byte(src), conf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	conf.Dump(&b, redact(ds))
	out := b.String()
	for _, secret := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6"} {
		if strings.Contains(out, secret) {
			t.Errorf("%s printed:\n%s", secret, out)
		}
	}
	for _, kept := range []string{"/etc/ssl/key.pem", "$http_authorization", "Host $host", "data:<redacted>", `Authorization "<redacted>"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q missing:\n%s", kept, out)
		}
	}
	var orig bytes.Buffer
	conf.Dump(&orig, ds)
	if !strings.Contains(orig.String(), "SECRET1") {
		t.Error("redact changed its input")
	}
}

// TestProxyConfigLoads: the generated configuration loads through the
// same path as a file, with one upstream server per --to.
func TestProxyConfigLoads(t *testing.T) {
	text, err := proxyConfig(proxyOptions{from: ":8080", to: []string{"127.0.0.1:9000", "ws://127.0.0.1:9001/"}, readTimeout: "1h", pingInterval: "30s", pid: "/tmp/x.pid"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadBytes(proxyName, []byte(text), config.Options{Prefix: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	var up *config.Upstream
	for _, u := range cfg.HTTP.Upstreams {
		if u.Name == "backend" {
			up = u
		}
	}
	if up == nil || len(up.Servers) != 2 || up.Servers[1].Addr != "127.0.0.1:9001" {
		t.Fatalf("upstream: %+v", up)
	}
	if ls := cfg.HTTP.Servers[0].Listens[0]; ls.AddrPort.Port() != 8080 || !ls.AddrPort.Addr().IsUnspecified() {
		t.Errorf("listen: %+v", ls)
	}
}

func TestProxyConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		po   proxyOptions
		want string
	}{
		{proxyOptions{from: ":8080"}, "--to HOST:PORT is required"},
		{proxyOptions{from: ":8080", to: []string{"wss://x:1"}}, "not supported yet"},
		{proxyOptions{from: ":8080", to: []string{"127.0.0.1"}}, "want HOST:PORT"},
		{proxyOptions{from: ":8080", to: []string{"a:1; evil"}}, "want HOST:PORT"},
		{proxyOptions{from: "x y", to: []string{"a:1"}}, "--from"},
		{proxyOptions{from: ":8080", to: []string{"a:1"}, tlsCert: "c.pem"}, "go together"},
	} {
		_, err := proxyConfig(tt.po)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.po, err, tt.want)
		}
	}
}

// TestHelpAndManShareTheTable: every visible option appears in --help,
// the man page and the completion script.
func TestHelpAndManShareTheTable(t *testing.T) {
	var o options
	var po proxyOptions
	help := helpText(mainPage, mainFlags(&o)) + helpText(proxyPage, proxyFlags(&po))
	var man, comp bytes.Buffer
	writeMan(&man, &o, &po)
	if err := writeCompletion(&comp, "bash", &o, &po); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(mainFlags(&o), proxyFlags(&po)...) {
		if f.hidden {
			continue
		}
		long := "--" + f.long
		if !strings.Contains(help, long) || !strings.Contains(man.String(), strings.ReplaceAll(long, "-", `\-`)) || !strings.Contains(comp.String(), long) {
			t.Errorf("%s missing from help, man page or completion", long)
		}
	}
	if strings.Contains(help, "--man") {
		t.Error("hidden --man shown in help")
	}
	if err := writeCompletion(&comp, "tcsh", &o, &po); err == nil {
		t.Error("tcsh completion accepted")
	}
}
