package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMainContextProcess: env, working_directory, worker_rlimit_nofile,
// worker_rlimit_core, worker_priority and worker_cpu_affinity act on the running process, as
// /proc shows them; env TZ=zone shows in $time_local.
func TestMainContextProcess(t *testing.T) {
	port := freePort(t)
	work := t.TempDir()
	// The affinity mask names the last CPU this test may run on.
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := range 1024 {
		if allowed.IsSet(i) {
			cpu = i
		}
	}
	mask := "1" + strings.Repeat("0", cpu)
	g := startGate(t, fmt.Sprintf(`
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
env TZ=Asia/Tokyo;
working_directory %s;
worker_rlimit_nofile 4000;
worker_rlimit_core 1m;
worker_priority 5;
worker_cpu_affinity %s;
events { worker_connections 64; }
http {
    access_log off;
    server { listen 127.0.0.1:%d; location / { return 200 "$time_local\n"; } }
}`, work, mask, port))
	proc := "/proc/" + strconv.Itoa(g.cmd.Process.Pid)
	if cwd, err := os.Readlink(proc + "/cwd"); err != nil || cwd != work {
		t.Errorf("working directory %q (%v), want %q", cwd, err, work)
	}
	limits, _ := os.ReadFile(proc + "/limits")
	if !regexp.MustCompile(`Max open files\s+4000\s+4000`).Match(limits) {
		t.Errorf("worker_rlimit_nofile 4000:\n%s", limits)
	}
	if !regexp.MustCompile(`Max core file size\s+1048576\s+1048576`).Match(limits) {
		t.Errorf("worker_rlimit_core 1m:\n%s", limits)
	}
	stat, _ := os.ReadFile(proc + "/stat")
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:])); len(f) < 17 || f[16] != "5" {
		t.Errorf("worker_priority 5: nice field %v", f)
	}
	status, _ := os.ReadFile(proc + "/status")
	if !regexp.MustCompile(`(?m)^Cpus_allowed_list:\s+` + strconv.Itoa(cpu) + `$`).Match(status) {
		t.Errorf("worker_cpu_affinity %s: %s", mask, regexp.MustCompile(`(?m)^Cpus_allowed_list:.*$`).Find(status))
	}
	_, _, body := rawRequest(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(body, "+0900") {
		t.Errorf("env TZ=Asia/Tokyo: $time_local %q", body)
	}
}

// TestListenSocketOptions: so_keepalive arms TCP keepalive on accepted
// connections (their keepalive timer shows in /proc/net/tcp), backlog=
// sets the listen queue (ss shows it), and plain listeners have neither.
func TestListenSocketOptions(t *testing.T) {
	ka, plain := freePort(t), freePort(t)
	startGate(t, fmt.Sprintf(`
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server { listen 127.0.0.1:%d so_keepalive=1m:10s:3 backlog=77 rcvbuf=64k fastopen=16 deferred; return 200 "ka\n"; }
    server { listen 127.0.0.1:%d; return 200 "plain\n"; }
}`, ka, plain))
	timer := func(port int) string {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Part of a request head: with `deferred` the server accepts
		// only once data came; the rest never comes.
		io.WriteString(c, "GET / HTTP/1.1\r\n")
		// The server's side of this connection: local port = port,
		// remote port = the client's.
		client := c.LocalAddr().(*net.TCPAddr).Port
		want := fmt.Sprintf(":%04X 0100007F:%04X 01 ", port, client)
		var tr string
		waitFor(t, slow(5*time.Second), "the accepted socket in /proc/net/tcp", func() bool {
			b, _ := os.ReadFile("/proc/net/tcp")
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, want) {
					f := strings.Fields(line)
					tr, _, _ = strings.Cut(f[5], ":")
					return true
				}
			}
			return false
		})
		return tr
	}
	if tr := timer(ka); tr != "02" {
		t.Errorf("so_keepalive: the accepted socket's timer is %q, want 02 (keepalive)", tr)
	}
	if tr := timer(plain); tr != "00" {
		t.Errorf("without so_keepalive: the accepted socket's timer is %q, want 00", tr)
	}
	if ss, err := exec.LookPath("ss"); err == nil {
		out, _ := exec.Command(ss, "-ltnH", "sport", "= :"+strconv.Itoa(ka)).Output()
		if f := strings.Fields(string(out)); len(f) < 3 || f[2] != "77" {
			t.Errorf("backlog=77: ss says %q", out)
		}
	}
}

