// Package wsframe encodes and decodes RFC 6455 WebSocket frame headers,
// masks payloads and computes handshake keys. It is a codec only: it never
// reads from or writes to a connection, never buffers a payload and knows
// nothing of tunnels, proxies or extensions (RSV bits are reported, not
// judged, because extensions are negotiated end to end).
package wsframe
