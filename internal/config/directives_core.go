package config

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// coreDirectives are the main-context process settings and the connection
// settings of ngx_http_core_module. Settings with no meaning in wsgate's
// design are accepted, checked and listed as such in docs/directives.md.
var coreDirectives = map[string]dirSpec{
	// main
	"env":                 {ctx: cMain, min: 1, max: 1, fn: dEnv},
	"working_directory":   {ctx: cMain, min: 1, max: 1, once: true, fn: dWorkingDirectory},
	"load_module":         {ctx: cMain, min: 1, max: 1, fn: dLoadModule},
	"worker_priority":     {ctx: cMain, min: 1, max: 1, once: true, fn: dWorkerPriority},
	"worker_cpu_affinity": {ctx: cMain, min: 1, max: -1, once: true, fn: dCPUAffinity},

	// connections
	"keepalive_time":    {ctx: cHSL, min: 1, max: 1, fn: duration("keepalive_time", func(c *LocConf) *durationField { return &c.KeepaliveTime })},
	"keepalive_disable": {ctx: cHSL, min: 1, max: -1, fn: dKeepaliveDisable},
	"lingering_close":   {ctx: cHSL, min: 1, max: 1, fn: dLingeringClose},
	"lingering_time":    {ctx: cHSL, min: 1, max: 1, fn: duration("lingering_time", func(c *LocConf) *durationField { return &c.LingeringTime })},
	"lingering_timeout": {ctx: cHSL, min: 1, max: 1, fn: duration("lingering_timeout", func(c *LocConf) *durationField { return &c.LingeringTimeout })},
	"limit_rate":        {ctx: cHSLIf, min: 1, max: 1, fn: dLimitRate},
	"limit_rate_after":  {ctx: cHSLIf, min: 1, max: 1, fn: dLimitRate},
	"server_tokens":     {ctx: cHSL, min: 1, max: 1, fn: dServerTokens},
	"satisfy":           {ctx: cHSL, min: 1, max: 1, fn: dSatisfy},
	"auth_delay":        {ctx: cHSL, min: 1, max: 1, fn: duration("auth_delay", func(c *LocConf) *durationField { return &c.AuthDelay })},
	"underscores_in_headers": {ctx: cHTTP | cServer, min: 1, max: 1,
		fn: flag("underscores_in_headers", func(c *LocConf) *bool { return &c.UnderscoresInHeaders })},
	"ignore_invalid_headers": {ctx: cHTTP | cServer, min: 1, max: 1,
		fn: flag("ignore_invalid_headers", func(c *LocConf) *bool { return &c.IgnoreInvalidHeaders })},
	"chunked_transfer_encoding": {ctx: cHSL, min: 1, max: 1,
		fn: flag("chunked_transfer_encoding", func(c *LocConf) *bool { return &c.ChunkedTransferEncoding })},

	// Accepted without effect: the request body is streamed (never
	// written to a file) and nginx's memory pools do not exist.
	"client_body_in_file_only":     {ctx: cHSL, min: 1, max: 1, fn: dBodyInFileOnly},
	"client_body_in_single_buffer": {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"connection_pool_size":         {ctx: cHTTP | cServer, min: 1, max: 1, fn: sizeArg},
	"request_pool_size":            {ctx: cHTTP | cServer, min: 1, max: 1, fn: sizeArg},
	// Old Internet Explorer workarounds.
	"msie_padding":     {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"msie_refresh":     {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"send_lowat":       {ctx: cHSL, min: 1, max: 1, fn: dSendLowat},
	"proxy_send_lowat": {ctx: cHSL, min: 1, max: 1, fn: dSendLowat},
}

// EnvVar is one env directive: Value is set at start when HasValue;
// otherwise the variable is kept as inherited.
type EnvVar struct {
	Name, Value string
	HasValue    bool
}

func dEnv(l *loader, d *conf.Directive, s *scope) error {
	name, value, has := strings.Cut(d.Args[0], "=")
	if name == "" {
		return conf.Errorf(d, "invalid value \"%s\" in \"env\" directive", d.Args[0])
	}
	l.cfg.Env = append(l.cfg.Env, EnvVar{Name: name, Value: value, HasValue: has})
	return nil
}

func dWorkingDirectory(l *loader, d *conf.Directive, s *scope) error {
	l.cfg.WorkingDirectory = l.cfg.Abs(d.Args[0])
	return nil
}

// builtinModules are nginx's dynamic modules whose directives wsgate
// implements itself: loading one is a no-op.
var builtinModules = map[string]bool{}

// knownLoadable maps the file names of nginx's dynamic modules that wsgate
// does not implement (nginx's own and those Debian packages) to the
// module's name.
var knownLoadable = map[string]string{
	"ngx_stream_module":                   "ngx_stream_core_module",
	"ngx_stream_geoip_module":             "ngx_stream_geoip_module",
	"ngx_stream_js_module":                "ngx_stream_js_module",
	"ngx_mail_module":                     "ngx_mail_core_module",
	"ngx_http_js_module":                  "ngx_http_js_module",
	"ngx_http_perl_module":                "ngx_http_perl_module",
	"ngx_http_xslt_filter_module":         "ngx_http_xslt_module",
	"ngx_http_image_filter_module":        "ngx_http_image_filter_module",
	"ngx_http_geoip_module":               "ngx_http_geoip_module",
	"ngx_http_geoip2_module":              "ngx_http_geoip2_module",
	"ngx_http_dav_ext_module":             "ngx_http_dav_ext_module",
	"ngx_http_auth_pam_module":            "ngx_http_auth_pam_module",
	"ngx_http_echo_module":                "ngx_http_echo_module",
	"ngx_http_subs_filter_module":         "ngx_http_subs_filter_module",
	"ngx_http_upstream_fair_module":       "ngx_http_upstream_fair_module",
	"ngx_http_fancyindex_module":          "ngx_http_fancyindex_module",
	"ngx_http_uploadprogress_module":      "ngx_http_uploadprogress_module",
	"ngx_http_headers_more_filter_module": "ngx_http_headers_more_filter_module",
	"ngx_http_lua_module":                 "ngx_http_lua_module",
	"ndk_http_module":                     "ndk_http_module",
	"ngx_nchan_module":                    "ngx_nchan_module",
	"ngx_rtmp_module":                     "ngx_rtmp_module",
}

// dLoadModule accepts a module wsgate has built in. Any other is ignored
// with a warning, as a module loaded and never used changes nothing, so
// that a distribution's modules-enabled does not stop a configuration that
// uses none of them; a directive of the module is refused where it appears
// (unknownDirective names the modules ignored).
func dLoadModule(l *loader, d *conf.Directive, s *scope) error {
	name := strings.TrimSuffix(filepath.Base(d.Args[0]), ".so")
	if builtinModules[name] {
		return nil
	}
	m := knownLoadable[name]
	if m == "" {
		m = name
	}
	l.ignoredModules = append(l.ignoredModules, fmt.Sprintf("%s, loaded at %s:%d", m, d.File, d.Line))
	l.warn(d, "\"load_module\" of \"%s\" ignored: wsgate loads no dynamic modules and does not implement %s; its directives are refused", d.Args[0], m)
	return nil
}

func dRlimitNoFile(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.ParseUint(d.Args[0], 10, 63)
	if err != nil || n == 0 {
		return conf.Errorf(d, "invalid number \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	l.cfg.RlimitNoFile = n
	return nil
}

// dWorkerPriority reads a nice value, -20 (highest) to 20, as nginx.
func dWorkerPriority(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < -20 || n > 20 {
		return conf.Errorf(d, "invalid number \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	l.cfg.Priority, l.cfg.HasPriority = n, true
	return nil
}

// dCPUAffinity reads `auto [mask]` or one bit mask per worker. wsgate is
// one process: it runs on the union of the masks' CPUs; `auto` alone
// leaves the scheduler free, `auto mask` keeps to the mask's CPUs.
func dCPUAffinity(l *loader, d *conf.Directive, s *scope) error {
	masks := d.Args
	if masks[0] == "auto" {
		if len(masks) > 2 {
			return conf.Errorf(d, "invalid number of arguments in \"%s\" directive", d.Name)
		}
		masks = masks[1:]
		l.cfg.CPUAffinityAuto = true
	}
	var cpus []int
	seen := map[int]bool{}
	for _, m := range masks {
		if m == "" || len(m) > 1024 || strings.Trim(m, "01") != "" {
			return conf.Errorf(d, "invalid character \"%s\" in \"%s\"", m, d.Name)
		}
		for i := range len(m) {
			cpu := len(m) - 1 - i
			if m[i] == '1' && !seen[cpu] {
				seen[cpu] = true
				cpus = append(cpus, cpu)
			}
		}
	}
	l.cfg.CPUs = cpus
	return nil
}

// keepalive_disable browser bits.
const (
	KeepaliveDisableMSIE6 uint8 = 1 << iota
	KeepaliveDisableSafari
)

func dKeepaliveDisable(l *loader, d *conf.Directive, s *scope) error {
	var mask uint8
	for _, a := range d.Args {
		switch a {
		case "none":
			mask = 0
		case "msie6":
			mask |= KeepaliveDisableMSIE6
		case "safari":
			mask |= KeepaliveDisableSafari
		default:
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
	}
	s.lc.KeepaliveDisable = mask
	return s.lc.mark(d, d.Name)
}

// lingering_close values.
const (
	LingerOn LingerMode = iota
	LingerOff
	LingerAlways
)

// LingerMode is lingering_close.
type LingerMode uint8

func dLingeringClose(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "on":
		s.lc.LingeringClose = LingerOn
	case "off":
		s.lc.LingeringClose = LingerOff
	case "always":
		s.lc.LingeringClose = LingerAlways
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"off\", \"on\" or \"always\"", d.Args[0], d.Name)
	}
	return s.lc.mark(d, d.Name)
}

// RateValue is limit_rate or limit_rate_after: a size, or a template
// evaluated per request (variables are allowed, as since nginx 1.17.0).
type RateValue struct {
	N   int64
	Var *vars.Template
}

// Eval is the value for one request; a value that is not a size is 0.
func (r RateValue) Eval(vc *vars.Ctx) int64 {
	if r.Var == nil {
		return r.N
	}
	n, err := ParseSize(r.Var.Eval(vc))
	if err != nil {
		return 0
	}
	return n
}

func dLimitRate(l *loader, d *conf.Directive, s *scope) error {
	var v RateValue
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if t.IsConst() {
		if v.N, err = ParseSize(d.Args[0]); err != nil {
			return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
		}
	} else {
		v.Var = t
	}
	if d.Name == "limit_rate" {
		s.lc.LimitRate = v
	} else {
		s.lc.LimitRateAfter = v
	}
	return s.lc.mark(d, d.Name)
}

// dServerTokens reads on, off, build, or a string (nginx's commercial
// form; variables allowed; an empty string sends no Server header).
func dServerTokens(l *loader, d *conf.Directive, s *scope) error {
	c := s.lc
	c.ServerTokens, c.ServerTokensBuild, c.ServerTokensText = false, false, nil
	switch d.Args[0] {
	case "on":
		c.ServerTokens = true
	case "off":
	case "build":
		c.ServerTokens, c.ServerTokensBuild = true, true
	default:
		t, err := l.cfg.Vars.Compile(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		c.ServerTokensText = t
	}
	return c.mark(d, d.Name)
}

func dSatisfy(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "all":
		s.lc.SatisfyAny = false
	case "any":
		s.lc.SatisfyAny = true
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"all\" or \"any\"", d.Args[0], d.Name)
	}
	return s.lc.mark(d, d.Name)
}

func dBodyInFileOnly(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "on", "clean", "off":
		return nil
	}
	return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\", \"clean\" or \"off\"", d.Args[0], d.Name)
}

// dSendLowat reads send_lowat and proxy_send_lowat, and warns as nginx
// does on Linux, where SO_SNDLOWAT cannot be set.
func dSendLowat(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	if n != 0 {
		l.warn(d, "\"%s\" is not supported, ignored", d.Name)
	}
	return nil
}

// checkUser fails as nginx's getpwnam()/getgrnam() check when the process
// runs as root and the user or group does not exist; without root the
// directive is ignored, with nginx's warning.
func (l *loader) checkUser(d *conf.Directive) error {
	if !l.opts.Root {
		l.warn(d, "the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored")
		return nil
	}
	if _, err := user.Lookup(d.Args[0]); err != nil {
		return conf.Errorf(d, "getpwnam(\"%s\") failed", d.Args[0])
	}
	if len(d.Args) == 2 {
		if _, err := user.LookupGroup(d.Args[1]); err != nil {
			return conf.Errorf(d, "getgrnam(\"%s\") failed", d.Args[1])
		}
	}
	return nil
}

var coreMergers = map[string]func(c, p *LocConf){
	"keepalive_time":         func(c, p *LocConf) { c.KeepaliveTime = p.KeepaliveTime },
	"keepalive_disable":      func(c, p *LocConf) { c.KeepaliveDisable = p.KeepaliveDisable },
	"lingering_close":        func(c, p *LocConf) { c.LingeringClose = p.LingeringClose },
	"lingering_time":         func(c, p *LocConf) { c.LingeringTime = p.LingeringTime },
	"lingering_timeout":      func(c, p *LocConf) { c.LingeringTimeout = p.LingeringTimeout },
	"limit_rate":             func(c, p *LocConf) { c.LimitRate = p.LimitRate },
	"limit_rate_after":       func(c, p *LocConf) { c.LimitRateAfter = p.LimitRateAfter },
	"satisfy":                func(c, p *LocConf) { c.SatisfyAny = p.SatisfyAny },
	"auth_delay":             func(c, p *LocConf) { c.AuthDelay = p.AuthDelay },
	"underscores_in_headers": func(c, p *LocConf) { c.UnderscoresInHeaders = p.UnderscoresInHeaders },
	"ignore_invalid_headers": func(c, p *LocConf) { c.IgnoreInvalidHeaders = p.IgnoreInvalidHeaders },
	"chunked_transfer_encoding": func(c, p *LocConf) {
		c.ChunkedTransferEncoding = p.ChunkedTransferEncoding
	},
	"server_tokens": func(c, p *LocConf) {
		c.ServerTokens, c.ServerTokensBuild, c.ServerTokensText = p.ServerTokens, p.ServerTokensBuild, p.ServerTokensText
	},
}

// coreDefaults sets nginx's defaults for the settings above.
func coreDefaults(c *LocConf) {
	c.KeepaliveTime = time.Hour
	c.KeepaliveDisable = KeepaliveDisableMSIE6
	c.LingeringTime = 30 * time.Second
	c.LingeringTimeout = 5 * time.Second
	c.IgnoreInvalidHeaders = true
	c.ChunkedTransferEncoding = true
}

// defineCoreVars declares $limit_rate: the response's rate limit, which
// `set $limit_rate` changes.
func defineCoreVars(cfg *Config) {
	cfg.LimitRateVar, _ = cfg.Vars.DefineFunc("limit_rate", func(c *vars.Ctx) string { return strconv.FormatInt(c.LimitRate, 10) })
}

// KnownVariable reports whether every configuration provides the variable
// name: the built-in ones and those declared at load, such as $limit_rate.
func KnownVariable(name string) bool {
	cfg := &Config{Vars: vars.NewTable()}
	defineCoreVars(cfg)
	_, ok := cfg.Vars.Lookup(name)
	return ok
}
