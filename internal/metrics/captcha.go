package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"carrier/internal/captcha"
)

// Captcha are the verification metrics: decisions by site, vendor,
// decision and reason, latency per vendor, and each site's circuit.
type Captcha struct {
	Decisions *prometheus.CounterVec   // site, vendor, decision, reason
	Latency   *prometheus.HistogramVec // vendor
	Circuit   *prometheus.GaugeVec     // site, vendor
}

var circuitValue = map[string]float64{captcha.CircuitClosed: 0, captcha.CircuitHalfOpen: 1, captcha.CircuitOpen: 2}

// NewCaptcha creates the verification metrics and registers them with m.
func (m *Metrics) NewCaptcha() *Captcha {
	c := &Captcha{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carrier_captcha_decisions_total", Help: "CAPTCHA verifications by site, vendor, decision (allow, deny, degraded_allow, challenge) and reason.",
		}, []string{"site", "vendor", "decision", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "carrier_captcha_verify_seconds", Help: "Time to decide a verification, by vendor (cached answers included).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
		}, []string{"vendor"}),
		Circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "carrier_captcha_circuit_state", Help: "Each site's vendor circuit: 0 closed, 1 half open, 2 open.",
		}, []string{"site", "vendor"}),
	}
	m.Registry.MustRegister(c.Decisions, c.Latency, c.Circuit)
	return c
}

// Decided records one verification.
func (c *Captcha) Decided(site captcha.Site, v captcha.Verdict, _ int) {
	c.Decisions.WithLabelValues(site.Name, site.Vendor, v.Decision, string(v.Reason)).Inc()
	c.Latency.WithLabelValues(site.Vendor).Observe(v.LatencyMS / 1000)
}

// CircuitChanged records a site's circuit state.
func (c *Captcha) CircuitChanged(site captcha.Site, state string) {
	c.Circuit.WithLabelValues(site.Name, site.Vendor).Set(circuitValue[state])
}
