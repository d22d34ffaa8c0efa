package server

import (
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/status"
)

// stageCluster picks the cluster store of cfg for st: the running one when
// cluster_store did not change, a new one otherwise (nil without
// cluster_store). A store never fails to open: one that does not answer
// starts down, and the zones fall back to local limits.
func (s *Server) stageCluster(cfg *config.Config, st *staged) error {
	cur := s.cluster.Load()
	switch {
	case cfg.Cluster == nil:
		return nil
	case cur != nil && cur.Config() == cfg.Cluster.Config:
		st.store = cur
	default:
		store, err := cluster.Open(cfg.Cluster.Config, func(format string, args ...any) {
			s.log.Load().Printf(errlog.Warn, 0, format, args...)
		})
		if err != nil {
			return &config.PosError{File: cfg.Cluster.File, Line: cfg.Cluster.Line, Err: err}
		}
		store.SetLeases(s.limits.SharedConns)
		store.SetOpenCount(s.openTunnels)
		// A store put in place of another gets the open connections
		// before it takes its first acquisition, so that no limit is
		// exceeded while it learns them (commit writes back again what
		// changed meanwhile).
		if cur != nil {
			store.WriteBack()
		}
		st.store, st.newStore = store, true
	}
	st.lb.SetShared(clusterShared(st.store))
	return nil
}

// commitCluster makes st's store the running one and closes the one it
// replaces; s.mu is held.
func (s *Server) commitCluster(st *staged) {
	if st.newStore {
		st.store.WatchUpstreams(s.upstreamFromStore)
	}
	if old := s.cluster.Swap(st.store); old != nil && old != st.store {
		go old.Close()
		if st.store != nil {
			// The zones now release into the new store: give it the
			// connections opened or closed since staging wrote them.
			go st.store.WriteBack()
		}
	}
}

// rollbackCluster closes a store opened for a configuration that failed.
func (s *Server) rollbackCluster(st *staged) {
	if st.newStore {
		st.store.Close()
	}
}

// closeCluster removes this instance from the store when it stops.
func (s *Server) closeCluster() {
	if old := s.cluster.Swap(nil); old != nil {
		old.Close()
	}
}

// clusterShared converts a store to the limit package's view of it,
// keeping a nil store nil.
func clusterShared(st *cluster.Store) limit.Shared {
	if st == nil {
		return nil
	}
	return st
}

// clusterState feeds the metrics from whichever store is running.
func (s *Server) clusterState() status.ClusterState {
	get := s.cluster.Load
	return status.ClusterState{
		Configured: func() bool { return get() != nil },
		Up:         func() bool { st := get(); return st != nil && st.Up() },
		Instances: func() int {
			if st := get(); st != nil {
				return st.Instances()
			}
			return 0
		},
		Fallbacks: func() int64 {
			if st := get(); st != nil {
				return st.Fallbacks()
			}
			return 0
		},
		RoundTrips: func() int64 {
			if st := get(); st != nil {
				return st.RoundTrips()
			}
			return 0
		},
	}
}

// openTunnels is the count of open WebSockets this instance publishes:
// those a rebalancer already asked to close are leaving.
func (s *Server) openTunnels() int {
	return int(max(s.Stats.Tunnels.Load()-s.leaving.Load(), 0))
}
