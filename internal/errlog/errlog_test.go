package errlog

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLineShapeAndLevels(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	dbg := filepath.Join(dir, "debug.log")
	l, err := Open([]Target{{Path: p, Level: Warn}, {Path: dbg, Level: Debug}})
	if err != nil {
		t.Fatal(err)
	}
	l.clock = func() time.Time { return time.Date(2026, 11, 28, 17, 40, 54, 0, time.Local) }
	l.Printf(Error, 7, "connect() failed (%d: %s) while connecting to upstream, client: %s", 111, "Connection refused", "127.0.0.1")
	l.Printf(Info, 0, "quiet")
	if !l.Enabled(Debug) || l.Enabled(Debug-1) {
		t.Error("Enabled")
	}
	l.Close()
	got, _ := os.ReadFile(p)
	re := regexp.MustCompile(`^2026/11/28 17:40:54 \[error\] \d+#0: \*7 connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: 127\.0\.0\.1\n$`)
	if !re.Match(got) {
		t.Errorf("line %q", got)
	}
	all, _ := os.ReadFile(dbg)
	if strings.Count(string(all), "\n") != 2 || !strings.Contains(string(all), "[info]") {
		t.Errorf("debug log %q", all)
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	l, err := Open([]Target{{Path: p, Level: Info}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Printf(Info, 0, "one")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	l.Printf(Info, 0, "two")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Printf(Info, 0, "three")
	old, _ := os.ReadFile(p + ".1")
	cur, _ := os.ReadFile(p)
	if !strings.Contains(string(old), "one") || !strings.Contains(string(old), "two") || !strings.Contains(string(cur), "three") || strings.Contains(string(cur), "two") {
		t.Errorf("old %q new %q", old, cur)
	}
}

func TestOpenError(t *testing.T) {
	if _, err := Open([]Target{{Path: filepath.Join(t.TempDir(), "no", "such", "x.log")}}); err == nil || !strings.Contains(err.Error(), "open()") {
		t.Errorf("err %v", err)
	}
}

func TestZeroLogger(t *testing.T) {
	var l *Logger
	l.Printf(Emerg, 1, "dropped")
	if l.Enabled(Emerg) {
		t.Error("nil logger enabled")
	}
	_ = l.Reopen()
	_ = l.Close()
}
