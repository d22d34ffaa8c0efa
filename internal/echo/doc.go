// Package echo is the WebSocket echo backend that the embedded default
// configuration proxies to, so that `wsgate` with no configuration shows a
// working round trip: it serves a small page at "/" whose script opens
// ws://host/ws, and echoes every message it receives. It is a demo, not a
// production backend, and knows nothing about the proxy.
package echo
