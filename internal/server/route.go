package server

import "github.com/wsgate/wsgate/internal/vars"

// firstNonEmpty is `sticky route`'s route: the first of its variables that
// is not empty, "" when all are.
func firstNonEmpty(ts []*vars.Template, vc *vars.Ctx) string {
	for _, t := range ts {
		if v := t.Eval(vc); v != "" {
			return v
		}
	}
	return ""
}
