package server

import (
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
)

// logFor is the error log of lc for this exchange: every level of it for
// a client that debug_connection lists.
func (x *exchange) logFor(lc *config.LocConf) *errlog.Logger {
	l := x.rt.logFor(lc)
	if x.conn.debug {
		return l.Debugging()
	}
	return l
}
