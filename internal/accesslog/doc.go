// Package accesslog renders nginx's access-log lines (log_format, with its
// three escape modes and the predefined "combined" format) from a request's
// variables and hands them to shared, buffered log files that a background
// goroutine writes, so the goroutine that ends a request or a tunnel never
// waits on the disk unless the disk falls far behind. It knows nothing of
// configuration files, directives or sockets: the config layer passes it
// strings and paths, the server passes it a filled vars.Ctx.
package accesslog
