// Package errlog writes nginx-shaped error-log lines
// ("2026/11/28 17:40:54 [error] 123#0: *7 message, client: ...") to files
// or stderr, filtered by level, and reopens its files on demand so log
// rotation loses nothing. It knows nothing about configuration files.
package errlog
