package status

import _ "embed"

//go:embed dashboard.html
var dashboard []byte

// DashboardHTML returns the live dashboard page: one self-contained HTML
// document (no external scripts, styles or fonts) that polls its own URL
// with "?json" every second, so it must be served where that query returns
// WriteJSON's document. The caller must not modify the returned slice.
func DashboardHTML() []byte { return dashboard }
