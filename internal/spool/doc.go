// Package spool holds a proxied response body between the backend that
// writes it and the client that reads it, as nginx's proxy_buffering does:
// the body goes into a bounded set of memory buffers first (proxy_buffers),
// then, while they are all full, into a temporary file (up to
// proxy_max_temp_file_size, in writes of at most proxy_temp_file_write_size
// bytes), and the writer waits only when both are full. The reader gets the
// bytes in order, from memory or from the file, at its own pace; the writer
// can therefore finish, and its backend connection be released, long before
// the reader does.
//
// Its contract:
//
//   - One goroutine calls ReadFrom (the writer); one other calls Read (the
//     reader). ReadFrom returns when its source ends or fails, or after
//     Abort.
//   - Read returns the bytes in the order they were written, then io.EOF
//     once the source ended cleanly, or the source's error.
//   - Abort tells the writer that nobody reads any more: a waiting or next
//     step of ReadFrom returns ErrAborted.
//   - Close, once ReadFrom has returned, gives the buffers back and closes
//     the temporary file.
//
// The temporary file is made by the caller's Create function, at the first
// overflow only; if that fails, the spool keeps to memory (see OpenError); CreateTemp makes one with nginx's names and levels. The
// package never removes files: the caller unlinks or renames them.
package spool
