package http1

import (
	"errors"
	"strconv"
)

// StatusError reports a message that wsgate must refuse. For a request it
// carries the status nginx would answer with; for an upstream response the
// status is always 502.
//
// Errors returned by this package may be shared between calls: treat them as
// read-only.
type StatusError struct {
	// Status is the code to put on the status line and in $status.
	Status int
	// Reason is the title of the error page (the text after the code in
	// nginx's page). It is StatusText(Status) except for a header line or
	// head that is too large, where nginx says
	// "Request Header Or Cookie Too Large" under status 400.
	Reason string
	// Detail is nginx's error-log wording, e.g. "client sent invalid header line".
	Detail string
}

func (e *StatusError) Error() string {
	return "http1: " + strconv.Itoa(e.Status) + " " + e.Detail
}

// ReasonHeaderTooLarge is the page title nginx uses (with status 400) when a
// header line or the whole head does not fit its buffers.
const ReasonHeaderTooLarge = "Request Header Or Cookie Too Large"

// ErrMalformedChunked is returned (possibly wrapped) by a chunked body reader
// on any framing error.
var ErrMalformedChunked = errors.New("http1: malformed chunked encoding")

func badRequest(detail string) *StatusError {
	return &StatusError{Status: 400, Reason: "Bad Request", Detail: detail}
}

func badGateway(detail string) *StatusError {
	return &StatusError{Status: 502, Reason: "Bad Gateway", Detail: detail}
}

// Shared request errors: allocated once, since a flood of bad requests
// should not cost garbage.
var (
	errInvalidMethod   = badRequest("client sent invalid method")
	errInvalidRequest  = badRequest("client sent invalid request")
	errInvalidVersion  = &StatusError{Status: 505, Reason: "HTTP Version Not Supported", Detail: "client sent unsupported HTTP version"}
	errInvalidHeader   = badRequest("client sent invalid header line")
	errDuplicateHeader = badRequest("client sent duplicate header line")
	errDuplicateHost   = badRequest("client sent duplicate host header")
	errInvalidHost     = badRequest("client sent invalid host header")
	errInvalidURIHost  = badRequest("client sent invalid host in request line")
	errNoHost          = badRequest(`client sent HTTP/1.1 request without "Host" header`)
	errInvalidCL       = badRequest(`client sent invalid "Content-Length" header`)
	errTE10            = badRequest(`client sent HTTP/1.0 request with "Transfer-Encoding" header`)
	errTEAndCL         = badRequest(`client sent "Content-Length" and "Transfer-Encoding" headers at the same time`)
	errUnknownTE       = &StatusError{Status: 501, Reason: "Not Implemented", Detail: `client sent unknown "Transfer-Encoding"`}
	errTrace           = &StatusError{Status: 405, Reason: "Not Allowed", Detail: "client sent TRACE method"}
	errURITooLong      = &StatusError{Status: 414, Reason: "Request-URI Too Large", Detail: "client sent too long URI"}
	errHeaderTooLarge  = &StatusError{Status: 400, Reason: ReasonHeaderTooLarge, Detail: "client sent too long header line"}
	errTooManyHeaders  = &StatusError{Status: 400, Reason: ReasonHeaderTooLarge, Detail: "client sent too many header lines"}
)

var (
	errRespStatusLine = badGateway("upstream sent invalid status line")
	errRespHeader     = badGateway("upstream sent invalid header")
	errRespDuplicate  = badGateway("upstream sent duplicate header line")
	errRespCL         = badGateway(`upstream sent invalid "Content-Length" header`)
	errRespTE         = badGateway(`upstream sent unknown "Transfer-Encoding"`)
	errRespTEAndCL    = badGateway(`upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time`)
	errRespTooBig     = badGateway("upstream sent too big header")
)
