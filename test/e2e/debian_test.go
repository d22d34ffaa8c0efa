package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Debian's nginx package (installed by .ci/run) ships a configuration tree
// in /etc/nginx. These tests read it in place: wsgate must load it as
// nginx does, and serve the default site as nginx serves it.

// TestDebianConfigTest: `wsgate -t -c /etc/nginx/nginx.conf` passes on the
// distribution's own files, read in place: nginx.conf, modules-enabled,
// mime.types, conf.d and sites-enabled/default.
func TestDebianConfigTest(t *testing.T) {
	needDebianTree(t)
	out, err := exec.Command(binary, "-t", "-c", debianConf).CombinedOutput()
	if err != nil {
		t.Fatalf("wsgate -t -c %s: %v\n%s", debianConf, err, out)
	}
	if !strings.Contains(string(out), debianConf+" test is successful") {
		t.Errorf("output:\n%s", out)
	}
}

// debianCopy writes the configuration Debian's nginx.conf describes, with
// only what a test must change: the pid file and logs go to the test's
// folder, and the default site (a copy of sites-enabled/default) listens on
// a loopback port instead of *:80 and [::]:80. Every other file is read in
// place.
func debianCopy(t *testing.T, main string, port int) string {
	t.Helper()
	site, err := os.ReadFile("/etc/nginx/sites-enabled/default")
	if err != nil {
		t.Fatal(err)
	}
	sites := filepath.Join(t.TempDir(), "sites-enabled")
	os.MkdirAll(sites, 0o755)
	var lines []string
	for _, line := range strings.Split(string(site), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "listen 80 "):
			line = "\tlisten 127.0.0.1:" + strconv.Itoa(port) + " default_server;"
		case strings.HasPrefix(trim, "listen [::]:80 "):
			continue
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(filepath.Join(sites, "default"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(
		"pid /run/nginx.pid;", "pid {{DIR}}/logs/x.pid;",
		"error_log /var/log/nginx/error.log;", "error_log {{DIR}}/logs/error.log;",
		"access_log /var/log/nginx/access.log;", "access_log {{DIR}}/logs/access.log;",
		"include /etc/nginx/sites-enabled/*;", "include "+sites+"/*;",
	)
	out := r.Replace(main)
	for _, must := range []string{"{{DIR}}/logs/x.pid", "{{DIR}}/logs/error.log", sites} {
		if !strings.Contains(out, must) {
			t.Fatalf("Debian's nginx.conf changed shape: no place for %s", must)
		}
	}
	return out
}

// TestDebianDefaultSite: Debian's configuration tree, with the default
// site moved to a loopback port, serves Debian's default page under
// wsgate as under nginx: same status, headers and body.
func TestDebianDefaultSite(t *testing.T) {
	main := needDebianTree(t)
	ngPort, wsPort := freePort(t), freePort(t)
	ng := startNginx(t, strings.Replace(debianCopy(t, main, ngPort), "x.pid", "nginx.pid", 1))
	g := startGate(t, strings.Replace(debianCopy(t, main, wsPort), "x.pid", "wsgate.pid", 1))
	p := &diffPair{nginx: "127.0.0.1:" + strconv.Itoa(ngPort), wsgate: "127.0.0.1:" + strconv.Itoa(wsPort), ng: ng, gate: g}
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET /index.nginx-debian.html HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
		"GET /missing HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		// nginx.conf has `gzip on;`: the page is compressed for a client that accepts it.
		"GET / HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\r\n",
		"GET /missing HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
	} {
		p.compare(t, req)
	}
	got := sendRaw(t, p.wsgate, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	if got.Status != 200 || !strings.Contains(string(got.Body), "Welcome to nginx!") {
		t.Errorf("the default page: %d %q", got.Status, clip(got.Body))
	}
}

// TestDebianGzipSettings: the gzip lines Debian's nginx.conf ships
// commented out load when they are enabled, under wsgate -t as under
// nginx -t.
func TestDebianGzipSettings(t *testing.T) {
	main := needDebianTree(t)
	enabled := 0
	var lines []string
	for _, line := range strings.Split(main, "\n") {
		if trim := strings.TrimSpace(line); strings.HasPrefix(trim, "# gzip_") {
			line = strings.TrimPrefix(trim, "# ")
			enabled++
		}
		lines = append(lines, line)
	}
	if enabled < 5 {
		t.Fatalf("Debian's nginx.conf changed shape: %d commented gzip lines", enabled)
	}
	conf := filepath.Join(t.TempDir(), "nginx.conf")
	os.WriteFile(conf, []byte(strings.Join(lines, "\n")), 0o644)
	for _, cmd := range [][]string{{binary, "-t", "-c", conf}, {"nginx", "-t", "-c", conf}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s -t: %v\n%s", cmd[0], err, out)
		}
	}
}
