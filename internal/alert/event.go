package alert

import "time"

// Event types the alert evaluator publishes (through the outbox, in the
// transaction of the transition that causes them).
const (
	EventFiring      = "alert.firing"
	EventResolved    = "alert.resolved"
	EventFlapping    = "alert.flapping"
	EventDailyReport = "report.daily"
)

// EventData is the data of an alert.* event. Consumers route on Severity,
// Rule and Status with ordinary filter policies; Notice is what chat and
// email destinations show.
type EventData struct {
	AlertID  string `json:"alert_id"`
	RuleID   string `json:"rule_id"`
	Rule     string `json:"rule"`   // the rule's name
	Kind     string `json:"kind"`   // the rule's kind (threshold, ratio, …)
	Metric   string `json:"metric"` // what the rule measures, such as provider.balance
	Item     string `json:"item"`   // the scoped item ("" for a project-wide rule), such as a subscription id
	Status   string `json:"status"` // "firing" or "resolved"
	Severity string `json:"severity"`
	// PreviousSeverity is set on an escalation or de-escalation: the
	// severity the alert had before this notification.
	PreviousSeverity string `json:"previous_severity,omitempty"`
	// Repeat is true for a reminder of an unchanged alert (after repeat_interval).
	Repeat bool `json:"repeat,omitempty"`

	Value      *float64 `json:"value"`       // the measured value that caused this notification (nil: no data)
	Threshold  *float64 `json:"threshold"`   // the firing threshold of Severity's tier
	FirstValue *float64 `json:"first_value"` // when the alert started firing
	WorstValue *float64 `json:"worst_value"`
	LastValue  *float64 `json:"last_value"`

	StartsAt time.Time  `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at,omitempty"` // resolved notifications
	// DurationSeconds is how long a resolved alert lasted.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`

	// Details are the rule kind's extra figures, such as the error
	// breakdown of a ratio over task outcomes ({"ERROR_CAPTCHA_UNSOLVABLE": 30}).
	Details map[string]any `json:"details,omitempty"`

	Notice Notice `json:"notice"`
}
