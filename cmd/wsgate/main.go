//go:build linux

// Command wsgate is a WebSocket-native reverse proxy that reads nginx's
// configuration language. Flags and signals follow nginx's.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/echo"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/handover"
	"github.com/wsgate/wsgate/internal/memsettle"
	"github.com/wsgate/wsgate/internal/server"
)

//go:embed default.conf
var defaultConf string

// defaultConfPath is where wsgate looks when -c is not given.
const defaultConfPath = "/etc/wsgate/wsgate.conf"

type options struct {
	conf, prefix, globals, errLog, signal, completion  string
	test, dump, version, versionLong, quiet, help, man bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	return runWith(args, os.Stdout, stderr)
}

func runWith(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "proxy" {
		return runProxy(args[1:], stdout, stderr)
	}
	var o options
	table := mainFlags(&o)
	rest, err := parseFlags("wsgate", table, args, stderr)
	if err != nil {
		return 1
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "wsgate: unexpected argument %q\nTry 'wsgate --help' for more information.\n", rest[0])
		return 1
	}
	if o.conf != "" && o.prefix != "" && !filepath.IsAbs(o.conf) {
		o.conf = filepath.Join(o.prefix, o.conf) // as nginx: a relative -c is under the prefix
	}
	switch {
	case o.help:
		fmt.Fprint(stdout, helpText(mainPage, table))
		return 0
	case o.man:
		writeMan(stdout, &options{}, &proxyOptions{})
		return 0
	case o.completion != "":
		if err := writeCompletion(stdout, o.completion, &options{}, &proxyOptions{}); err != nil {
			fmt.Fprintf(stderr, "wsgate: %v\n", err)
			return 1
		}
		return 0
	case o.version || o.versionLong:
		writeVersion(stdout, o.versionLong)
		return 0
	}
	emerg := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wsgate: [emerg] "+format+"\n", a...)
		return 1
	}

	cfg, demo, err := loadConfig(o)
	if err != nil {
		if o.test || o.dump {
			fmt.Fprintf(stderr, "wsgate: [emerg] %v\nwsgate: configuration file %s test failed\n", err, configName(o))
			return 1
		}
		upgradeFailedEarly(err)
		return emerg("%v", err)
	}
	defer func() {
		if demo != nil {
			demo.Close()
		}
	}()
	for _, w := range cfg.Warnings {
		if !o.quiet || o.signal != "" {
			fmt.Fprintf(stderr, "wsgate: [warn] %s\n", w)
		}
	}
	if o.signal != "" {
		return sendSignal(cfg, o.signal, stderr)
	}
	if o.test || o.dump {
		created := absent(logFiles(cfg))
		err := server.Check(cfg, errlog.Stderr())
		removeCreated(created)
		if err != nil {
			fmt.Fprintf(stderr, "wsgate: [emerg] %v\nwsgate: configuration file %s test failed\n", err, configName(o))
			return 1
		}
		if o.dump {
			dump(cfg, demo != nil, stdout)
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "wsgate: the configuration file %s syntax is ok\n", cfg.File)
			fmt.Fprintf(stderr, "wsgate: configuration file %s test is successful\n", cfg.File)
		}
		return 0
	}
	// An upgrade's new process is already detached: it runs where the
	// old one (a daemon, or not) started it.
	if cfg.Daemon && os.Getenv("WSGATE_DAEMON") == "" && os.Getenv(handover.EnvFD) == "" {
		return daemonize(stderr)
	}
	return serve(o, cfg, demo, stderr)
}

