package vars

import "strings"

// Assigned is the value that `set`, auth_request_set or a named capture
// gave variable Index.
type Assigned struct {
	Index int
	Value string
}

// Assigned returns copies of the values c holds of the variables that are
// assigned rather than computed, so that a Ctx built later for the same
// request (see Assign) sees them without keeping c or what its values
// point into.
func (c *Ctx) Assigned() []Assigned {
	var out []Assigned
	for i, v := range c.tab.vars {
		if v.get == nil && c.have[i] {
			out = append(out, Assigned{Index: i, Value: strings.Clone(c.vals[i])})
		}
	}
	return out
}

// Assign gives c the values of as, which Assigned took from a Ctx of the
// same table.
func (c *Ctx) Assign(as []Assigned) {
	for _, a := range as {
		c.Set(a.Index, a.Value)
	}
}
