package errlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebugging: the debugging logger writes debug lines to a target of
// a higher level, shares its file through a reopen, and the logger it
// came from keeps its levels.
func TestDebugging(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "error.log")
	l, err := Open([]Target{{Path: p, Level: Error}})
	if err != nil {
		t.Fatal(err)
	}
	d := l.Debugging()
	if d != l.Debugging() || !d.Enabled(Debug) || l.Enabled(Info) {
		t.Fatal("Debugging: one logger per base, debug enabled, base unchanged")
	}
	l.Printf(Debug, 1, "not written")
	d.Printf(Debug, 2, "for the listed client")
	os.Rename(p, p+".1")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	d.Printf(Info, 3, "after reopen")
	l.Close()
	old, _ := os.ReadFile(p + ".1")
	now, _ := os.ReadFile(p)
	if strings.Contains(string(old), "not written") || !strings.Contains(string(old), "[debug]") || !strings.Contains(string(old), "*2 for the listed client") {
		t.Errorf("before reopen %q", old)
	}
	if !strings.Contains(string(now), "[info]") || !strings.Contains(string(now), "*3 after reopen") {
		t.Errorf("after reopen %q", now)
	}
	var z *Logger
	if z.Debugging() != nil {
		t.Error("nil logger")
	}
}
