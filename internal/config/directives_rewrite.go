package config

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/regex"
)

// cLmt is the inside of a limit_except block.
const cLmt ctxMask = 1 << 14

// rewriteDirectives are ngx_http_rewrite_module's rewrite and its flags,
// and the core directives that redirect a request inside the server:
// error_page, try_files, internal, limit_except.
var rewriteDirectives = map[string]dirSpec{
	"rewrite":                     {ctx: cAnyRew, min: 2, max: 3, fn: dRewrite},
	"rewrite_log":                 {ctx: cHTTP | cAnyRew, min: 1, max: 1, fn: flag("rewrite_log", func(c *LocConf) *bool { return &c.RewriteLog })},
	"uninitialized_variable_warn": {ctx: cHTTP | cAnyRew, min: 1, max: 1, fn: flag("uninitialized_variable_warn", func(c *LocConf) *bool { return &c.UninitWarn })},
	"error_page":                  {ctx: cHSL | cLocIf, min: 2, max: -1, fn: dErrorPage},
	"recursive_error_pages":       {ctx: cHSL, min: 1, max: 1, fn: flag("recursive_error_pages", func(c *LocConf) *bool { return &c.RecursiveErrorPages })},
	"proxy_intercept_errors":      {ctx: cHSL, min: 1, max: 1, fn: flag("proxy_intercept_errors", func(c *LocConf) *bool { return &c.InterceptErrors })},
	"try_files":                   {ctx: cServer | cLocation, min: 2, max: -1, fn: dTryFiles},
	"internal":                    {ctx: cLocation, max: 0, fn: dInternal},
	"limit_except":                {ctx: cLocation, min: 1, max: -1, block: true, fn: dLimitExcept},
}

func init() {
	mergers["rewrite_log"] = func(c, p *LocConf) { c.RewriteLog = p.RewriteLog }
	mergers["uninitialized_variable_warn"] = func(c, p *LocConf) { c.UninitWarn = p.UninitWarn }
	mergers["error_page"] = func(c, p *LocConf) { c.ErrorPages = p.ErrorPages }
	mergers["recursive_error_pages"] = func(c, p *LocConf) { c.RecursiveErrorPages = p.RecursiveErrorPages }
	mergers["proxy_intercept_errors"] = func(c, p *LocConf) { c.InterceptErrors = p.InterceptErrors }
	mergers["index"] = func(c, p *LocConf) { c.Index, c.IndexVars = p.Index, p.IndexVars }
	mergers["internal"] = func(c, p *LocConf) { c.Internal = p.Internal }
}

// captureName finds the named groups of a regex, (?<name>...),
// (?P<name>...) and (?'name'...), so that their variables exist before
// anything reads them.
var captureName = regexp.MustCompile(`\(\?(?:P?<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')`)

// declareCaptures declares the variables of the named groups in the
// regexes of location, if and rewrite.
func (l *loader) declareCaptures(d *conf.Directive) error {
	switch d.Name {
	case "location", "if", "rewrite":
	default:
		return nil
	}
	for _, a := range d.Args {
		for _, m := range captureName.FindAllStringSubmatch(a, -1) {
			if _, err := l.cfg.Vars.DefineCapture(m[1] + m[2]); err != nil {
				return conf.Errorf(d, "%v", err)
			}
		}
	}
	return nil
}

// compileRegex compiles a location, if or rewrite regex (see package
// regex) and records the variables its named groups set.
func (l *loader) compileRegex(expr string, caseless bool) (*regex.Regexp, error) {
	re, err := regex.Compile(expr, caseless)
	if err != nil {
		return nil, err
	}
	l.recordCaptures(re)
	return re, nil
}

// recordCaptures binds the named groups of re (a location, if, rewrite or
// server_name regex) to the variables of their names, in Captures.
func (l *loader) recordCaptures(re *regex.Regexp) {
	for i, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		idx, ok := l.cfg.Vars.Lookup(name)
		if !ok {
			continue
		}
		if l.cfg.Captures == nil {
			l.cfg.Captures = map[*regex.Regexp][]NamedCapture{}
		}
		l.cfg.Captures[re] = append(l.cfg.Captures[re], NamedCapture{Group: i, Var: idx})
	}
}

func dRewrite(l *loader, d *conf.Directive, s *scope) error {
	re, err := l.compileRegex(d.Args[0], false)
	if err != nil {
		return conf.Errorf(d, "invalid regex \"%s\": %v", d.Args[0], err)
	}
	rw := &Rewrite{Regex: re, Pattern: d.Args[0], AddArgs: true}
	if len(d.Args) == 3 {
		rw.Flag = d.Args[2]
		switch rw.Flag {
		case "last", "break":
		case "redirect":
			rw.Redirect = 302
		case "permanent":
			rw.Redirect = 301
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[2])
		}
	}
	repl := d.Args[1]
	if rw.Redirect == 0 && (strings.HasPrefix(repl, "http://") || strings.HasPrefix(repl, "https://") || strings.HasPrefix(repl, "$scheme")) {
		rw.Redirect = 302
	}
	if strings.HasSuffix(repl, "?") {
		repl, rw.AddArgs = repl[:len(repl)-1], false
	}
	uri, args, hasArgs := strings.Cut(repl, "?")
	if rw.URI, err = l.cfg.Vars.Compile(uri); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if hasArgs {
		if rw.Args, err = l.cfg.Vars.Compile(args); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	}
	s.loc.Rewrite = append(s.loc.Rewrite, Op{Kind: OpRewrite, Rw: rw})
	return nil
}

