package server

import (
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/upstream"
)

// least_time's measurements: the time to the response head (a WebSocket
// handshake's 101 included), or with last_byte to the end of the relayed
// answer; a tunnel counts its handshake either way.

func (x *exchange) timedHead(peer *upstream.Peer, d time.Duration, status int) {
	if cu := x.proxyPass().Upstream; cu.Method == "least_time" && (!cu.LeastTimeLastByte || status == 101) {
		peer.Observe(d)
	}
}

// timedEnd takes the upstream cu the answer came through: relaying it
// may have moved the request to another location (X-Accel-Redirect).
func timedEnd(cu *config.Upstream, peer *upstream.Peer, start time.Time) {
	if cu.Method == "least_time" && cu.LeastTimeLastByte {
		peer.Observe(time.Since(start))
	}
}
