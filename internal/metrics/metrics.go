// Package metrics holds Carrier's Prometheus metrics and the registry that
// serves them at /metrics.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"carrier/internal/health"
	"carrier/internal/store"
)

// Metrics is one process's set of metrics, registered on Registry.
type Metrics struct {
	Registry        *prometheus.Registry
	EventsAccepted  *prometheus.CounterVec   // label duplicate: "true" or "false"
	Deliveries      *prometheus.CounterVec   // label outcome: delivered, retrying, failed
	AttemptDuration *prometheus.HistogramVec // label outcome
	IngestBatch     prometheus.Histogram
	// Tasks counts async tasks reaching a final status (label status) and how
	// solved ones arrived (label via: callback or poll).
	Tasks *prometheus.CounterVec
	// UpstreamRequests counts requests to the upstream provider by action and result.
	UpstreamRequests *prometheus.CounterVec
	// DeadLetters counts callbacks kept as dead letters, by reason.
	DeadLetters *prometheus.CounterVec
	// SpoolPending is the number of spooled writes waiting for the store.
	SpoolPending prometheus.Gauge
	// HealthSignals counts the delivery health signals recording attempts
	// raised, by signal (health.Kind): disable, degraded, recovered,
	// retries_exhausted.
	HealthSignals *prometheus.CounterVec
}

// Counter is what the scrape-time collectors read from the store.
type Counter interface {
	CountBacklog(ctx context.Context) (store.Counts, error)
	CountDeadLetters(ctx context.Context) (store.Counts, error)
}

// New creates the metrics and registers them, with collectors that read the
// delivery queue depth and the dead letters by state from s at scrape time.
// The queue depth counts only unfinished deliveries (an index-bounded query):
// delivered and failed ones are history, counted as they happen by
// carrier_deliveries_total, so a scrape costs the same with a day or a month
// of retention.
func New(s Counter) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		EventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_events_accepted_total", Help: "Events accepted (committed) by the publish path.",
		}, []string{"duplicate"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_deliveries_total", Help: "Delivery attempts by outcome: delivered, retrying (failed, will retry) or failed (terminal).",
		}, []string{"outcome"}),
		AttemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "carrier_attempt_duration_seconds", Help: "Duration of delivery attempts.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"outcome"}),
		IngestBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "carrier_ingest_batch_size", Help: "Events committed per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		Tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_tasks_total", Help: "Async tasks that reached a final status, by status and (for solved) how the result arrived.",
		}, []string{"status", "via"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_upstream_requests_total", Help: "Requests to the upstream provider by action (submit, get, balance, report) and result.",
		}, []string{"action", "result"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_dead_letters_total", Help: "Callbacks kept as dead letters, by reason.",
		}, []string{"reason"}),
		SpoolPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carrier_spool_pending", Help: "Writes spooled locally while the store was unavailable, not yet replayed.",
		}),
		HealthSignals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_health_signals_total", Help: "Delivery health signals raised as attempts were recorded: disable (an endpoint deactivated), degraded (half its failure budget used), recovered (its first success after that), retries_exhausted (a delivery failed for good).",
		}, []string{"signal"}),
	}
	// Every signal is exported from the start, at 0, so that a rate over it
	// has a series before the first one is raised.
	for _, k := range health.Kinds {
		m.HealthSignals.WithLabelValues(string(k))
	}
	m.Registry.MustRegister(m.EventsAccepted, m.Deliveries, m.AttemptDuration, m.IngestBatch, m.Tasks, m.UpstreamRequests, m.DeadLetters, m.SpoolPending, m.HealthSignals,
		&countsCollector{desc: prometheus.NewDesc("carrier_dead_letters", "Dead letters by status (pending, redriven).", []string{"status"}, nil),
			states: []string{store.DeadLetterPending, store.DeadLetterRedriven}, count: s.CountDeadLetters},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&countsCollector{desc: prometheus.NewDesc("carrier_deliveries_queue_depth", "Unfinished deliveries by state (pending, retrying).", []string{"state"}, nil),
			states: []string{store.StatePending, store.StateRetrying}, count: s.CountBacklog})
	return m
}

// countsCollector reads a gauge per state from the store at scrape time.
type countsCollector struct {
	desc   *prometheus.Desc
	states []string
	count  func(context.Context) (store.Counts, error)
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, state := range c.states {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[state]), state)
	}
}
