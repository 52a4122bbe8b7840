package metrics

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"carrier/internal/alert"
	"carrier/internal/store"
)

// Alerts are the alert evaluator's metrics: every rule's reading and state
// per item, and the provider's balance as probed.
type Alerts struct {
	RuleValue     *prometheus.GaugeVec // labels project, rule, item
	RuleState     *prometheus.GaugeVec // labels project, rule, item
	Balance       prometheus.Gauge
	ProbeFailures prometheus.Gauge
}

// alertStateValue numbers the alert statuses for the state gauge.
var alertStateValue = map[string]float64{
	alert.StatusNormal: 0, alert.StatusPending: 1, alert.StatusFiring: 2, alert.StatusRecovering: 3,
}

// NewAlerts creates the alert metrics and registers them with m.
func (m *Metrics) NewAlerts() *Alerts {
	a := &Alerts{
		RuleValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "carrier_alert_rule_value", Help: "The last value an alert rule measured, per project, rule name and item (NaN: no data).",
		}, []string{"project", "rule", "item"}),
		RuleState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "carrier_alert_rule_state", Help: "An alert's state per project, rule name and item: 0 normal, 1 pending, 2 firing, 3 recovering.",
		}, []string{"project", "rule", "item"}),
		Balance: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carrier_provider_balance", Help: "The provider's balance at the last good probe.",
		}),
		ProbeFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carrier_provider_balance_probe_failures", Help: "Balance probes that failed in a row (0 after a good one).",
		}),
	}
	m.Registry.MustRegister(a.RuleValue, a.RuleState, a.Balance, a.ProbeFailures)
	return a
}

// Evaluated records one rule's reading and state for an item.
func (a *Alerts) Evaluated(r alert.Rule, item string, s alert.State, x alert.Sample) {
	v := x.Value
	if !x.OK {
		v = math.NaN()
	}
	a.RuleValue.WithLabelValues(r.ProjectID, r.Name, item).Set(v)
	a.RuleState.WithLabelValues(r.ProjectID, r.Name, item).Set(alertStateValue[s.Status])
}

// Probed records a balance probe.
func (a *Alerts) Probed(g store.Gauge) {
	if g.OK {
		a.Balance.Set(g.Value)
	}
	a.ProbeFailures.Set(float64(g.Failures))
}