func dErrorPage(l *loader, d *conf.Directive, s *scope) error {
	ep := ErrorPage{Overwrite: -1}
	last := len(d.Args) - 1
	n := last
	if a := d.Args[last-1]; strings.HasPrefix(a, "=") {
		if last-1 == 0 {
			return conf.Errorf(d, "invalid value \"%s\"", a)
		}
		n = last - 1
		ep.Overwrite = 0
		if len(a) > 1 {
			v, err := strconv.Atoi(a[1:])
			if err != nil || v < 0 || v > 999 {
				return conf.Errorf(d, "invalid value \"%s\"", a)
			}
			ep.Overwrite = v
		}
	}
	for _, a := range d.Args[:n] {
		code, err := strconv.Atoi(a)
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\"", a)
		}
		if code < 300 || code > 599 {
			return conf.Errorf(d, "value \"%s\" must be between 300 and 599", a)
		}
		ep.Codes = append(ep.Codes, code)
	}
	t, err := l.cfg.Vars.Compile(d.Args[last])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	ep.URI = t
	if !s.lc.set["error_page"] {
		s.lc.ErrorPages = nil
	}
	s.lc.ErrorPages = append(s.lc.ErrorPages, ep)
	s.lc.set["error_page"] = true
	return nil
}

func dTryFiles(l *loader, d *conf.Directive, s *scope) error {
	if s.lc.TryFiles != nil {
		return conf.Errorf(d, "\"try_files\" directive is duplicate")
	}
	last := len(d.Args) - 1
	for i, a := range d.Args {
		tf := TryFile{}
		if i == last && strings.HasPrefix(a, "=") {
			code, err := strconv.Atoi(a[1:])
			if err != nil || code < 1 || code > 999 {
				return conf.Errorf(d, "invalid code \"%s\"", a)
			}
			tf.Code = code
			s.lc.TryFiles = append(s.lc.TryFiles, tf)
			continue
		}
		if i < last && strings.HasSuffix(a, "/") && len(a) > 1 {
			a, tf.TestDir = a[:len(a)-1], true
		}
		t, err := l.cfg.Vars.Compile(a)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		tf.Name = t
		s.lc.TryFiles = append(s.lc.TryFiles, tf)
	}
	return nil
}

func dInternal(l *loader, d *conf.Directive, s *scope) error {
	s.lc.Internal = true
	return s.lc.mark(d, "internal")
}

// httpMethods are the methods limit_except knows, as nginx.
var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"MKCOL": true, "COPY": true, "MOVE": true, "OPTIONS": true, "PROPFIND": true, "PROPPATCH": true,
	"LOCK": true, "UNLOCK": true, "PATCH": true}

func dLimitExcept(l *loader, d *conf.Directive, s *scope) error {
	if s.loc.LimitExcept != nil {
		return conf.Errorf(d, "\"limit_except\" directive is duplicate")
	}
	le := &LimitExcept{Methods: map[string]bool{}}
	for _, m := range d.Args {
		if !httpMethods[m] {
			return conf.Errorf(d, "invalid method \"%s\"", m)
		}
		le.Methods[m] = true
		if m == "GET" {
			le.Methods["HEAD"] = true
		}
	}
	le.Loc = &Location{Modifier: "limit_except", Path: s.loc.Path, Parent: s.loc, Conf: newLocConf(), File: d.File, Line: d.Line}
	s.loc.LimitExcept = le
	return l.block(d.Block, &scope{kind: cLmt, server: s.server, loc: le.Loc, lc: le.Loc.Conf})
}

// namedLocation reads `location @name { ... }`: server level only, one
// per name. It is kept out of the location search.
func (l *loader) namedLocation(d *conf.Directive, s *scope, name string) error {
	if s.kind != cServer {
		return conf.Errorf(d, "named location \"%s\" can be on the server level only", name)
	}
	srv := s.server
	if srv.Named[name] != nil {
		return conf.Errorf(d, "duplicate location \"%s\"", name)
	}
	if srv.Named == nil {
		srv.Named = map[string]*Location{}
	}
	loc := &Location{Modifier: "@", Path: name, Parent: srv.Locations, Conf: newLocConf(), File: d.File, Line: d.Line}
	srv.Named[name] = loc
	// A child of the root for inheritance and Walk; the search reads only
	// Exacts, Prefixes and Regexes.
	srv.Locations.Children = append(srv.Locations.Children, loc)
	return l.block(d.Block, &scope{kind: cLocation, server: srv, loc: loc, lc: loc.Conf})
}
