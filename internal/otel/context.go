// Package otel implements what nginx's ngx_otel_module does for wsgate:
// W3C trace contexts (traceparent and tracestate) read from requests and
// generated for them, and spans exported over OTLP/gRPC in batches.
package otel

import (
	"crypto/rand"
	"encoding/hex"
)

// TraceContext is one span's W3C trace context.
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Sampled bool
	State   string // tracestate, passed on as received
}

// Valid reports whether tc names a trace and a span, as an extracted
// traceparent must.
func (tc TraceContext) Valid() bool {
	return tc.TraceID != [16]byte{} && tc.SpanID != [8]byte{}
}

// Parse reads a traceparent header (version 00, or a later version read
// as 00 would) and the tracestate that goes with it. A malformed
// traceparent gives the zero context: the request starts a new trace.
func Parse(traceparent, tracestate string) TraceContext {
	var tc TraceContext
	p := traceparent
	if len(p) < 55 || (len(p) > 55 && (p[:2] == "00" || p[55] != '-')) {
		return TraceContext{}
	}
	if p[2] != '-' || p[35] != '-' || p[52] != '-' || p[:2] == "ff" || !lowerHex(p[:2]) {
		return TraceContext{}
	}
	if !lowerHex(p[3:35]) || !lowerHex(p[36:52]) || !lowerHex(p[53:55]) {
		return TraceContext{}
	}
	hex.Decode(tc.TraceID[:], []byte(p[3:35]))
	hex.Decode(tc.SpanID[:], []byte(p[36:52]))
	var flags [1]byte
	hex.Decode(flags[:], []byte(p[53:55]))
	if !tc.Valid() {
		return TraceContext{}
	}
	tc.Sampled = flags[0]&1 == 1
	tc.State = tracestate
	return tc
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Generate returns a new span's context in parent's trace, or in a new
// trace when parent is not valid; it is not sampled until the caller
// says so, and it carries parent's tracestate.
func Generate(parent TraceContext) TraceContext {
	tc := TraceContext{TraceID: parent.TraceID, State: parent.State}
	if !parent.Valid() {
		rand.Read(tc.TraceID[:])
	}
	for tc.SpanID == [8]byte{} {
		rand.Read(tc.SpanID[:])
	}
	return tc
}

// Traceparent formats tc as a version 00 traceparent header.
func (tc TraceContext) Traceparent() string {
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tc.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, tc.SpanID[:])
	if tc.Sampled {
		return string(append(b, "-01"...))
	}
	return string(append(b, "-00"...))
}

// TraceIDString and SpanIDString are the identifiers in lowercase hex,
// as $otel_trace_id and $otel_span_id show them; a zero span (no parent)
// reads as empty.
func (tc TraceContext) TraceIDString() string {
	if tc.TraceID == [16]byte{} {
		return ""
	}
	return hex.EncodeToString(tc.TraceID[:])
}

// SpanIDString: see TraceIDString.
func (tc TraceContext) SpanIDString() string {
	if tc.SpanID == [8]byte{} {
		return ""
	}
	return hex.EncodeToString(tc.SpanID[:])
}
