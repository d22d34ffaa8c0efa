package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// tempNumber numbers temporary files, as nginx's ngx_temp_number: names
// are ten digits, and a name taken already is skipped.
var tempNumber atomic.Uint32

func init() { tempNumber.Store(uint32(time.Now().UnixNano()%1e6) * 1000) }

// CreateTemp creates a new file under dir with nginx's temporary names:
// ten digits, in subdirectories named by the name's last digits, levels
// (1 or 2 digits each) deep, so that "proxy_temp 1 2" gives
// proxy_temp/7/45/0000000457. Missing directories are made with mode 0700;
// the file gets perm (0600 when zero). The caller unlinks or renames it.
func CreateTemp(dir string, levels []int, perm fs.FileMode) (*os.File, error) {
	if perm == 0 {
		perm = 0o600
	}
	for range 1000 {
		name := hashedName(dir, levels, fmt.Sprintf("%010d", tempNumber.Add(1)))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.MkdirAll(filepath.Dir(name), 0o700); err == nil {
				f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
			}
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary name under %s", dir)
}

// hashedName is dir/<levels>/name, each level the name's next digits
// from its end.
func hashedName(dir string, levels []int, name string) string {
	parts := []string{dir}
	end := len(name)
	for _, l := range levels {
		parts = append(parts, name[end-l:end])
		end -= l
	}
	return filepath.Join(append(parts, name)...)
}
