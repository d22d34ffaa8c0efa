package vars

// LocVars answers the variables of modules configured per location:
// $invalid_referer, $secure_link, $secure_link_expires, $uid_got,
// $uid_set and the $otel_* trace identifiers. ModuleVar returns the value and whether the
// variable has one (false reads as empty, "-" in logs).
type LocVars interface {
	ModuleVar(name string) (string, bool)
}

// moduleVarNames are the variables LocVars answers.
var moduleVarNames = []string{"invalid_referer", "secure_link", "secure_link_expires", "uid_got", "uid_set",
	"otel_trace_id", "otel_span_id", "otel_parent_id", "otel_parent_sampled"}

func init() {
	for _, name := range moduleVarNames {
		builtins[name] = func(c *Ctx) string {
			if c.Loc == nil {
				return ""
			}
			v, _ := c.Loc.ModuleVar(name)
			return v
		}
		volatile[name] = true // they depend on the location, which may change
	}
}
