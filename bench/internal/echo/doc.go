// Package echo is the benchmark's WebSocket echo backend: it accepts raw TCP,
// answers the opening handshake itself, and echoes every data frame back with
// one goroutine and two small reused buffers per connection, so the backend
// costs as little CPU as possible beside the proxy under test. A plain GET
// /health gets 200. It knows nothing of wsgate or of the proxies in front of it.
package echo
