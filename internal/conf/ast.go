package conf

import "fmt"

// Directive is one statement of an nginx-syntax file: a name, its arguments
// and, for block directives, the statements inside the braces. Includes are
// already expanded when a Directive reaches the caller, so File and Line
// always name where the text really is.
type Directive struct {
	Name string
	Args []string
	// Quoted[i] reports whether Args[i] was written in quotes; the config
	// layer needs it to tell `''` (an empty map key) from a missing argument
	// and `"~x"` (a literal) from `~x` (a regex).
	Quoted []bool
	File   string
	Line   int
	// Block is nil for a simple directive ending in ';' and non-nil (maybe
	// empty) for one followed by '{ ... }'.
	Block []*Directive
}

// IsBlock reports whether d was written with braces.
func (d *Directive) IsBlock() bool { return d.Block != nil }

// Error is a configuration error tied to a place in a file, printed the way
// nginx prints them: `message in file:line`.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	return fmt.Sprintf("%s in %s:%d", e.Msg, e.File, e.Line)
}

// Errorf builds an *Error at d's position.
func Errorf(d *Directive, format string, args ...any) *Error {
	return &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf(format, args...)}
}
