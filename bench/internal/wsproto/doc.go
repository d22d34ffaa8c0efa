// Package wsproto is the benchmark harness's own minimal RFC 6455 codec: the
// opening handshake on both sides, frame headers, masking, and a lean client
// connection. It exists so the harness measures wsgate as a black box: it must
// not import or know anything about wsgate's internal packages, and it trades
// completeness (no extensions, no UTF-8 validation) for few allocations.
package wsproto
