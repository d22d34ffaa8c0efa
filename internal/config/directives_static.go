package config

import (
	"maps"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// Files holds the settings of nginx's static, index and autoindex modules
// and the file and redirect settings of its core module, as one location
// sees them after merging.
type Files struct {
	// Root is the root or alias value; relative constant paths are made
	// absolute from the prefix at load, and root's trailing '/' is cut,
	// as nginx does. Prefix resolves a relative path a template yields.
	Root   *vars.Template
	Prefix string
	// Alias marks an alias; AliasLen is the length of the location name
	// the alias replaces, and AliasAll an alias in a regex location, which
	// names the whole path.
	Alias    bool
	AliasLen int
	AliasAll bool

	// Types maps a lowercased extension to its MIME type.
	Types map[string]string

	ETag            bool
	IfModifiedSince IMS
	MaxRanges       int // -1: no limit

	Autoindex          bool
	AutoindexExactSize bool
	AutoindexFormat    string // "html", "xml", "json", "jsonp"
	AutoindexLocaltime bool

	DisableSymlinks Symlinks
	SymlinksFrom    *vars.Template // from=part; nil checks the whole path
	LogNotFound     bool

	AbsoluteRedirect     bool
	PortInRedirect       bool
	ServerNameInRedirect bool
}

// IMS is an if_modified_since mode.
type IMS int

// if_modified_since modes.
const (
	IMSExact IMS = iota
	IMSOff
	IMSBefore
)

// Symlinks is a disable_symlinks mode.
type Symlinks int

// disable_symlinks modes.
const (
	SymlinksOff Symlinks = iota
	SymlinksOn
	SymlinksIfNotOwner
)

// defaultTypes is nginx's MIME table when no types block is configured.
var defaultTypes = map[string]string{"html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"}

var htmlRoot = vars.NewTable().MustCompile("html")

func defaultFiles() Files {
	return Files{
		Root:               htmlRoot,
		Types:              defaultTypes,
		ETag:               true,
		MaxRanges:          -1,
		AutoindexFormat:    "html",
		AutoindexExactSize: true,
		LogNotFound:        true,
		AbsoluteRedirect:   true,
		PortInRedirect:     true,
	}
}

var staticDirectives = map[string]dirSpec{
	"root":                    {ctx: cHSLIf, min: 1, max: 1, fn: dRoot},
	"alias":                   {ctx: cLocation, min: 1, max: 1, fn: dRoot},
	"types":                   {ctx: cHSL, block: true, fn: dTypes},
	"default_type":            {ctx: cHSL, min: 1, max: 1, fn: dDefaultType},
	"etag":                    {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.ETag })},
	"if_modified_since":       {ctx: cHSL, min: 1, max: 1, fn: dIfModifiedSince},
	"max_ranges":              {ctx: cHSL, min: 1, max: 1, fn: dMaxRanges},
	"autoindex":               {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.Autoindex })},
	"autoindex_exact_size":    {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.AutoindexExactSize })},
	"autoindex_localtime":     {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.AutoindexLocaltime })},
	"autoindex_format":        {ctx: cHSL, min: 1, max: 1, fn: dAutoindexFormat},
	"disable_symlinks":        {ctx: cHSL, min: 1, max: 2, fn: dDisableSymlinks},
	"log_not_found":           {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.LogNotFound })},
	"absolute_redirect":       {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.AbsoluteRedirect })},
	"port_in_redirect":        {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.PortInRedirect })},
	"server_name_in_redirect": {ctx: cHSL, min: 1, max: 1, fn: filesFlag(func(f *Files) *bool { return &f.ServerNameInRedirect })},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"root": func(c, p *LocConf) {
			c.Files.Root, c.Files.Prefix, c.Files.Alias, c.Files.AliasLen, c.Files.AliasAll = p.Files.Root, p.Files.Prefix, p.Files.Alias, p.Files.AliasLen, p.Files.AliasAll
		},
		"types":                func(c, p *LocConf) { c.Files.Types = p.Files.Types },
		"default_type":         func(c, p *LocConf) { c.DefaultType = p.DefaultType },
		"etag":                 func(c, p *LocConf) { c.Files.ETag = p.Files.ETag },
		"if_modified_since":    func(c, p *LocConf) { c.Files.IfModifiedSince = p.Files.IfModifiedSince },
		"max_ranges":           func(c, p *LocConf) { c.Files.MaxRanges = p.Files.MaxRanges },
		"autoindex":            func(c, p *LocConf) { c.Files.Autoindex = p.Files.Autoindex },
		"autoindex_exact_size": func(c, p *LocConf) { c.Files.AutoindexExactSize = p.Files.AutoindexExactSize },
		"autoindex_localtime":  func(c, p *LocConf) { c.Files.AutoindexLocaltime = p.Files.AutoindexLocaltime },
		"autoindex_format":     func(c, p *LocConf) { c.Files.AutoindexFormat = p.Files.AutoindexFormat },
		"disable_symlinks": func(c, p *LocConf) {
			c.Files.DisableSymlinks, c.Files.SymlinksFrom = p.Files.DisableSymlinks, p.Files.SymlinksFrom
		},
		"log_not_found":           func(c, p *LocConf) { c.Files.LogNotFound = p.Files.LogNotFound },
		"absolute_redirect":       func(c, p *LocConf) { c.Files.AbsoluteRedirect = p.Files.AbsoluteRedirect },
		"port_in_redirect":        func(c, p *LocConf) { c.Files.PortInRedirect = p.Files.PortInRedirect },
		"server_name_in_redirect": func(c, p *LocConf) { c.Files.ServerNameInRedirect = p.Files.ServerNameInRedirect },
	})
}

