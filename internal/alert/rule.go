// Package alert watches the pipeline and notifies people: rules over what
// Carrier measures (task outcomes, backlogs, the provider's balance, its own
// events), a persisted state machine per alert, and notifications that are
// ordinary events (alert.firing, alert.resolved, alert.flapping,
// report.daily) routed by subscriptions to Discord, Slack, email, webhooks,
// queues or the log.
//
// The evaluator runs on the leader only. Every transition of an alert and
// the event it causes are written in one transaction (the outbox), so a crash
// neither loses nor repeats a notification, and a restart notifies only what
// changed while Carrier was down.
package alert

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Kind is how a rule turns measurements into a value.
type Kind string

// The rule kinds.
const (
	// KindThreshold compares a gauge (balance, backlog depth) with the tiers.
	KindThreshold Kind = "threshold"
	// KindRatio is bad/total over Window, with no data below MinCount.
	KindRatio Kind = "ratio"
	// KindGrowth is the increase of a count over Window.
	KindGrowth Kind = "growth"
	// KindDrainTime is a backlog divided by its observed drain rate over Window, in seconds.
	KindDrainTime Kind = "drain_time"
	// KindQuantile is the Quantile of a latency over Window, in seconds, with no data below MinCount.
	KindQuantile Kind = "quantile"
	// KindEvent fires on a Carrier event and resolves on ResolveEvent for the same subject.
	KindEvent Kind = "event"
	// KindSchedule sends a report at a local time of day.
	KindSchedule Kind = "schedule"
)

// Severities, from least to most severe.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

var severityRank = map[string]int{SeverityInfo: 1, SeverityWarning: 2, SeverityCritical: 3}

// Comparison operators of a rule: in which direction a value is bad.
const (
	Above = "above" // fires when the value is above Fire
	Below = "below" // fires when the value is below Fire
)

// What to do when a rule has no data (no samples, fewer than MinCount).
const (
	NoDataKeep  = "keep"  // keep the alert's state (the default)
	NoDataOK    = "ok"    // treat as cleared
	NoDataAlert = "alert" // fire at the least severe tier
)

// Defaults and limits of a rule.
const (
	DefaultRepeatInterval = 4 * time.Hour
	MinRepeatInterval     = 5 * time.Minute // the source document's cooldown
	DefaultFlapWindow     = time.Hour
	DefaultFlapLimit      = 4 // firing starts and resolutions within FlapWindow
	MaxTiers              = 5
	MaxNameLength         = 100
)

// Duration is a time.Duration written in JSON as Go duration text ("5m", "1h30m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("a duration such as \"5m\"")
	}
	*d = Duration(v)
	return nil
}

// Tier is one severity level of a rule. With Op above, the alert fires at
// this severity when the value is above Fire and clears when it is at or
// below Clear; with Op below, the reverse. Clear defaults to Fire; a Clear
// apart from Fire is the hysteresis that keeps a value hovering at the
// threshold from flapping.
type Tier struct {
	Severity string   `json:"severity"`
	Fire     float64  `json:"fire"`
	Clear    *float64 `json:"clear,omitempty"`
}

func (t Tier) clear() float64 {
	if t.Clear != nil {
		return *t.Clear
	}
	return t.Fire
}

// Schedule is when a KindSchedule rule reports: At ("HH:MM") local time in
// TimeZone (an IANA name), once per local day.
type Schedule struct {
	At       string `json:"at"`
	TimeZone string `json:"time_zone"`
}

