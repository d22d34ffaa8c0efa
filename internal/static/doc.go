// Package static serves files as nginx's static, index and autoindex
// modules and the file parts of its core module do.
//
// Contract:
//   - Map turns a normalised URI into a file path with the location's root
//     or alias ($request_filename, $document_root, $realpath_root).
//   - Serve answers a URI that does not end in '/': a regular file (GET and
//     HEAD; POST gets 405 once the file is found, other methods 405 at
//     once), a 301 to the directory's URI with '/' appended, or an error
//     status. Content-Type comes from the URI's extension through the
//     location's types, else default_type. ETag, Last-Modified,
//     conditional requests (If-Match, If-Unmodified-Since, If-None-Match,
//     If-Modified-Since) and byte ranges behave as nginx's filters.
//   - Dir answers a URI that ends in '/': it names the index file to serve
//     (the caller serves that URI), or lists the directory (autoindex), or
//     refuses with 403. A URI ending in '/' never serves a file.
//   - disable_symlinks opens every path component with O_NOFOLLOW, as
//     nginx's openat(2) walk does; a symlink it refuses is 403.
//
// An Answer with an error status carries no body: the caller sends its
// error page with the Answer's headers (Location, Content-Range). Log lines
// come back without the client/request context, which the caller adds.
// The caller must Close every Answer it gets.
package static
