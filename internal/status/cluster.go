package status

import "github.com/prometheus/client_golang/prometheus"

// ClusterState is what the metrics show of the cluster store; its funcs
// are called at each scrape and must be safe for concurrent use.
type ClusterState struct {
	// Configured reports whether a cluster_store is in use.
	Configured func() bool
	// Up reports whether the store answers; Instances is the number of
	// live instances it last reported; Fallbacks counts its outages.
	Up        func() bool
	Instances func() int
	Fallbacks func() int64
	// RoundTrips counts the calls to the store (a pipeline is one).
	RoundTrips func() int64
}

// WatchCluster adds the cluster store's gauges: wsgate_cluster_store_up
// (1 shared, 0 falling back to local zones, absent meaning no store is
// configured), wsgate_cluster_instances, wsgate_cluster_fallbacks_total
// and wsgate_cluster_round_trips_total.
// Call it once.
func (m *Metrics) WatchCluster(c ClusterState) {
	m.reg.MustRegister(clusterCollector{c})
}

type clusterCollector struct{ c ClusterState }

var (
	clusterUpDesc        = prometheus.NewDesc("wsgate_cluster_store_up", "1 while the cluster store answers and sync zones are shared; 0 while they fall back to local zones.", nil, nil)
	clusterInstancesDesc = prometheus.NewDesc("wsgate_cluster_instances", "Live wsgate instances the cluster store last reported.", nil, nil)
	clusterFallbacksDesc = prometheus.NewDesc("wsgate_cluster_fallbacks_total", "Times the cluster store failed and sync zones fell back to local zones.", nil, nil)
	clusterTripsDesc     = prometheus.NewDesc("wsgate_cluster_round_trips_total", "Round trips to the cluster store (a pipeline is one), heartbeats included.", nil, nil)
)

func (cc clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterUpDesc
	ch <- clusterInstancesDesc
	ch <- clusterFallbacksDesc
	ch <- clusterTripsDesc
}

func (cc clusterCollector) Collect(ch chan<- prometheus.Metric) {
	if !cc.c.Configured() {
		return
	}
	up := 0.0
	if cc.c.Up() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(clusterUpDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(clusterInstancesDesc, prometheus.GaugeValue, float64(cc.c.Instances()))
	ch <- prometheus.MustNewConstMetric(clusterFallbacksDesc, prometheus.CounterValue, float64(cc.c.Fallbacks()))
	ch <- prometheus.MustNewConstMetric(clusterTripsDesc, prometheus.CounterValue, float64(cc.c.RoundTrips()))
}
