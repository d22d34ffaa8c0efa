package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// CachePath is one proxy_cache_path: an on-disk cache and its keys zone.
type CachePath struct {
	Path        string // absolute
	Levels      []int  // levels=1:2 -> [1 2]; empty: files in Path itself
	Zone        string // keys_zone name
	ZoneSize    int64  // keys_zone size: bounds the number of keys (one per 128 bytes)
	Inactive    time.Duration
	MaxSize     int64 // 0: unbounded
	MinFree     int64 // free disk space kept; 0: none
	UseTempPath bool  // use_temp_path; temp files are written in Path either way

	ManagerFiles     int
	ManagerSleep     time.Duration
	ManagerThreshold time.Duration
	LoaderFiles      int
	LoaderSleep      time.Duration
	LoaderThreshold  time.Duration

	File string
	Line int
}

// CacheConf is a location's proxy_cache settings.
type CacheConf struct {
	Path     *CachePath     // proxy_cache's zone; nil: off
	zoneName string         // the zone proxy_cache names, resolved after the file is read
	Key      *vars.Template // proxy_cache_key; nil: $scheme$proxy_host$request_uri
	Valid    []CacheValid   // proxy_cache_valid, in file order
	// UseStale is proxy_cache_use_stale: Next* bits (error, timeout,
	// invalid_header, http_*) and StaleUpdating.
	UseStale         uint16
	Lock             bool
	LockTimeout      time.Duration
	LockAge          time.Duration
	Bypass           []*vars.Template // proxy_cache_bypass
	NoCache          []*vars.Template // proxy_no_cache
	Purge            []*vars.Template // proxy_cache_purge
	MinUses          int
	Methods          []string // proxy_cache_methods; GET and HEAD always included
	Revalidate       bool
	BackgroundUpdate bool
	ConvertHead      bool
	// MaxRangeOffset is proxy_cache_max_range_offset: a range request
	// starting at or past it (or from the end) bypasses the cache; -1:
	// no limit.
	MaxRangeOffset int64
}

// CacheValid is one proxy_cache_valid: how long responses with one of
// Codes stay fresh; an empty Codes list means any status.
type CacheValid struct {
	Codes []int
	Time  time.Duration
}

// StaleUpdating is proxy_cache_use_stale updating; it shares the mask
// with the Next* bits, above them.
const StaleUpdating uint16 = 1 << 15

