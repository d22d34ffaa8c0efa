package vars

// Known reports whether name (without "$") is a variable wsgate provides
// without configuration: a built-in, a member of a prefix family such as
// $http_NAME or $arg_NAME, or a regex capture $0..$9.
func Known(name string) bool {
	_, ok := NewTable().Lookup(name)
	return ok
}