// loadConfig reads -c, the default path, or the embedded demo; the demo's
// backend is started here because its address is part of the config.
func loadConfig(o options) (*config.Config, *echo.Server, error) {
	opts := config.Options{Prefix: o.prefix, Globals: o.globals, Root: os.Geteuid() == 0, ErrorLog: o.errLog}
	path := o.conf
	if path == "" {
		if _, err := os.Stat(defaultConfPath); err == nil {
			path = defaultConfPath
		}
	}
	if path != "" {
		cfg, err := config.Load(path, opts)
		return cfg, nil, err
	}
	srv, err := echo.Start("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	listen := "127.0.0.1:8080"
	if v := os.Getenv("WSGATE_DEMO_LISTEN"); v != "" {
		listen = v
	}
	text := strings.NewReplacer("{{ECHO}}", srv.Addr(), "{{LISTEN}}", listen,
		"{{PID}}", filepath.Join(os.TempDir(), "wsgate-demo.pid")).Replace(defaultConf)
	if opts.Prefix == "" {
		opts.Prefix, _ = os.Getwd()
	}
	cfg, err := config.LoadBytes("(embedded default)", []byte(text), opts)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	cfg.Source = text
	return cfg, srv, nil
}

// configName is the file a -t run tested, for its closing line.
func configName(o options) string {
	if o.conf != "" {
		return o.conf
	}
	if _, err := os.Stat(defaultConfPath); err == nil {
		return defaultConfPath
	}
	return "(embedded default)"
}

// dump prints the configuration as -T does, to standard output, with
// secrets replaced by <redacted> (see redact).
func dump(cfg *config.Config, embedded bool, w io.Writer) {
	if embedded {
		fmt.Fprintf(w, "# configuration file (embedded default):\n%s\n", cfg.Source)
		return
	}
	ds, err := conf.ParseFile(cfg.File, conf.Options{})
	if err != nil {
		return
	}
	fmt.Fprintf(w, "# configuration file %s:\n", cfg.File)
	conf.Dump(w, redact(ds))
}

func serve(o options, cfg *config.Config, demo *echo.Server, stderr io.Writer) int {
	if wantsExtendedConnect(cfg) && !server.ExtendedConnectEnabled() {
		// Go's HTTP/2 offers RFC 8441 only when GODEBUG=http2xconnect=1
		// is in the environment at start (net/http reads it at init and
		// //go:debug does not accept it): start again, same PID, with it.
		if err := reexecWithExtendedConnect(); err != nil {
			fmt.Fprintf(stderr, "wsgate: [emerg] re-executing for HTTP/2 WebSockets: %v\n", err)
			return 1
		}
	}
	raiseNoFile()
	runtime.GOMAXPROCS(cfg.WorkerProcesses)
	log, err := server.OpenErrorLog(cfg, cfg.ErrorLogs)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] %v\n", err)
		return 1
	}
	applyMainContext(cfg, log)
	srv := server.New(log)
	srv.HoldServing() // until the user switch below
	ready := daemonReady()
	sd := newNotifier()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "wsgate: [emerg] %v\n", err)
		log.Printf(errlog.Emerg, 0, "%v", err)
		ready(err)
		return 1
	}
	inheritActivated(srv, log)
	child, err := inheritUpgrade(srv)
	if err != nil {
		defer log.Close()
		return fail(fmt.Errorf("binary upgrade: %w", err))
	}
	if err := srv.Apply(cfg, log); err != nil {
		defer log.Close()
		child.failed(err)
		return fail(err)
	}
	dropUninherited(srv, log)
	// Signals are caught before the pid file and READY=1 announce the
	// process, so a reload sent at once is queued, not fatal.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	pidPath := cfg.Abs(cfg.PID)
	// The pid file is written as root, before the user switch, as nginx's
	// master writes it.
	if err := writePID(pidPath); err != nil {
		child.failed(err)
		srv.Close()
		return fail(err)
	}
	if err := dropPrivileges(cfg, log); err != nil {
		child.failed(err)
		srv.Close()
		os.Remove(pidPath)
		return fail(err)
	}
	srv.Serve()
	// An idle process's RSS follows what it holds, not its last burst.
	settleCtx, stopSettle := context.WithCancel(context.Background())
	defer stopSettle()
	go memsettle.Run(settleCtx, memsettle.Default, nil)
	ready(nil)
	defer removePIDIfOurs(pidPath)
	logStarted(log, cfg, srv)
	if child != nil {
		child.ready(srv, log, sd, cfg.UpgradeDrain())
	} else {
		sd.ready(servingStatus(srv))
	}
	stopWatchdog := make(chan struct{})
	defer close(stopWatchdog)
	sd.watchdog(stopWatchdog)

	cur := cfg
	var retired chan struct{} // set once an upgrade's new process serves
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-retired:
			log.Printf(errlog.Notice, 0, "exit")
			log.Close()
			return 0
		}
		if retired != nil && sig != syscall.SIGTERM && sig != syscall.SIGINT && sig != syscall.SIGUSR1 {
			log.Printf(errlog.Notice, 0, "signal %d (%v) ignored: the new binary has taken over", sig.(syscall.Signal), sig)
			continue
		}
		switch sig {
		case syscall.SIGUSR2:
			log.Printf(errlog.Notice, 0, "signal 12 (SIGUSR2) received, upgrading the binary")
			if up := startUpgrade(srv, log); up != nil {
				retired = make(chan struct{})
				go func() {
					up.retire(srv, log, cur.UpgradeDrain())
					close(retired)
				}()
			}
		case syscall.SIGHUP:
			sd.reloading()
			log.Printf(errlog.Notice, 0, "signal 1 (SIGHUP) received, reconfiguring")
			next, err := reload(o, cur, srv, log)
			srv.RecordReload(err == nil)
			if err != nil {
				log.Printf(errlog.Emerg, 0, "%v", err)
				log.Printf(errlog.Notice, 0, "reload failed, the previous configuration keeps serving")
				sd.ready("reload failed, the previous configuration keeps serving: " + err.Error())
				continue
			}
			if next.log != log {
				old := log
				log = next.log
				old.Close()
			}
			cur = next.cfg
			log.Printf(errlog.Notice, 0, "reconfiguring done")
			sd.ready("reloaded; " + servingStatus(srv))
		case syscall.SIGUSR1:
			log.Printf(errlog.Notice, 0, "signal 10 (SIGUSR1) received, reopening logs")
			if err := log.Reopen(); err != nil {
				log.Printf(errlog.Alert, 0, "%v", err)
			}
			if err := srv.ReopenLogs(); err != nil {
				log.Printf(errlog.Alert, 0, "%v", err)
			}
		case syscall.SIGQUIT:
			sd.stopping("stopping gracefully, closing WebSockets with 1001")
			log.Printf(errlog.Notice, 0, "signal 3 (SIGQUIT) received, shutting down gracefully")
			srv.Shutdown(context.Background())
			log.Printf(errlog.Notice, 0, "exit")
			log.Close()
			return 0
		case syscall.SIGTERM, syscall.SIGINT:
			if retired == nil { // else systemd follows the new process
				sd.stopping("stopping")
			}
			log.Printf(errlog.Notice, 0, "signal %d (%v) received, exiting", sig.(syscall.Signal), sig)
			srv.Close()
			log.Printf(errlog.Notice, 0, "exit")
			log.Close()
			return 0
		}
	}
}