// Rule is an alert rule of a project.
type Rule struct {
	ID        string `json:"id"`
	ProjectID string `json:"-"`
	Name      string `json:"name"`
	Kind      Kind   `json:"kind"`
	// Metric is what the rule measures; see Metrics.
	Metric string `json:"metric"`
	// Op says in which direction values are bad (default per metric).
	Op string `json:"op,omitempty"`
	// Tiers are the severities, most severe first, evaluated top down: a
	// warning that becomes critical is an escalation of the same alert.
	Tiers    []Tier   `json:"tiers,omitempty"`
	Window   Duration `json:"window,omitempty"`
	MinCount int      `json:"min_count,omitempty"`
	Quantile float64  `json:"quantile,omitempty"`
	// Items limits a scoped rule to these items (subscription or queue
	// ids); empty means every item.
	Items []string `json:"items,omitempty"`
	// PendingFor is how long the value must stay bad before the alert
	// fires; RecoverFor how long it must stay cleared before it resolves.
	PendingFor Duration `json:"pending_for,omitempty"`
	RecoverFor Duration `json:"recover_for,omitempty"`
	// RepeatInterval is how often an unchanged firing alert is sent
	// again; escalations and resolutions are always sent at once.
	RepeatInterval Duration `json:"repeat_interval,omitempty"`
	NoData         string   `json:"no_data,omitempty"`
	// Event and ResolveEvent are the event types of a KindEvent rule.
	Event        string    `json:"event,omitempty"`
	ResolveEvent string    `json:"resolve_event,omitempty"`
	Schedule     *Schedule `json:"schedule,omitempty"`
	Enabled      bool      `json:"enabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Metric describes one thing Carrier measures.
type Metric struct {
	Name  string
	Kinds []Kind
	Scope string // "" (the project), "provider", "subscription" or "queue"
	Op    string // the default direction of a bad value
	Unit  string // "$", "%", "s" or "" (a count)
}

// Metrics are the measurements rules can use.
var Metrics = map[string]Metric{
	"provider.balance":        {Name: "provider.balance", Kinds: []Kind{KindThreshold}, Scope: "provider", Op: Below, Unit: "$"},
	"provider.probe_failures": {Name: "provider.probe_failures", Kinds: []Kind{KindThreshold}, Scope: "provider", Op: Above},
	"task.error_rate":         {Name: "task.error_rate", Kinds: []Kind{KindRatio}, Op: Above, Unit: "%"},
	"task.latency":            {Name: "task.latency", Kinds: []Kind{KindQuantile}, Op: Above, Unit: "s"},
	"subscription.error_rate": {Name: "subscription.error_rate", Kinds: []Kind{KindRatio}, Scope: "subscription", Op: Above, Unit: "%"},
	"subscription.backlog":    {Name: "subscription.backlog", Kinds: []Kind{KindThreshold}, Scope: "subscription", Op: Above},
	"subscription.oldest_age": {Name: "subscription.oldest_age", Kinds: []Kind{KindThreshold}, Scope: "subscription", Op: Above, Unit: "s"},
	"subscription.drain_time": {Name: "subscription.drain_time", Kinds: []Kind{KindDrainTime}, Scope: "subscription", Op: Above, Unit: "s"},
	"queue.backlog":           {Name: "queue.backlog", Kinds: []Kind{KindThreshold}, Scope: "queue", Op: Above},
	"queue.oldest_age":        {Name: "queue.oldest_age", Kinds: []Kind{KindThreshold}, Scope: "queue", Op: Above, Unit: "s"},
	"dead_letters.count":      {Name: "dead_letters.count", Kinds: []Kind{KindGrowth}, Op: Above},
	"event":                   {Name: "event", Kinds: []Kind{KindEvent}, Op: Above},
	"task.daily_summary":      {Name: "task.daily_summary", Kinds: []Kind{KindSchedule}, Op: Above},
}

// FieldError is a rule that breaks a rule of its own: Field names the JSON
// field at fault, Message the rule it breaks.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Normalize fills a rule's defaults and checks it, returning a *FieldError
// that names the first field at fault.
func (r *Rule) Normalize() error {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" || len(r.Name) > MaxNameLength {
		return fieldErr("name", "is required, at most %d characters", MaxNameLength)
	}
	if r.Kind == KindEvent && r.Metric == "" {
		r.Metric = "event"
	}
	if r.Kind == KindSchedule && r.Metric == "" {
		r.Metric = "task.daily_summary"
	}
	m, ok := Metrics[r.Metric]
	if !ok {
		return fieldErr("metric", "must be one of %s", strings.Join(metricNames(), ", "))
	}
	if r.Kind == "" && len(m.Kinds) == 1 {
		r.Kind = m.Kinds[0]
	}
	kindOK := false
	for _, k := range m.Kinds {
		kindOK = kindOK || k == r.Kind
	}
	if !kindOK {
		return fieldErr("kind", "metric %s is measured by kind %s", r.Metric, m.Kinds[0])
	}
	if r.Op == "" {
		r.Op = m.Op
	}
	if r.Op != Above && r.Op != Below {
		return fieldErr("op", "must be %q or %q", Above, Below)
	}
	if r.NoData == "" {
		r.NoData = NoDataKeep
	}
	if r.NoData != NoDataKeep && r.NoData != NoDataOK && r.NoData != NoDataAlert {
		return fieldErr("no_data", "must be %q, %q or %q", NoDataKeep, NoDataOK, NoDataAlert)
	}
	if r.RepeatInterval == 0 {
		r.RepeatInterval = Duration(DefaultRepeatInterval)
	}
	if r.RepeatInterval.D() < MinRepeatInterval {
		return fieldErr("repeat_interval", "must be at least %s", MinRepeatInterval)
	}
	if r.PendingFor.D() > 24*time.Hour || r.RecoverFor.D() > 24*time.Hour {
		return fieldErr("pending_for", "pending_for and recover_for must be at most 24h")
	}
	if len(r.Items) > 100 {
		return fieldErr("items", "at most 100 items")
	}
	if len(r.Items) > 0 && m.Scope != "subscription" && m.Scope != "queue" {
		return fieldErr("items", "only rules on subscription or queue metrics are scoped to items")
	}
	switch r.Kind {
	case KindRatio, KindGrowth, KindDrainTime, KindQuantile:
		if r.Window.D() < time.Minute || r.Window.D() > 7*24*time.Hour {
			return fieldErr("window", "must be between 1m and 168h")
		}
	}
	if r.MinCount < 0 || r.MinCount > 1_000_000 {
		return fieldErr("min_count", "must be between 0 and 1000000")
	}
	if r.Kind == KindQuantile && (r.Quantile <= 0 || r.Quantile >= 1) {
		return fieldErr("quantile", "must be between 0 and 1, such as 0.95")
	}
	if r.Kind == KindEvent {
		if !validEventType(r.Event) {
			return fieldErr("event", "must be an event type such as webhook.disabled")
		}
		if r.ResolveEvent != "" && !validEventType(r.ResolveEvent) {
			return fieldErr("resolve_event", "must be an event type such as endpoint.recovered")
		}
		if len(r.Tiers) == 0 {
			r.Tiers = []Tier{{Severity: SeverityWarning, Fire: 0.5}}
		}
		if len(r.Tiers) != 1 {
			return fieldErr("tiers", "an event rule has one tier (its severity)")
		}
		r.Op, r.Tiers[0].Fire, r.Tiers[0].Clear = Above, 0.5, nil
	}
	if r.Kind == KindSchedule {
		if r.Schedule == nil {
			return fieldErr("schedule", "is required for a schedule rule")
		}
		if _, _, err := parseClock(r.Schedule.At); err != nil {
			return fieldErr("schedule.at", "must be a local time HH:MM")
		}
		if _, err := time.LoadLocation(r.Schedule.TimeZone); err != nil || r.Schedule.TimeZone == "" {
			return fieldErr("schedule.time_zone", "must be an IANA time zone such as Europe/Istanbul")
		}
		r.Tiers = nil
		return nil
	}
	return r.checkTiers()
}

func (r *Rule) checkTiers() error {
	if len(r.Tiers) == 0 || len(r.Tiers) > MaxTiers {
		return fieldErr("tiers", "between 1 and %d tiers, most severe first", MaxTiers)
	}
	seen := map[string]bool{}
	for i, t := range r.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		if severityRank[t.Severity] == 0 {
			return fieldErr(f+".severity", "must be info, warning or critical")
		}
		if seen[t.Severity] {
			return fieldErr(f+".severity", "appears twice")
		}
		seen[t.Severity] = true
		if math.IsNaN(t.Fire) || math.IsInf(t.Fire, 0) {
			return fieldErr(f+".fire", "must be a number")
		}
		c := t.clear()
		if math.IsNaN(c) || math.IsInf(c, 0) || (r.Op == Above && c > t.Fire) || (r.Op == Below && c < t.Fire) {
			return fieldErr(f+".clear", "must be on the good side of fire (op %s): at most fire when above, at least fire when below", r.Op)
		}
		if i > 0 {
			prev := r.Tiers[i-1]
			if severityRank[prev.Severity] <= severityRank[t.Severity] {
				return fieldErr(f+".severity", "tiers go from most to least severe")
			}
			if (r.Op == Above && t.Fire >= prev.Fire) || (r.Op == Below && t.Fire <= prev.Fire) {
				return fieldErr(f+".fire", "a less severe tier fires on a less bad value than the tier before it")
			}
		}
	}
	return nil
}

func validEventType(s string) bool {
	if s == "" || len(s) > 100 || !strings.Contains(s, ".") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func metricNames() []string {
	out := make([]string, 0, len(Metrics))
	for n := range Metrics {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// parseClock parses "HH:MM".
func parseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, err
	}
	return t.Hour(), t.Minute(), nil
}

// Scope returns the scope of the rule's metric.
func (r Rule) Scope() string { return Metrics[r.Metric].Scope }

// Unit returns the unit of the rule's metric.
func (r Rule) Unit() string { return Metrics[r.Metric].Unit }