var cacheDirectives = map[string]dirSpec{
	"proxy_cache_path":              {ctx: cHTTP, min: 2, max: -1, fn: dCachePath},
	"proxy_cache":                   {ctx: cHSL, min: 1, max: 1, fn: dProxyCache},
	"proxy_cache_key":               {ctx: cHSL, min: 1, max: 1, fn: dCacheKey},
	"proxy_cache_valid":             {ctx: cHSL, min: 1, max: -1, fn: dCacheValid},
	"proxy_cache_use_stale":         {ctx: cHSL, min: 1, max: -1, fn: dCacheUseStale},
	"proxy_cache_lock":              {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_cache_lock", func(c *LocConf) *bool { return &c.Cache.Lock })},
	"proxy_cache_lock_timeout":      {ctx: cHSL, min: 1, max: 1, fn: duration("proxy_cache_lock_timeout", func(c *LocConf) *durationField { return &c.Cache.LockTimeout })},
	"proxy_cache_lock_age":          {ctx: cHSL, min: 1, max: 1, fn: duration("proxy_cache_lock_age", func(c *LocConf) *durationField { return &c.Cache.LockAge })},
	"proxy_cache_bypass":            {ctx: cHSL, min: 1, max: -1, fn: predicates(func(c *CacheConf) *[]*vars.Template { return &c.Bypass })},
	"proxy_no_cache":                {ctx: cHSL, min: 1, max: -1, fn: predicates(func(c *CacheConf) *[]*vars.Template { return &c.NoCache })},
	"proxy_cache_purge":             {ctx: cHSL, min: 1, max: -1, fn: predicates(func(c *CacheConf) *[]*vars.Template { return &c.Purge })},
	"proxy_cache_min_uses":          {ctx: cHSL, min: 1, max: 1, fn: dCacheMinUses},
	"proxy_cache_max_range_offset":  {ctx: cHSL, min: 1, max: 1, fn: dCacheMaxRangeOffset},
	"proxy_cache_methods":           {ctx: cHSL, min: 1, max: -1, fn: dCacheMethods},
	"proxy_cache_revalidate":        {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_cache_revalidate", func(c *LocConf) *bool { return &c.Cache.Revalidate })},
	"proxy_cache_background_update": {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_cache_background_update", func(c *LocConf) *bool { return &c.Cache.BackgroundUpdate })},
	"proxy_cache_convert_head":      {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_cache_convert_head", func(c *LocConf) *bool { return &c.Cache.ConvertHead })},
}

var cacheMergers = map[string]func(c, p *LocConf){
	"proxy_cache":                   func(c, p *LocConf) { c.Cache.Path, c.Cache.zoneName = p.Cache.Path, p.Cache.zoneName },
	"proxy_cache_key":               func(c, p *LocConf) { c.Cache.Key = p.Cache.Key },
	"proxy_cache_valid":             func(c, p *LocConf) { c.Cache.Valid = p.Cache.Valid },
	"proxy_cache_use_stale":         func(c, p *LocConf) { c.Cache.UseStale = p.Cache.UseStale },
	"proxy_cache_lock":              func(c, p *LocConf) { c.Cache.Lock = p.Cache.Lock },
	"proxy_cache_lock_timeout":      func(c, p *LocConf) { c.Cache.LockTimeout = p.Cache.LockTimeout },
	"proxy_cache_lock_age":          func(c, p *LocConf) { c.Cache.LockAge = p.Cache.LockAge },
	"proxy_cache_bypass":            func(c, p *LocConf) { c.Cache.Bypass = p.Cache.Bypass },
	"proxy_no_cache":                func(c, p *LocConf) { c.Cache.NoCache = p.Cache.NoCache },
	"proxy_cache_purge":             func(c, p *LocConf) { c.Cache.Purge = p.Cache.Purge },
	"proxy_cache_min_uses":          func(c, p *LocConf) { c.Cache.MinUses = p.Cache.MinUses },
	"proxy_cache_max_range_offset":  func(c, p *LocConf) { c.Cache.MaxRangeOffset = p.Cache.MaxRangeOffset },
	"proxy_cache_methods":           func(c, p *LocConf) { c.Cache.Methods = p.Cache.Methods },
	"proxy_cache_revalidate":        func(c, p *LocConf) { c.Cache.Revalidate = p.Cache.Revalidate },
	"proxy_cache_background_update": func(c, p *LocConf) { c.Cache.BackgroundUpdate = p.Cache.BackgroundUpdate },
	"proxy_cache_convert_head":      func(c, p *LocConf) { c.Cache.ConvertHead = p.Cache.ConvertHead },
}

// cacheDefaults sets nginx's defaults for the proxy_cache_* directives.
func cacheDefaults(c *LocConf) {
	c.Cache = CacheConf{LockTimeout: 5 * time.Second, LockAge: 5 * time.Second, MinUses: 1,
		Methods: []string{"GET", "HEAD"}, ConvertHead: true, MaxRangeOffset: -1}
}

// dCachePath reads proxy_cache_path.
func dCachePath(l *loader, d *conf.Directive, s *scope) error {
	p := &CachePath{Path: d.Args[0], Inactive: 10 * time.Minute, UseTempPath: true,
		ManagerFiles: 100, ManagerSleep: 50 * time.Millisecond, ManagerThreshold: 200 * time.Millisecond,
		LoaderFiles: 100, LoaderSleep: 50 * time.Millisecond, LoaderThreshold: 200 * time.Millisecond,
		File: d.File, Line: d.Line}
	if !filepath.IsAbs(p.Path) {
		p.Path = filepath.Join(l.cfg.Prefix, p.Path)
	}
	p.Path = filepath.Clean(p.Path)
	for _, a := range d.Args[1:] {
		if err := cachePathArg(d, p, a); err != nil {
			return err
		}
	}
	if p.Zone == "" {
		return conf.Errorf(d, "\"%s\" must have \"keys_zone\" parameter", d.Name)
	}
	for _, o := range l.cfg.HTTP.CachePaths {
		if o.Zone == p.Zone {
			return conf.Errorf(d, "duplicate zone \"%s\"", p.Zone)
		}
		if o.Path == p.Path {
			return conf.Errorf(d, "duplicate cache path \"%s\", previous was specified in %s:%d", p.Path, o.File, o.Line)
		}
	}
	l.cfg.HTTP.CachePaths = append(l.cfg.HTTP.CachePaths, p)
	return nil
}

// cachePathArg reads one name=value parameter of proxy_cache_path.
func cachePathArg(d *conf.Directive, p *CachePath, a string) error {
	name, v, ok := strings.Cut(a, "=")
	if !ok {
		return conf.Errorf(d, "invalid parameter \"%s\"", a)
	}
	bad := conf.Errorf(d, "invalid %s value \"%s\"", name, a)
	var err error
	switch name {
	case "levels":
		p.Levels, err = cacheLevels(v)
	case "keys_zone":
		zn, size, ok := strings.Cut(v, ":")
		if !ok || zn == "" {
			return conf.Errorf(d, "invalid keys zone size \"%s\"", a)
		}
		if p.ZoneSize, err = ParseSize(size); err != nil {
			return conf.Errorf(d, "invalid keys zone size \"%s\"", a)
		}
		if p.ZoneSize < 8192 {
			return conf.Errorf(d, "keys zone \"%s\" is too small", zn)
		}
		p.Zone = zn
	case "inactive", "manager_sleep", "manager_threshold", "loader_sleep", "loader_threshold":
		var t time.Duration
		if t, err = ParseDuration(v); err == nil {
			*map[string]*time.Duration{"inactive": &p.Inactive, "manager_sleep": &p.ManagerSleep,
				"manager_threshold": &p.ManagerThreshold, "loader_sleep": &p.LoaderSleep, "loader_threshold": &p.LoaderThreshold}[name] = t
		}
	case "max_size":
		p.MaxSize, err = ParseSize(v)
	case "min_free":
		p.MinFree, err = ParseSize(v)
	case "use_temp_path":
		p.UseTempPath, err = parseFlag(v)
	case "manager_files", "loader_files":
		var n int
		if n, err = intAtLeast(v, 1); err == nil {
			*map[string]*int{"manager_files": &p.ManagerFiles, "loader_files": &p.LoaderFiles}[name] = n
		}
	default:
		return conf.Errorf(d, "invalid parameter \"%s\"", a)
	}
	if err != nil {
		return bad
	}
	return nil
}

// cacheLevels reads levels=1:2: one to three levels of 1 or 2 characters.
func cacheLevels(v string) ([]int, error) {
	parts := strings.Split(v, ":")
	if len(parts) > 3 {
		return nil, errBadValue
	}
	var out []int
	for _, p := range parts {
		if p != "1" && p != "2" {
			return nil, errBadValue
		}
		out = append(out, int(p[0]-'0'))
	}
	return out, nil
}

// dProxyCache reads `proxy_cache zone | off`; the zone may be declared
// further down the file.
func dProxyCache(l *loader, d *conf.Directive, s *scope) error {
	if err := s.lc.mark(d, "proxy_cache"); err != nil {
		return err
	}
	c := &s.lc.Cache
	c.Path, c.zoneName = nil, ""
	if d.Args[0] == "off" {
		return nil
	}
	if strings.Contains(d.Args[0], "$") {
		return conf.Errorf(d, "variables in \"proxy_cache\" are not supported")
	}
	c.zoneName = d.Args[0]
	l.maps = append(l.maps, func() error {
		for _, p := range l.cfg.HTTP.CachePaths {
			if p.Zone == c.zoneName {
				c.Path = p
				return nil
			}
		}
		return conf.Errorf(d, "\"proxy_cache\" zone \"%s\" is unknown", c.zoneName)
	})
	return nil
}

func dCacheKey(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.lc.Cache.Key = t
	return s.lc.mark(d, "proxy_cache_key")
}

// dCacheValid reads `proxy_cache_valid [code ... | any] time`; without
// codes it means 200, 301 and 302.
func dCacheValid(l *loader, d *conf.Directive, s *scope) error {
	n := len(d.Args)
	t, err := ParseDuration(d.Args[n-1])
	if err != nil {
		return conf.Errorf(d, "invalid time value \"%s\"", d.Args[n-1])
	}
	v := CacheValid{Time: t}
	codes := d.Args[:n-1]
	if len(codes) == 0 {
		v.Codes = []int{200, 301, 302}
	}
	for _, a := range codes {
		if a == "any" {
			v.Codes = nil
			break
		}
		code, err := strconv.Atoi(a)
		if err != nil || code < 100 || code > 599 {
			return conf.Errorf(d, "invalid status \"%s\"", a)
		}
		v.Codes = append(v.Codes, code)
	}
	if !s.lc.set["proxy_cache_valid"] {
		s.lc.Cache.Valid = nil
	}
	s.lc.Cache.Valid = append(s.lc.Cache.Valid, v)
	s.lc.set["proxy_cache_valid"] = true
	return nil
}

func dCacheUseStale(l *loader, d *conf.Directive, s *scope) error {
	var mask uint16
	for _, a := range d.Args {
		bit := nextNames[a]
		switch {
		case a == "updating":
			bit = StaleUpdating
		case a == "non_idempotent" || bit == 0:
			return conf.Errorf(d, "invalid value \"%s\"", a)
		}
		mask |= bit
	}
	if mask&NextOff != 0 {
		mask = NextOff
	}
	s.lc.Cache.UseStale = mask
	return s.lc.mark(d, "proxy_cache_use_stale")
}

// predicates reads proxy_cache_bypass, proxy_no_cache and
// proxy_cache_purge: strings, any non-empty and not "0" at run time makes
// the condition true; several directives at one level add up.
func predicates(field func(*CacheConf) *[]*vars.Template) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		list := field(&s.lc.Cache)
		if !s.lc.set[d.Name] {
			*list = nil
		}
		for _, a := range d.Args {
			t, err := l.cfg.Vars.Compile(a)
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
			*list = append(*list, t)
		}
		s.lc.set[d.Name] = true
		return nil
	}
}

// dCacheMaxRangeOffset reads proxy_cache_max_range_offset: a number of
// bytes, as nginx's off_t slot (no size suffix).
func dCacheMaxRangeOffset(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.ParseInt(d.Args[0], 10, 64)
	if err != nil || n < 0 {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	s.lc.Cache.MaxRangeOffset = n
	return s.lc.mark(d, d.Name)
}

func dCacheMinUses(l *loader, d *conf.Directive, s *scope) error {
	n, err := intAtLeast(d.Args[0], 1)
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	s.lc.Cache.MinUses = n
	return s.lc.mark(d, d.Name)
}

func dCacheMethods(l *loader, d *conf.Directive, s *scope) error {
	ms := []string{"GET", "HEAD"}
	for _, a := range d.Args {
		switch a {
		case "GET", "HEAD":
		case "POST":
			ms = append(ms, a)
		default:
			return conf.Errorf(d, "invalid value \"%s\"", a)
		}
	}
	s.lc.Cache.Methods = ms
	return s.lc.mark(d, d.Name)
}
