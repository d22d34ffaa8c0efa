package config

import (
	"github.com/wsgate/wsgate/internal/regex"

	"github.com/wsgate/wsgate/internal/vars"
)

// Rewrite is one `rewrite regex replacement [flag]`.
type Rewrite struct {
	Regex   *regex.Regexp
	Pattern string         // the regex as written, for rewrite_log
	URI     *vars.Template // the replacement up to its first literal '?'
	Args    *vars.Template // after that '?'; nil when the replacement has none
	// AddArgs appends the request's arguments; a replacement that ends in
	// '?' drops them.
	AddArgs bool
	Flag    string // "", "last", "break", "redirect", "permanent"
	// Redirect is 301 or 302 when the rewrite answers with a redirect:
	// the flags redirect and permanent, or a replacement that starts
	// with http://, https:// or $scheme.
	Redirect int
}

// ErrorPage is one error_page directive.
type ErrorPage struct {
	Codes []int
	// Overwrite is the answer's status: -1 keeps the error's code, 0 (a
	// bare "=") takes the status of the redirected request.
	Overwrite int
	URI       *vars.Template // "/uri", "@named" or an absolute URL
}

// TryFile is one try_files argument.
type TryFile struct {
	Name    *vars.Template // without the trailing '/' of a directory test
	TestDir bool
	// Code is the status of a last argument "=code"; 0 otherwise.
	Code int
}

// LimitExcept is a limit_except block.
type LimitExcept struct {
	Methods map[string]bool // GET implies HEAD
	Loc     *Location
}

// NamedCapture binds a regex's named group to a variable.
type NamedCapture struct {
	Group int
	Var   int
}
