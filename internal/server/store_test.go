package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStoreRenameAndCopy: a stored file is renamed into a folder made with
// search rights, or, as across file systems, copied next to its place
// with its mode and time, the source removed.
func TestStoreRenameAndCopy(t *testing.T) {
	dir := t.TempDir()
	when := time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("body"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, when, when)
		return p
	}
	to := filepath.Join(dir, "a", "b", "f.txt")
	if err := renameCreating(mk("t1"), to, 0o640); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Dir(to)); err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("folder: %v %v", st, err)
	}
	to2 := filepath.Join(dir, "a", "copy.txt")
	from := mk("t2")
	if err := copyInto(from, to2, 0o604); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(to2)
	b, _ := os.ReadFile(to2)
	if err != nil || st.Mode().Perm() != 0o604 || !st.ModTime().Equal(when) || string(b) != "body" {
		t.Fatalf("copy: %v %v %q", st, err, b)
	}
	if _, err := os.Stat(from); !os.IsNotExist(err) {
		t.Fatalf("the source is still there: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "a")); len(ents) != 2 {
		t.Fatalf("folder holds %d entries, want b and copy.txt", len(ents))
	}
}