// runTest runs `-t` of the named binary on conf and returns its output and
// whether it passed.
func runTest(t testing.TB, bin, conf string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	path := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(conf, "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir+"/", "-c", path).CombinedOutput()
	return strings.ReplaceAll(string(out), path, "FILE"), err == nil
}

// TestDiffConfigTest: `wsgate -t` catches what `nginx -t` catches: a user
// that does not exist (as root), a duplicate listen, duplicate listen
// options, and it warns about conflicting server names, with nginx's
// words.
func TestDiffConfigTest(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	head := "pid {{DIR}}/logs/x.pid;\nerror_log {{DIR}}/logs/error.log;\nevents {}\nhttp {\naccess_log off;\n"
	cases := []struct {
		name, main, http, want string
		ok                     bool
	}{
		{"duplicate listen", "", "server { listen 127.0.0.1:1; listen 127.0.0.1:1; }", `a duplicate listen 127.0.0.1:1 in FILE:6`, false},
		{"duplicate options", "", "server { listen 127.0.0.1:1 backlog=10; }\nserver { listen 127.0.0.1:1 rcvbuf=8k; server_name b; }", `duplicate listen options for 127.0.0.1:1 in FILE:7`, false},
		{"duplicate default", "", "server { listen 127.0.0.1:1 default_server; }\nserver { listen 127.0.0.1:1 default_server; server_name b; }", `a duplicate default server for 127.0.0.1:1 in FILE:7`, false},
		{"conflicting names", "", "server { listen 127.0.0.1:1; server_name a.test .b.test; }\nserver { listen 127.0.0.1:1; server_name a.test b.test; }", `conflicting server name "b.test" on 127.0.0.1:1, ignored`, true},
		{"bad port range", "", "server { listen 127.0.0.1:9-8; }", `invalid port`, false},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, struct {
			name, main, http, want string
			ok                     bool
		}{"unknown user", "user nosuchuser_wsgate_e2e;\n", "", `getpwnam("nosuchuser_wsgate_e2e") failed in FILE:1`, false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.main + head + tc.http + "\n}\n"
			ngOut, ngOK := runTest(t, nginx, strings.Replace(conf, "x.pid", "nginx.pid", 1))
			wsOut, wsOK := runTest(t, binary, strings.Replace(conf, "x.pid", "wsgate.pid", 1))
			if ngOK != tc.ok || wsOK != tc.ok {
				t.Errorf("-t passed: nginx %v, wsgate %v, want %v\nnginx: %s\nwsgate: %s", ngOK, wsOK, tc.ok, ngOut, wsOut)
			}
			if !strings.Contains(ngOut, tc.want) && tc.name != "bad port range" {
				t.Errorf("nginx -t does not say %q (the test's expectation is wrong):\n%s", tc.want, ngOut)
			}
			if !strings.Contains(wsOut, tc.want) {
				t.Errorf("wsgate -t does not say %q:\n%s", tc.want, wsOut)
			}
		})
	}
}

// TestUnderscoreHeaderLogged: a dropped header is logged at info with
// nginx's words, and never reaches the backend.
func TestUnderscoreHeaderLogged(t *testing.T) {
	backend := headerEcho(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(`
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server { listen 127.0.0.1:%d; location / { proxy_pass http://%s; } }
}`, port, backend))
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX_Secret: s\r\nX-Fine: f\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(bufio.NewReader(c))
	if strings.Contains(string(b), "x_secret") || !strings.Contains(string(b), "x-fine=f") {
		t.Errorf("the backend saw:\n%s", b)
	}
	waitFor(t, slow(5*time.Second), "the error log line", func() bool {
		return strings.Contains(g.errorLog(), `[info]`) && strings.Contains(g.errorLog(), `client sent invalid header line: "X_Secret: s" while reading client request headers`)
	})
}