type reloaded struct {
	cfg *config.Config
	log *errlog.Logger
}

// reload builds the new configuration beside the running one; any error
// leaves the running one untouched.
func reload(o options, cur *config.Config, srv *server.Server, log *errlog.Logger) (*reloaded, error) {
	if cur.Source != "" {
		return nil, fmt.Errorf("the %s configuration was not read from a file and cannot be reloaded; start wsgate with -c FILE", cur.File)
	}
	o.conf = cur.File
	next, _, err := loadConfig(o)
	if err != nil {
		return nil, err
	}
	nlog, err := server.OpenErrorLog(next, next.ErrorLogs)
	if err != nil {
		return nil, err
	}
	if err := srv.Apply(next, nlog); err != nil {
		nlog.Close()
		return nil, err
	}
	if next.WorkerProcesses != cur.WorkerProcesses {
		runtime.GOMAXPROCS(next.WorkerProcesses)
	}
	return &reloaded{cfg: next, log: nlog}, nil
}

func writePID(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("open() %q failed (%v)", path, err)
	}
	return nil
}

// sendSignal implements -s through the pid file, as nginx.
func sendSignal(cfg *config.Config, name string, stderr io.Writer) int {
	sigs := map[string]syscall.Signal{"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reopen": syscall.SIGUSR1, "reload": syscall.SIGHUP, "upgrade": syscall.SIGUSR2}
	sig, ok := sigs[name]
	if !ok {
		fmt.Fprintf(stderr, "wsgate: invalid option: \"-s %s\"\n", name)
		return 1
	}
	path := cfg.Abs(cfg.PID)
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [error] open() \"%s\" failed (%v)\n", path, err)
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "wsgate: [error] invalid PID number \"%s\" in \"%s\"\n", strings.TrimSpace(string(b)), path)
		return 1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "wsgate: [alert] kill(%d, %d) failed (%v)\n", pid, int(sig), err)
		return 1
	}
	return 0
}

// raiseNoFile lifts the soft descriptor limit to the hard one, as the
// connection limit is planned against it.
func raiseNoFile() {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
}
