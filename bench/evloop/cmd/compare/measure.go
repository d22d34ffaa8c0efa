package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sources spread the load client's connections over 16 loopback addresses,
// as the main harness does, so ephemeral ports last.
const sources = "127.0.0.2-127.0.0.17"

// nginxConf is the main harness's one-worker nginx-language config, which
// serves nginx and wsgate alike.
const nginxConf = `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
    worker_connections 20000;
}

http {
    access_log off;

    upstream websocket_backend {
        server 127.0.0.1:%[2]d;
    }

    server {
        listen 127.0.0.1:%[3]d;

        location /ws {
            proxy_pass http://websocket_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
`

// proc is a started process, stopped by its PID only.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// start runs bin pinned to cpu with taskset (which execs, so the PID is
// bin's), output to logPath; env is added to the environment.
func start(cpu, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpu, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// upgradeReq is a valid WebSocket upgrade for the echo backend.
const upgradeReq = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// waitUpgrade polls addr for up to 15 s until an upgrade through it is
// answered with 101.
func waitUpgrade(p *proc, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("exited: %s", bytes.TrimSpace(b))
		default:
		}
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write([]byte(upgradeReq))
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.Contains(line, " 101 ") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("answer %q", line)
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 101 from %s within 15 s: %v", addr, last)
}

// setup is one target running: the echo backend and the proxy before it.
type setup struct {
	addr           string
	backend, proxy *proc
}

func (s *setup) stop() {
	if s.proxy != nil {
		s.proxy.stop()
	}
	if s.backend != nil {
		s.backend.stop()
	}
}

// startTarget starts the echo backend on CPU 0 and target's proxy on CPU 1
// (Go relays with GOMAXPROCS=1; nginx and wsgate with one worker).
func (c *compare) startTarget(target, dir string) (*setup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	baddr := fmt.Sprintf("127.0.0.1:%d", bport)
	st := &setup{addr: fmt.Sprintf("127.0.0.1:%d", pport)}
	if st.backend, err = start("0", filepath.Join(dir, "echo.log"), nil, c.bin("echo"), "-addr", baddr); err != nil {
		return nil, err
	}
	if err := waitUpgrade(st.backend, baddr); err != nil {
		st.stop()
		return nil, fmt.Errorf("echo backend: %w", err)
	}
	logPath := filepath.Join(dir, target+".log")
	conf := filepath.Join(dir, "nginx.conf")
	switch target {
	case "nginx", "wsgate":
		if err = os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, bport, pport), 0o644); err != nil {
			break
		}
		if target == "nginx" {
			st.proxy, err = start("1", logPath, nil, c.nginx, "-p", dir+"/", "-c", conf, "-g", "daemon off; master_process off;")
		} else {
			st.proxy, err = start("1", logPath, nil, c.bin("wsgate"), "-p", dir, "-c", conf)
		}
	default:
		st.proxy, err = start("1", logPath, []string{"GOMAXPROCS=1"}, c.bin("evproxy"), "-lib", target, "-listen", st.addr, "-backend", baddr)
	}
	if err != nil {
		st.stop()
		return nil, err
	}
	if err := waitUpgrade(st.proxy, st.addr); err != nil {
		st.stop()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	return st, nil
}

