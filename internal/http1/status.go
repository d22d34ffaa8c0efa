package http1

// statusText holds nginx's reason phrases (ngx_http_header_filter_module's
// status lines), which differ from the RFC's in places: "302 Moved
// Temporarily", "405 Not Allowed", "408 Request Time-out", "413 Request
// Entity Too Large", "414 Request-URI Too Large", "503 Service Temporarily
// Unavailable", "504 Gateway Time-out". nginx has no phrase for the codes
// missing here and writes the code followed by an empty reason.
var statusText = map[int]string{
	100: "Continue",
	101: "Switching Protocols",
	200: "OK",
	201: "Created",
	202: "Accepted",
	204: "No Content",
	206: "Partial Content",
	301: "Moved Permanently",
	302: "Moved Temporarily",
	303: "See Other",
	304: "Not Modified",
	307: "Temporary Redirect",
	308: "Permanent Redirect",
	400: "Bad Request",
	401: "Unauthorized",
	402: "Payment Required",
	403: "Forbidden",
	404: "Not Found",
	405: "Not Allowed",
	406: "Not Acceptable",
	408: "Request Time-out",
	409: "Conflict",
	410: "Gone",
	411: "Length Required",
	412: "Precondition Failed",
	413: "Request Entity Too Large",
	414: "Request-URI Too Large",
	415: "Unsupported Media Type",
	416: "Requested Range Not Satisfiable",
	421: "Misdirected Request",
	429: "Too Many Requests",
	500: "Internal Server Error",
	501: "Not Implemented",
	502: "Bad Gateway",
	503: "Service Temporarily Unavailable",
	504: "Gateway Time-out",
	505: "HTTP Version Not Supported",
	507: "Insufficient Storage",
}

// StatusText returns nginx's reason phrase for code, or "" when nginx has
// none (it then sends "HTTP/1.1 418 " with an empty reason). 100 and 101 are
// the RFC's phrases: nginx only relays those.
func StatusText(code int) string {
	return statusText[code]
}

// AppendStatusLine appends "HTTP/1.1 <code> <reason>\r\n". An empty reason
// is replaced by StatusText(status). status must be in 100..999.
func AppendStatusLine(dst []byte, status int, reason string) []byte {
	if reason == "" {
		reason = StatusText(status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, byte('0'+status/100%10), byte('0'+status/10%10), byte('0'+status%10), ' ')
	dst = append(dst, reason...)
	return append(dst, '\r', '\n')
}
