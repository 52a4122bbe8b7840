package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster are the metrics of the cluster layer: whether this node leads,
// and the rounds of leader-only maintenance it ran, so an operator (and a
// test) sees that maintenance runs on one node at a time.
type Cluster struct {
	Leader            prometheus.Gauge
	MaintenanceRounds *prometheus.CounterVec // label service
}

// NewCluster creates the cluster metrics and registers them with m.
func (m *Metrics) NewCluster() *Cluster {
	c := &Cluster{
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carrier_leader", Help: "1 while this node is the cluster's leader (runs maintenance), else 0.",
		}),
		MaintenanceRounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_maintenance_rounds_total", Help: "Rounds of leader-only maintenance this node ran, by service (pruner, queue_pruner, rescuer, poller, expirer).",
		}, []string{"service"}),
	}
	m.Registry.MustRegister(c.Leader, c.MaintenanceRounds)
	return c
}