// loadResult is the part of the load client's JSON the comparison reads.
type loadResult struct {
	Ops        uint64  `json:"ops"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	CPUPerOpUS float64 `json:"cpu_us_per_op"`
	Errors     uint64  `json:"errors"` // failed operations; the caller reports them
	FirstError string  `json:"first_error"`
}

// pacedRate is the paced handshake mode's rate, per second over its 16
// workers, as the main harness's: well within every target's reach, so
// that each does the same work and idles between handshakes.
const pacedRate = "2000"

// runLoad runs the load client on CPU 0 in mode against st, sampling the
// proxy's CPU time around its window.
func (c *compare) runLoad(st *setup, mode string, warmup, window time.Duration) (loadResult, error) {
	workers, size := "16", "64"
	if mode == "echo" {
		workers = "64"
	}
	cmd := exec.Command("taskset", "-c", "0", c.bin("load"), "-mode", mode, "-addr", st.addr, "-src", sources,
		"-workers", workers, "-size", size, "-rate", pacedRate, "-warmup", warmup.String(), "-duration", window.String(),
		"-cpu-pid", strconv.Itoa(st.proxy.pid()))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var res loadResult
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("load %s: %v: %s", mode, err, strings.TrimSpace(errb.String()))
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("load %s: output %q: %v", mode, out.String(), err)
	}
	return res, nil
}

// idleKiB opens 0 and then n idle tunnels through st with one idle agent
// on CPU 0 and returns the proxy's RSS at both (KiB) after settling, having
// checked every tunnel still echoes.
func (c *compare) idleKiB(st *setup, n int, settle time.Duration) (rss0, rssN int64, err error) {
	cmd := exec.Command("taskset", "-c", "0", c.bin("load"), "-mode", "idle-agent", "-addr", st.addr, "-src", sources)
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		in.Close() // end of input: the agent closes its tunnels and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	sc := bufio.NewScanner(outp)
	ask := func(line string) ([]string, error) {
		fmt.Fprintln(in, line)
		got := make(chan bool, 1)
		go func() { got <- sc.Scan() }()
		select {
		case ok := <-got:
			f := strings.Fields(sc.Text())
			if !ok || len(f) == 0 || f[0] != "ok" {
				return nil, fmt.Errorf("idle agent, %q: %q", line, sc.Text())
			}
			return f[1:], nil
		case <-time.After(180 * time.Second):
			return nil, fmt.Errorf("idle agent, %q: no answer", line)
		}
	}
	if _, err := ask("open 0"); err != nil {
		return 0, 0, err
	}
	time.Sleep(settle)
	if rss0, err = rssKiB(st.proxy.pid()); err != nil {
		return 0, 0, err
	}
	if _, err := ask(fmt.Sprintf("open %d", n)); err != nil {
		return 0, 0, err
	}
	time.Sleep(settle)
	if rssN, err = rssKiB(st.proxy.pid()); err != nil {
		return 0, 0, err
	}
	f, err := ask("check")
	if err != nil {
		return 0, 0, err
	}
	if len(f) != 2 || f[0] != strconv.Itoa(n) {
		return 0, 0, fmt.Errorf("idle check: %v of %d echoed", f, n)
	}
	return rss0, rssN, nil
}

func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			v = bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB"))
			return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// straceCount runs the load client in mode (1 ms warm-up, then window)
// with `strace -f -c -p` on the proxy attached from before its first
// connection to after its last, and returns the system calls per operation,
// in total and by name. Handshakes are counted by the proxy's socket calls
// (one backend socket each: a proxy may call connect twice on it, a first
// time that starts the connection and a second that finds it made);
// messages by the load client, and in echo mode
// the calls of its connections' handshakes and closes (per the handshake
// figures, hs) are taken out first.
func (c *compare) straceCount(st *setup, mode, dir string, window time.Duration, hs map[string]float64) (float64, map[string]float64, error) {
	outFile := filepath.Join(dir, "strace-"+mode+".txt")
	var errb bytes.Buffer
	s := exec.Command("strace", "-f", "-c", "-o", outFile, "-p", strconv.Itoa(st.proxy.pid()))
	s.Stderr = &errb
	if err := s.Start(); err != nil {
		return 0, nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), "attached"); {
		if time.Now().After(deadline) {
			s.Process.Kill()
			s.Wait()
			return 0, nil, fmt.Errorf("strace did not attach: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, lerr := c.runLoad(st, mode, time.Millisecond, window)
	s.Process.Signal(syscall.SIGINT)
	s.Wait()
	if lerr != nil {
		return 0, nil, lerr
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		return 0, nil, err
	}
	calls := parseStrace(b)
	ops := float64(res.Ops)
	if mode == "handshake" {
		ops = calls["socket"]
	} else if hs != nil {
		conns := calls["socket"]
		for k := range calls {
			calls[k] = max(0, calls[k]-conns*hs[k])
		}
	}
	if ops <= 0 {
		return 0, nil, fmt.Errorf("strace %s: no operations counted", mode)
	}
	per := map[string]float64{}
	for k, v := range calls {
		per[k] = v / ops
		if ioCalls[k] && k != "total" {
			per[ioTotal] += v / ops
		}
	}
	return per["total"], per, nil
}

// ioTotal names the sum of ioCalls in straceCount's map.
const ioTotal = "io-total"

// ioCalls are the system calls a relay makes for its sockets and its event
// set; the rest (nanosleep, futex, sched_yield, signals, memory) are the Go
// runtime's, whose counts under strace grow with the tracing slowdown.
var ioCalls = map[string]bool{
	"read": true, "write": true, "readv": true, "writev": true, "recvfrom": true, "sendto": true,
	"recvmsg": true, "sendmsg": true, "accept": true, "accept4": true, "socket": true, "connect": true,
	"setsockopt": true, "getsockopt": true, "getsockname": true, "getpeername": true, "shutdown": true,
	"close": true, "epoll_ctl": true, "epoll_wait": true, "epoll_pwait": true, "fcntl": true, "ioctl": true,
	"dup": true, "dup2": true, "dup3": true, "splice": true, "pipe2": true,
}

// parseStrace reads `strace -c`'s table: calls by system call name, and
// "total".
func parseStrace(b []byte) map[string]float64 {
	calls := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(f[0], "%") || strings.HasPrefix(f[0], "-") {
			continue
		}
		n, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		calls[f[len(f)-1]] += n
	}
	return calls
}
