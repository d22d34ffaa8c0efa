package config

import (
	"github.com/wsgate/wsgate/internal/conf"
)

// noEffect lists directives that wsgate accepts, checks and ignores because
// they tune a mechanism its design does not have (nginx's hash tables, file
// I/O paths, buffers wsgate sizes itself). Each is listed with its reason in
// docs/directives.md.
var noEffect = map[string]dirSpec{
	// Hash-table sizes: Go maps grow by themselves.
	"types_hash_max_size":            {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"types_hash_bucket_size":         {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"server_names_hash_max_size":     {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"server_names_hash_bucket_size":  {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"variables_hash_max_size":        {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"variables_hash_bucket_size":     {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"map_hash_max_size":              {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"map_hash_bucket_size":           {ctx: cHTTP, min: 1, max: 1, fn: sizeArg},
	"proxy_headers_hash_max_size":    {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"proxy_headers_hash_bucket_size": {ctx: cHSL, min: 1, max: 1, fn: sizeArg},

	// File I/O strategies: files are read through the Go runtime.
	"aio":                      {ctx: cHSL, min: 1, max: 1, fn: anyArgs},
	"aio_write":                {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"directio":                 {ctx: cHSL, min: 1, max: 1, fn: offOrSize},
	"directio_alignment":       {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"read_ahead":               {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"sendfile_max_chunk":       {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"output_buffers":           {ctx: cHSL, min: 2, max: 2, fn: countAndSize},
	"postpone_output":          {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
	"open_file_cache":          {ctx: cHSL, min: 1, max: 2, fn: anyArgs},
	"open_file_cache_errors":   {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"open_file_cache_min_uses": {ctx: cHSL, min: 1, max: 1, fn: countArg},
	"open_file_cache_valid":    {ctx: cHSL, min: 1, max: 1, fn: durationArg},

	// Temporary folders of modules wsgate refuses; most main configs set them.
	"fastcgi_temp_path": {ctx: cHSL, min: 1, max: 4, fn: anyArgs},
	"uwsgi_temp_path":   {ctx: cHSL, min: 1, max: 4, fn: anyArgs},
	"scgi_temp_path":    {ctx: cHSL, min: 1, max: 4, fn: anyArgs},

	// Process-level settings of nginx's master/worker model.
	"lock_file":                    {ctx: cMain, min: 1, max: 1, fn: anyArgs},
	"timer_resolution":             {ctx: cMain, min: 1, max: 1, fn: durationArg},
	"thread_pool":                  {ctx: cMain, min: 2, max: 3, fn: anyArgs},
	"master_process":               {ctx: cMain, min: 1, max: 1, fn: flagArg},
	"debug_points":                 {ctx: cMain, min: 1, max: 1, fn: oneOf("abort", "stop")},
	"ssl_object_cache_inheritable": {ctx: cMain, min: 1, max: 1, fn: flagArg},
	"accept_mutex_delay":           {ctx: cEvents, min: 1, max: 1, fn: durationArg},
	"worker_aio_requests":          {ctx: cEvents, min: 1, max: 1, fn: countArg},
}

func anyArgs(*loader, *conf.Directive, *scope) error { return nil }

// oneOf accepts exactly one of the words given.
func oneOf(words ...string) func(*loader, *conf.Directive, *scope) error {
	return func(_ *loader, d *conf.Directive, _ *scope) error {
		for _, w := range words {
			if d.Args[0] == w {
				return nil
			}
		}
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
}

func sizeArg(_ *loader, d *conf.Directive, _ *scope) error {
	if _, err := ParseSize(d.Args[0]); err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	return nil
}

func flagArg(_ *loader, d *conf.Directive, _ *scope) error {
	if _, err := parseFlag(d.Args[0]); err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	return nil
}

func offOrSize(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "off" {
		return nil
	}
	return sizeArg(l, d, s)
}

func countArg(_ *loader, d *conf.Directive, _ *scope) error {
	if _, err := intAtLeast(d.Args[0], 1); err != nil {
		return conf.Errorf(d, "invalid number \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	return nil
}

func countAndSize(l *loader, d *conf.Directive, s *scope) error {
	if err := countArg(l, d, s); err != nil {
		return err
	}
	if _, err := ParseSize(d.Args[1]); err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	return nil
}

func durationArg(_ *loader, d *conf.Directive, _ *scope) error {
	if _, err := ParseDuration(d.Args[0]); err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	return nil
}