func filesFlag(field func(*Files) *bool) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		v, err := parseFlag(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
		}
		*field(&s.lc.Files) = v
		return s.lc.mark(d, d.Name)
	}
}

// dRoot reads root and alias, which share one setting as in nginx.
func dRoot(l *loader, d *conf.Directive, s *scope) error {
	if s.lc.set["root"] {
		prev := "root"
		if s.lc.Files.Alias {
			prev = "alias"
		}
		if prev == d.Name {
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
		return conf.Errorf(d, "\"%s\" directive is duplicate, \"%s\" directive was specified earlier", d.Name, prev)
	}
	v := d.Args[0]
	if strings.Contains(v, "$document_root") || strings.Contains(v, "$realpath_root") {
		return conf.Errorf(d, "the $document_root and $realpath_root variables cannot be used in the \"%s\" directive", d.Name)
	}
	f := &s.lc.Files
	f.Alias = d.Name == "alias"
	if !f.Alias && len(v) > 1 && strings.HasSuffix(v, "/") {
		v = v[:len(v)-1]
	}
	t, err := l.cfg.Vars.Compile(v)
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	f.Root, f.Prefix = t, l.cfg.Prefix
	if f.Alias {
		f.AliasLen = len(s.loc.Path)
		f.AliasAll = s.loc.Regex != nil
	}
	s.lc.set["root"] = true
	return nil
}

// dTypes reads a types block: each entry is a MIME type followed by its
// extensions. The block replaces the inherited table; blocks at one level
// add up, and a repeated extension takes the later type, as in nginx.
func dTypes(l *loader, d *conf.Directive, s *scope) error {
	f := &s.lc.Files
	if !s.lc.set["types"] {
		f.Types = map[string]string{}
		s.lc.set["types"] = true
	}
	for _, e := range d.Block {
		if e.IsBlock() {
			return conf.Errorf(e, "unexpected \"{\"")
		}
		for _, ext := range e.Args {
			ext = strings.ToLower(ext)
			if old, ok := f.Types[ext]; ok && old != e.Name {
				l.warn(e, "duplicate extension \"%s\", content type: \"%s\", previous content type: \"%s\"", ext, e.Name, old)
			}
			f.Types[ext] = e.Name
		}
	}
	return nil
}

func dDefaultType(l *loader, d *conf.Directive, s *scope) error {
	s.lc.DefaultType = d.Args[0]
	return s.lc.mark(d, "default_type")
}

func dIfModifiedSince(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "off":
		s.lc.Files.IfModifiedSince = IMSOff
	case "exact":
		s.lc.Files.IfModifiedSince = IMSExact
	case "before":
		s.lc.Files.IfModifiedSince = IMSBefore
	default:
		return conf.Errorf(d, "invalid value \"%s\"", d.Args[0])
	}
	return s.lc.mark(d, d.Name)
}

func dMaxRanges(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 {
		return conf.Errorf(d, "\"%s\" directive invalid number", d.Name)
	}
	s.lc.Files.MaxRanges = n
	return s.lc.mark(d, d.Name)
}

func dAutoindexFormat(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "html", "xml", "json", "jsonp":
	default:
		return conf.Errorf(d, "invalid value \"%s\"", d.Args[0])
	}
	s.lc.Files.AutoindexFormat = d.Args[0]
	return s.lc.mark(d, d.Name)
}

func dDisableSymlinks(l *loader, d *conf.Directive, s *scope) error {
	f := &s.lc.Files
	switch d.Args[0] {
	case "off":
		f.DisableSymlinks = SymlinksOff
	case "on":
		f.DisableSymlinks = SymlinksOn
	case "if_not_owner":
		f.DisableSymlinks = SymlinksIfNotOwner
	default:
		return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
	}
	f.SymlinksFrom = nil
	if len(d.Args) == 2 {
		from, ok := strings.CutPrefix(d.Args[1], "from=")
		if !ok || from == "" {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
		}
		if f.DisableSymlinks == SymlinksOff {
			return conf.Errorf(d, "\"from=\" cannot be used with \"off\" parameter")
		}
		t, err := l.cfg.Vars.Compile(from)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		f.SymlinksFrom = t
	}
	return s.lc.mark(d, d.Name)
}
