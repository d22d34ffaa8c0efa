package config

// DirectiveInfo describes a directive wsgate accepts.
type DirectiveInfo struct {
	// NoEffect is true for a directive accepted, checked and ignored
	// because it tunes a mechanism wsgate does not have.
	NoEffect bool
}

// Directives returns a fresh map of every directive wsgate accepts, by
// name, including "include", which the loader expands before the table is
// consulted, and those of the acme_issuer block. Changing the map changes nothing in the package.
func Directives() map[string]DirectiveInfo {
	out := make(map[string]DirectiveInfo, len(table)+1)
	for name := range table {
		_, ne := noEffect[name]
		out[name] = DirectiveInfo{NoEffect: ne}
	}
	for name := range acmeIssuerDirectives {
		out[name] = DirectiveInfo{} // inside acme_issuer
	}
	out["include"] = DirectiveInfo{}
	return out
}

// RefusedModule names the nginx module of a directive wsgate refuses by
// design, or returns "" when the directive belongs to none of them.
func RefusedModule(name string) string { return refusedModule(name) }

// RefusedDirective says why wsgate refuses a directive of a module it
// implements, or returns "" when it does not.
func RefusedDirective(name string) string { return refusedDirectives[name] }
