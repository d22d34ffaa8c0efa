package main

import (
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// redacted replaces a secret in -T's output.
const redacted = "<redacted>"

// secretHeaders are request or response headers whose literal values are
// credentials.
var secretHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true,
	"set-cookie": true, "x-api-key": true, "x-auth-token": true,
}

// headerDirectives take a header name and a value.
var headerDirectives = map[string]bool{
	"proxy_set_header": true, "add_header": true, "grpc_set_header": true,
}

// secretDirectives carry a secret in every argument.
var secretDirectives = map[string]bool{
	"secure_link_secret": true, "secure_link_md5": true,
}

// redact returns a copy of ds with secrets replaced by <redacted>: inline
// key material (`data:` in ssl_certificate_key, ssl_password_file and any
// *_key directive), literal credentials in Authorization, Cookie and
// similar headers, and secure_link secrets. Variables are left visible:
// they name where a value comes from, not the value.
func redact(ds []*conf.Directive) []*conf.Directive {
	out := make([]*conf.Directive, len(ds))
	for i, d := range ds {
		c := *d
		c.Args = append([]string(nil), d.Args...)
		for j := range c.Args {
			if c.Name == "cluster_store" {
				c.Args[j] = redactStoreArg(c.Args[j])
			} else if secretArg(&c, j) {
				c.Args[j] = redactedValue(c.Args[j])
			}
		}
		if d.Block != nil {
			c.Block = redact(d.Block)
		}
		out[i] = &c
	}
	return out
}

// secretArg reports whether argument j of d is a secret.
func secretArg(d *conf.Directive, j int) bool {
	a := d.Args[j]
	switch {
	case secretDirectives[d.Name]:
		return true
	case strings.HasPrefix(a, "data:"):
		return strings.HasSuffix(d.Name, "_key") || d.Name == "ssl_password_file"
	case headerDirectives[d.Name] && j == 1:
		return secretHeaders[strings.ToLower(d.Args[0])] && !onlyVariable(a)
	}
	return false
}

// redactedValue keeps the `data:` marker so the form stays visible.
func redactedValue(a string) string {
	if strings.HasPrefix(a, "data:") {
		return "data:" + redacted
	}
	return redacted
}

// onlyVariable reports whether a is a single variable reference such as
// $http_authorization.
func onlyVariable(a string) bool {
	if len(a) < 2 || a[0] != '$' {
		return false
	}
	name := strings.TrimSuffix(strings.TrimPrefix(a[1:], "{"), "}")
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return name != ""
}
