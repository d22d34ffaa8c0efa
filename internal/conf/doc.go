// Package conf turns nginx-syntax text into a tree of Directives and back:
// it lexes the way nginx's ngx_conf_read_token does, expands include
// directives in place (globs, paths relative to the main file's directory,
// cycle and depth checks) and reports syntax errors as nginx words them,
// with file and line. It knows nothing about what any directive means,
// which contexts allow it or how many arguments it takes; that belongs to
// the config package, which reads the tree this package produces.
package conf
