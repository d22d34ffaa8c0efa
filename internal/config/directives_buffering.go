package config

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// ProxyBuffering is how a proxied response is held between backend and
// client with proxy_buffering on (proxy_buffer_size and proxy_buffers are
// LocConf.BufferSize and LocConf.Buffers), and where proxy_store saves it.
type ProxyBuffering struct {
	// BusySize is proxy_busy_buffers_size; 0 until the load fills in
	// nginx's default, twice the larger of proxy_buffer_size and one of
	// proxy_buffers.
	BusySize int64
	// TempPath is proxy_temp_path, relative to the prefix until resolved
	// with Config.Abs; TempLevels its subdirectory levels (1 or 2 each).
	TempPath   string
	TempLevels []int
	// MaxTempFile is proxy_max_temp_file_size: 0 writes no temporary
	// file.
	MaxTempFile int64
	// TempWriteSize is proxy_temp_file_write_size; 0 until the load fills
	// in the default, as BusySize.
	TempWriteSize int64
	// Store is proxy_store: StoreOn saves under root or alias, Store (a
	// name with variables) names the file; neither: off.
	StoreOn     bool
	Store       *vars.Template
	StoreAccess fs.FileMode // proxy_store_access
}

// Stores reports whether proxy_store is on.
func (b *ProxyBuffering) Stores() bool { return b.StoreOn || b.Store != nil }

func proxyBufferingDefaults(c *LocConf) {
	c.ProxyBuf = ProxyBuffering{TempPath: "proxy_temp", MaxTempFile: 1 << 30, StoreAccess: 0o600}
}

var bufferingDirectives = map[string]dirSpec{
	"proxy_busy_buffers_size":    {ctx: cHSL, min: 1, max: 1, fn: bufSize("proxy_busy_buffers_size", func(b *ProxyBuffering) *int64 { return &b.BusySize })},
	"proxy_max_temp_file_size":   {ctx: cHSL, min: 1, max: 1, fn: bufSize("proxy_max_temp_file_size", func(b *ProxyBuffering) *int64 { return &b.MaxTempFile })},
	"proxy_temp_file_write_size": {ctx: cHSL, min: 1, max: 1, fn: bufSize("proxy_temp_file_write_size", func(b *ProxyBuffering) *int64 { return &b.TempWriteSize })},
	"proxy_temp_path":            {ctx: cHSL, min: 1, max: 4, fn: dProxyTempPath},
	"proxy_store":                {ctx: cHSL, min: 1, max: 1, fn: dProxyStore},
	"proxy_store_access":         {ctx: cHSL, min: 1, max: 3, fn: dProxyStoreAccess},
}

var bufferingMergers = map[string]func(c, p *LocConf){
	"proxy_busy_buffers_size":    func(c, p *LocConf) { c.ProxyBuf.BusySize = p.ProxyBuf.BusySize },
	"proxy_max_temp_file_size":   func(c, p *LocConf) { c.ProxyBuf.MaxTempFile = p.ProxyBuf.MaxTempFile },
	"proxy_temp_file_write_size": func(c, p *LocConf) { c.ProxyBuf.TempWriteSize = p.ProxyBuf.TempWriteSize },
	"proxy_temp_path": func(c, p *LocConf) {
		c.ProxyBuf.TempPath, c.ProxyBuf.TempLevels = p.ProxyBuf.TempPath, p.ProxyBuf.TempLevels
	},
	"proxy_store":        func(c, p *LocConf) { c.ProxyBuf.StoreOn, c.ProxyBuf.Store = p.ProxyBuf.StoreOn, p.ProxyBuf.Store },
	"proxy_store_access": func(c, p *LocConf) { c.ProxyBuf.StoreAccess = p.ProxyBuf.StoreAccess },
}

func bufSize(name string, field func(*ProxyBuffering) *int64) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		n, err := ParseSize(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
		}
		*field(&s.lc.ProxyBuf) = n
		return s.lc.mark(d, name)
	}
}

// dProxyTempPath reads proxy_temp_path PATH [LEVEL1 [LEVEL2 [LEVEL3]]].
func dProxyTempPath(l *loader, d *conf.Directive, s *scope) error {
	var levels []int
	for _, a := range d.Args[1:] {
		if a != "1" && a != "2" {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
		levels = append(levels, int(a[0]-'0'))
	}
	s.lc.ProxyBuf.TempPath, s.lc.ProxyBuf.TempLevels = d.Args[0], levels
	return s.lc.mark(d, d.Name)
}

// dProxyStore reads proxy_store on | off | name.
func dProxyStore(l *loader, d *conf.Directive, s *scope) error {
	b := &s.lc.ProxyBuf
	b.StoreOn, b.Store = false, nil
	switch a := d.Args[0]; a {
	case "on":
		b.StoreOn = true
	case "off":
	default:
		t, err := l.cfg.Vars.Compile(a)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		b.Store = t
	}
	return s.lc.mark(d, d.Name)
}

// dProxyStoreAccess reads proxy_store_access user:rw group:r all:r; the
// user may always read and write, as nginx.
func dProxyStoreAccess(l *loader, d *conf.Directive, s *scope) error {
	mode := fs.FileMode(0o600)
	for _, a := range d.Args {
		who, right, ok := strings.Cut(a, ":")
		shift := map[string]uint{"user": 6, "group": 3, "all": 0}[who]
		bits := map[string]fs.FileMode{"r": 4, "rw": 6}[right]
		if !ok || bits == 0 || (shift == 0 && who != "all") {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
		mode |= bits << shift
	}
	s.lc.ProxyBuf.StoreAccess = mode
	return s.lc.mark(d, d.Name)
}

// checkBuffering fills in the derived sizes of every location and checks
// them against each other, as nginx does when it merges a location.
func (l *loader) checkBuffering() error {
	var bad error
	for _, srv := range l.cfg.HTTP.Servers {
		srv.Walk(func(loc *Location) {
			if err := fillBuffering(loc.Conf); err != nil && bad == nil {
				bad = &conf.Error{File: loc.File, Line: loc.Line, Msg: err.Error()}
			}
		})
	}
	return bad
}

func fillBuffering(c *LocConf) error {
	if c.Buffers[0] < 2 {
		return fmt.Errorf("there must be at least 2 \"proxy_buffers\"")
	}
	size := int64(max(c.BufferSize, c.Buffers[1]))
	b := &c.ProxyBuf
	if b.BusySize == 0 {
		b.BusySize = 2 * size
	}
	if b.TempWriteSize == 0 {
		b.TempWriteSize = 2 * size
	}
	switch {
	case b.BusySize < size:
		return fmt.Errorf("\"proxy_busy_buffers_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"")
	case b.BusySize > int64(c.Buffers[0]-1)*int64(c.Buffers[1]):
		return fmt.Errorf("\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer")
	case b.TempWriteSize < size:
		return fmt.Errorf("\"proxy_temp_file_write_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"")
	case b.MaxTempFile != 0 && b.MaxTempFile < size:
		return fmt.Errorf("\"proxy_max_temp_file_size\" must be equal to zero to disable temporary files usage or must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"")
	}
	return nil
}
