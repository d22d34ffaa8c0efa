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

// TestControlBytesEscaped: a message carrying CR, LF, NUL, ESC or DEL
// (a decoded path, say) stays on one line with those bytes as \xHH.
func TestControlBytesEscaped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "error.log")
	l, err := Open([]Target{{Path: p, Level: Info}})
	if err != nil {
		t.Fatal(err)
	}
	forged := "/a\r\n2026/11/28 17:40:54 [emerg] 1#0: forged\x00\x1b[31m\x7f\tend"
	l.Printf(Error, 3, "open() \"%s\" failed, request: \"GET %s HTTP/1.1\"", forged, forged)
	l.Printf(Info, 0, "plain line")
	l.Close()
	got, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%q", len(lines), got)
	}
	want := `/a\x0d\x0a2026/11/28 17:40:54 [emerg] 1#0: forged\x00\x1b[31m\x7f\x09end`
	if strings.Count(lines[0], want) != 2 || strings.ContainsAny(lines[0], "\r\x00\x1b\x7f\t") {
		t.Errorf("line %q\nwant %q twice", lines[0], want)
	}
	if !strings.HasSuffix(lines[1], "[info] "+l.pid+"#0: plain line") {
		t.Errorf("second line %q", lines[1])
	}
}
