//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/server"
)

// daemonize re-executes wsgate detached from the terminal (Go cannot fork):
// the child runs the server, the parent returns at once, as nginx's
// `daemon on`.
func daemonize(stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] daemon: %v\n", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] daemon: %v\n", err)
		return 1
	}
	defer null.Close()
	// The child reports through a pipe once it is bound (or why it could
	// not start), so bind errors still reach the terminal.
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] daemon: %v\n", err)
		return 1
	}
	defer r.Close()
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "WSGATE_DAEMON=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		fmt.Fprintf(stderr, "wsgate: [emerg] daemon: %v\n", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	if string(msg) != "ok" {
		if len(msg) == 0 {
			msg = []byte("the daemon exited before it was ready")
		}
		fmt.Fprintf(stderr, "wsgate: [emerg] %s\n", msg)
		return 1
	}
	return 0
}

// daemonReady returns the function a daemon child calls once it is
// serving (nil) or has failed to start; outside a daemon it does nothing.
func daemonReady() func(error) {
	if os.Getenv("WSGATE_DAEMON") == "" {
		return func(error) {}
	}
	f := os.NewFile(3, "daemon-ready")
	return func(err error) {
		if f == nil {
			return
		}
		if err != nil {
			f.WriteString(err.Error())
		} else {
			f.WriteString("ok")
		}
		f.Close()
		f = nil
	}
}

// dropPrivileges switches to `user` once listeners are bound and logs are
// open, as nginx's workers do. Without `user` wsgate keeps its identity
// (nginx would switch to nobody). As non-root the directive is ignored with
// nginx's warning.
func dropPrivileges(cfg *config.Config, log *errlog.Logger) error {
	if cfg.User == "" {
		return nil
	}
	if os.Geteuid() != 0 {
		log.Printf(errlog.Warn, 0, "the \"user\" directive makes sense only if wsgate runs with super-user privileges, ignored")
		return nil
	}
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return fmt.Errorf("getpwnam(\"%s\") failed", cfg.User)
	}
	gname := cfg.Group
	gid, _ := strconv.Atoi(u.Gid)
	if gname != "" {
		g, err := user.LookupGroup(gname)
		if err != nil {
			return fmt.Errorf("getgrnam(\"%s\") failed", gname)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("setgroups(%d) failed (%v)", gid, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid(%d) failed (%v)", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid(%d) failed (%v)", uid, err)
	}
	log.Printf(errlog.Notice, 0, "running as user %s (uid %d, gid %d)", cfg.User, uid, gid)
	return nil
}

// wantsExtendedConnect reports whether some server offers HTTP/2 and
// http2_websocket is on.
func wantsExtendedConnect(cfg *config.Config) bool {
	if cfg.HTTP == nil || !cfg.HTTP.H2WebSocket {
		return false
	}
	for _, srv := range cfg.HTTP.Servers {
		if srv.Loc.Conf.HTTP2 {
			return true
		}
		for _, ls := range srv.Listens {
			if ls.HTTP2 {
				return true
			}
		}
	}
	return false
}

// reexecWithExtendedConnect replaces the process with itself, GODEBUG
// extended with http2xconnect=1; it returns only on failure.
func reexecWithExtendedConnect() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := os.Environ()
	found := false
	for i, e := range env {
		if v, ok := strings.CutPrefix(e, "GODEBUG="); ok {
			env[i] = "GODEBUG=" + strings.TrimPrefix(v+","+server.ExtendedConnectEnv, ",")
			found = true
		}
	}
	if !found {
		env = append(env, "GODEBUG="+server.ExtendedConnectEnv)
	}
	return syscall.Exec(self, os.Args, env)
}
