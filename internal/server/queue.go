package server

import (
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/upstream"
)

// nextQueued picks the next peer; with the upstream's `queue`, the first
// pick waits for a peer that can take the request, and a full queue or a
// wait that timed out is logged.
func (x *exchange) nextQueued(a *upstream.Attempt) (*upstream.Peer, error) {
	p, waited, err := a.NextQueued()
	x.upstreamOut.queued += waited
	switch err {
	case upstream.ErrQueueFull:
		x.logRequest(errlog.Error, x.proxyPass().HostPort, "upstream queue is full while connecting to upstream")
	case upstream.ErrQueueTimeout:
		x.logRequest(errlog.Error, x.proxyPass().HostPort, "upstream queue timed out while connecting to upstream")
	}
	return p, err
}
