package store

import (
	"context"
	"encoding/json"
	"time"
)

// AlertRule is an alert rule of a project. Spec is the rule as the alert
// package defines it, in JSON, so the store needs no change when a rule
// field is added.
type AlertRule struct {
	ID        string
	ProjectID string
	Name      string
	Spec      json.RawMessage
	Enabled   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Alert is one episode of a rule over one item: from the first bad reading
// to its resolution. State is the alert package's persisted state machine.
type Alert struct {
	ID        string
	ProjectID string
	RuleID    string
	Item      string
	Status    string
	Severity  string
	State     json.RawMessage
	StartedAt time.Time
	UpdatedAt time.Time
	EndedAt   *time.Time
}

// AlertTransition is one change of an alert's status or severity, with the
// event it caused (EventID "" when it notified nobody).
type AlertTransition struct {
	ID        string
	AlertID   string
	ProjectID string
	At        time.Time
	From      string
	To        string
	Severity  string
	Value     *float64
	EventType string
	EventID   string
	// Note says why a notification was held back ("silenced by …",
	// "inhibited: …"); EventType then names the event not sent.
	Note string
}

// AlertChange is what one evaluation round writes for one alert: its new
// row (ended when EndedAt is set), its transitions and the events they
// cause. Delete drops a current alert that never notified (a pending alert
// that went back to normal). A change with an empty Alert.ID only writes its
// events (a scheduled report).
type AlertChange struct {
	Alert       Alert
	Delete      bool
	Transitions []AlertTransition
	Events      []OutboxEvent
}

// AlertCursor is where an event rule has read the events table up to.
type AlertCursor struct {
	RuleID  string
	At      time.Time
	EventID string
}

// AlertFilter selects alerts of a project, newest first.
type AlertFilter struct {
	ProjectID string
	RuleID    string
	Status    string // a status, or "" for all
	Current   bool   // only alerts not yet ended
	Limit     int
}

// Gauge is the last reading of a probed value, such as the provider's
// balance. OK is false when the probe failed; Failures counts failed probes
// in a row, and Value keeps the last good reading.
type Gauge struct {
	ProjectID  string
	Name       string
	Item       string
	Value      float64
	OK         bool
	Failures   int
	Error      string
	ObservedAt time.Time
}

// Sample is one bucketed reading of a cumulative counter: the first one
// taken in its bucket, at TakenAt.
type Sample struct {
	ProjectID string
	Series    string
	Item      string
	Bucket    time.Time
	Value     float64
	TakenAt   time.Time
}

// TaskOutcomeCount counts the tasks of a project decided in a window with
// one status and error code, and the sum of their latencies (created →
// completed).
type TaskOutcomeCount struct {
	ProjectID string
	Status    string
	ErrorCode string
	Count     int
	Latency   time.Duration
	Cost      float64 // sum of the prices the provider reported
}

// SubscriptionBacklog is a subscription's unfinished deliveries and its
// cumulative count of successful ones.
type SubscriptionBacklog struct {
	ProjectID      string
	SubscriptionID string
	Name           string
	Depth          int
	OldestAt       time.Time // zero when Depth is 0
	Delivered      int64     // successful attempts ever
	Failed         int64     // failed attempts ever
	Active         bool
}

// QueueBacklog is a pull queue's messages not yet deleted and the send
// time of its oldest.
type QueueBacklog struct {
	ProjectID string
	QueueID   string
	Name      string
	Messages  int
	OldestAt  time.Time // zero when Messages is 0
}

// Silence holds back the notifications of matching alerts of a project
// from StartsAt until EndsAt. Matchers is the alert package's matcher list
// in JSON.
type Silence struct {
	ID        string
	ProjectID string
	Matchers  json.RawMessage
	Comment   string
	CreatedBy string
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedAt time.Time
}

// AlertStore keeps alert rules, alerts and what the evaluator measures.
type AlertStore interface {
	// CreateAlertRule inserts a rule (ErrConflict when the project has one of that name).
	CreateAlertRule(ctx context.Context, r AlertRule) error
	// UpdateAlertRule writes a rule's name, spec and enabled flag.
	UpdateAlertRule(ctx context.Context, r AlertRule) error
	GetAlertRule(ctx context.Context, projectID, id string) (AlertRule, error)
	ListAlertRules(ctx context.Context, projectID string) ([]AlertRule, error)
	// DeleteAlertRule deletes a rule and ends its current alerts (without
	// notifying: the rule is gone, not the problem solved).
	DeleteAlertRule(ctx context.Context, projectID, id string, now time.Time) error
	// EnabledAlertRules returns the enabled rules of every project.
	EnabledAlertRules(ctx context.Context) ([]AlertRule, error)

	// CurrentAlerts returns every alert not yet ended.
	CurrentAlerts(ctx context.Context) ([]Alert, error)
	// ApplyAlertChanges writes one round's changes, cursors and events in
	// one transaction: an alert's transition and its notification commit
	// together or not at all.
	ApplyAlertChanges(ctx context.Context, changes []AlertChange, cursors []AlertCursor) error
	ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	// GetAlert returns an alert of a project and its transitions, oldest first.
	GetAlert(ctx context.Context, projectID, id string) (Alert, []AlertTransition, error)
	AlertCursors(ctx context.Context) ([]AlertCursor, error)

	// RecordProbe stores a probe's reading: a good one replaces the value
	// and resets the failures; a failed one (ok false) keeps the last value
	// and counts one more failure.
	RecordProbe(ctx context.Context, g Gauge) (Gauge, error)
	ListGauges(ctx context.Context, name string) ([]Gauge, error)
	// AddSamples writes bucketed readings (a reading already in its bucket is kept).
	AddSamples(ctx context.Context, samples []Sample) error
	// SamplesSince returns the readings of a series from since on, oldest first.
	SamplesSince(ctx context.Context, series string, since time.Time) ([]Sample, error)
	// PruneSamples deletes readings older than before.
	PruneSamples(ctx context.Context, before time.Time) error

	// TaskOutcomes counts the tasks of every project completed from since
	// on and before until (zero: no end).
	TaskOutcomes(ctx context.Context, since, until time.Time) ([]TaskOutcomeCount, error)
	// TaskLatencies returns the latencies of up to limit tasks of a project
	// solved from since on.
	TaskLatencies(ctx context.Context, projectID string, since time.Time, limit int) ([]time.Duration, error)
	// CreateSilence stores a silence.
	CreateSilence(ctx context.Context, s Silence) error
	// ListSilences returns a project's silences, newest first; with
	// activeAt set, only those active then or later.
	ListSilences(ctx context.Context, projectID string, activeAt time.Time) ([]Silence, error)
	GetSilence(ctx context.Context, projectID, id string) (Silence, error)
	// ExpireSilence ends a silence at now (one that has ended stays as it is).
	ExpireSilence(ctx context.Context, projectID, id string, now time.Time) error
	// ActiveSilences returns the silences of every project active at now.
	ActiveSilences(ctx context.Context, now time.Time) ([]Silence, error)

	// SubscriptionBacklogs returns every subscription's backlog.
	SubscriptionBacklogs(ctx context.Context) ([]SubscriptionBacklog, error)
	// QueueBacklogs returns every pull queue's backlog at now.
	QueueBacklogs(ctx context.Context, now time.Time) ([]QueueBacklog, error)
	// DeadLettersSince counts each project's dead letters recorded from since on.
	DeadLettersSince(ctx context.Context, since time.Time) (map[string]int64, error)
	// EventsAfter returns up to limit events of a project of the given
	// types created after the cursor (at, id), in order.
	EventsAfter(ctx context.Context, projectID string, types []string, at time.Time, id string, limit int) ([]Event, error)
}
