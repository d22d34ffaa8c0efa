package static

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"golang.org/x/sys/unix"
)

// opener opens files under one disable_symlinks policy.
type opener struct {
	mode config.Symlinks
	from string // the leading part of a path that is not checked
}

// openError is a failed open with the name of the call nginx would log.
type openError struct {
	op  string // "open()" or "openat()"
	err syscall.Errno
}

func (e *openError) Error() string { return e.op + " " + e.err.Error() }

// open opens path for reading without blocking on a FIFO.
func (o opener) open(path string) (*os.File, error) {
	if o.mode == config.SymlinksOff {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, &openError{"open()", errnoOf(err)}
		}
		return newFile(fd, path), nil
	}
	fd, err := o.walk(path)
	if err != nil {
		return nil, &openError{"openat()", errnoOf(err)}
	}
	return newFile(fd, path), nil
}

func newFile(fd int, path string) *os.File {
	syscall.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), path)
}

// walk opens path one component at a time with O_NOFOLLOW from the end
// of the unchecked part, as nginx's ngx_open_file_wrapper with openat(2).
func (o opener) walk(path string) (int, error) {
	start, rest := "/", strings.TrimPrefix(path, "/")
	if f := strings.TrimSuffix(o.from, "/"); f != "" && strings.HasPrefix(path, f) && (len(path) == len(f) || path[len(f)] == '/') {
		start, rest = f, strings.TrimPrefix(path[len(f):], "/")
	}
	if rest == "" {
		return syscall.Open(start, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	}
	dir, err := syscall.Open(start, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(rest, "/")
	for i, name := range parts {
		if name == "" {
			continue
		}
		flags := syscall.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC | syscall.O_NOFOLLOW
		if i < len(parts)-1 {
			flags |= syscall.O_DIRECTORY
		}
		fd, err := syscall.Openat(dir, name, flags, 0)
		if err == syscall.ELOOP && o.mode == config.SymlinksIfNotOwner {
			fd, err = openSameOwner(dir, name, flags&^syscall.O_NOFOLLOW)
		}
		syscall.Close(dir)
		if err != nil {
			return -1, err
		}
		dir = fd
	}
	return dir, nil
}

// openSameOwner follows the symlink name in dir only when the link and
// its target have one owner (disable_symlinks if_not_owner).
func openSameOwner(dir int, name string, flags int) (int, error) {
	var link unix.Stat_t
	var target syscall.Stat_t
	if err := unix.Fstatat(dir, name, &link, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, err
	}
	fd, err := syscall.Openat(dir, name, flags, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Fstat(fd, &target); err != nil || target.Uid != link.Uid {
		syscall.Close(fd)
		return -1, syscall.ELOOP
	}
	return fd, nil
}

func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// statusOf maps an open error to nginx's status and whether it is a
// "not found" (logged only with log_not_found).
func statusOf(en syscall.Errno) (status int, notFound bool) {
	switch en {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ENAMETOOLONG:
		return 404, true
	case syscall.EACCES, syscall.ELOOP, syscall.EMLINK:
		return 403, false
	}
	return 500, false
}

// ErrnoText renders an errno as nginx's error log does: "(2: No such file
// or directory)".
func ErrnoText(err error) string {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return "(" + err.Error() + ")"
	}
	msg := en.Error()
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	return "(" + itoa(int64(en)) + ": " + msg + ")"
}
