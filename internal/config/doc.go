// Package config turns the directives of an nginx-syntax file into wsgate's
// typed, validated and immutable configuration snapshot. One table lists
// every directive wsgate accepts: its contexts, its argument count and the
// function that reads it. Errors name the file, line and directive, as
// nginx's do. The package does not open sockets or start goroutines; the
// server builds a runtime from a Config.
package config
