package alert

import (
	"time"
)

// The statuses of an alert.
const (
	StatusNormal     = "normal"
	StatusPending    = "pending"    // bad, waiting out PendingFor before firing
	StatusFiring     = "firing"     // notified as firing
	StatusRecovering = "recovering" // cleared, waiting out RecoverFor before resolving
)

// State is the persisted state of one alert: a rule over one scoped item.
// Step is the only thing that changes it.
type State struct {
	Status   string    `json:"status"`
	Severity string    `json:"severity,omitempty"`
	Since    time.Time `json:"since"` // when Status began
	// StartedAt is when the alert started firing.
	StartedAt time.Time `json:"started_at,omitempty"`
	// LastNotifiedAt is when the last notification of this alert was sent;
	// NotifiedStatus and NotifiedSeverity what it said.
	LastNotifiedAt   time.Time `json:"last_notified_at,omitempty"`
	NotifiedStatus   string    `json:"notified_status,omitempty"`
	NotifiedSeverity string    `json:"notified_severity,omitempty"`

	First *float64 `json:"first,omitempty"`
	Worst *float64 `json:"worst,omitempty"`
	Last  *float64 `json:"last,omitempty"`

	// Flips are the recent firing starts and resolutions (within the flap
	// window); Flapping is set while they are too many, and then only the
	// alert.flapping notification is sent until the alert settles.
	Flips    []time.Time `json:"flips,omitempty"`
	Flapping bool        `json:"flapping,omitempty"`
}

// Sample is one measurement of a rule's value for an item.
type Sample struct {
	// OK is false when there is no data (no samples, fewer than MinCount, a
	// failing probe).
	OK      bool
	Value   float64
	Details map[string]any // the kind's extra figures, carried into notifications
}

// Notification is what a step asks to be sent.
type Notification struct {
	Type             string // EventFiring, EventResolved or EventFlapping
	Status           string // "firing" or "resolved"
	Severity         string
	PreviousSeverity string // set on a change of severity
	Repeat           bool
	Value            *float64
	Threshold        *float64
	Flips            int // for EventFlapping
}

// Step is the alert state machine: given a rule, an alert's state and this
// round's sample at now, it returns the next state and what to notify. It
// is pure, so the evaluator can persist the state and the notifications in
// one transaction, and tests can drive it through any sequence.
//
// normal → pending → firing → recovering → normal. Tiers are evaluated top
// down: from normal or pending the most severe tier whose Fire is crossed is
// the target; while firing, the alert keeps its severity until the value is
// back past that tier's Clear, escalates at once when a more severe tier
// fires, and de-escalates to the most severe lower tier that has not
// cleared. Repeats of an unchanged state and severity wait RepeatInterval;
// escalations and resolutions do not wait.
func Step(r Rule, s State, x Sample, now time.Time) (State, []Notification) {
	if s.Status == "" {
		s.Status = StatusNormal
	}
	var v *float64
	if x.OK {
		val := x.Value
		v = &val
	} else {
		switch r.NoData {
		case NoDataOK:
			// treated as cleared below (v nil, no tier holds)
		case NoDataAlert:
		default:
			return s, nil
		}
	}
	target := ""  // most severe tier whose Fire is crossed
	holding := "" // most severe tier, up to the current severity, not yet cleared
	if v != nil {
		for _, t := range r.Tiers {
			if target == "" && crossed(r.Op, *v, t.Fire) {
				target = t.Severity
			}
		}
	} else if r.NoData == NoDataAlert && len(r.Tiers) > 0 {
		target = r.Tiers[len(r.Tiers)-1].Severity
	}
	if s.Status == StatusFiring || s.Status == StatusRecovering {
		for _, t := range r.Tiers {
			if severityRank[t.Severity] > severityRank[s.Severity] {
				continue
			}
			if v != nil && crossed(r.Op, *v, t.clear()) || v == nil && target == t.Severity {
				holding = t.Severity
				break
			}
		}
	}
	threshold := func(sev string) *float64 {
		for _, t := range r.Tiers {
			if t.Severity == sev {
				f := t.Fire
				return &f
			}
		}
		return nil
	}
	var out []Notification
	notify := func(n Notification) {
		n.Value = v
		if n.Threshold == nil {
			n.Threshold = threshold(n.Severity)
		}
		out = append(out, n)
	}
	fire := func(sev string) {
		s.Status, s.Severity, s.Since, s.StartedAt = StatusFiring, sev, now, now
		s.First, s.Worst, s.Last = v, v, v
		s.flip(now)
		notify(Notification{Type: EventFiring, Status: "firing", Severity: sev})
	}
	track := func() {
		if v == nil {
			return
		}
		s.Last = v
		if s.Worst == nil || crossed(r.Op, *v, *s.Worst) {
			s.Worst = v
		}
	}

	switch s.Status {
	case StatusNormal:
		if target == "" {
			return s, nil
		}
		if r.PendingFor == 0 {
			fire(target)
		} else {
			s.Status, s.Severity, s.Since = StatusPending, target, now
		}
	case StatusPending:
		switch {
		case target == "":
			s = State{Status: StatusNormal, Since: now, Flips: s.Flips, Flapping: s.Flapping, NotifiedStatus: s.NotifiedStatus, LastNotifiedAt: s.LastNotifiedAt, NotifiedSeverity: s.NotifiedSeverity}
		case now.Sub(s.Since) >= r.PendingFor.D():
			fire(target)
		default:
			s.Severity = target
		}
	case StatusFiring, StatusRecovering:
		next := holding
		if target != "" && severityRank[target] > severityRank[next] {
			next = target
		}
		track()
		switch {
		case next == "":
			if s.Status == StatusFiring && r.RecoverFor > 0 {
				s.Status, s.Since = StatusRecovering, now
				break
			}
			if s.Status == StatusRecovering && now.Sub(s.Since) < r.RecoverFor.D() {
				break
			}
			s.flip(now)
			if s.NotifiedStatus == "firing" {
				// Only what was told firing is told resolved: an alert
				// that fired and cleared under a silence stays quiet.
				notify(Notification{Type: EventResolved, Status: "resolved", Severity: s.Severity})
			}
			s.Status, s.Since = StatusNormal, now
		case next != s.Severity:
			prev := s.Severity
			s.Status, s.Severity, s.Since = StatusFiring, next, now
			notify(Notification{Type: EventFiring, Status: "firing", Severity: next, PreviousSeverity: prev})
		default:
			if s.Status == StatusRecovering {
				s.Status, s.Since = StatusFiring, now
			}
			switch {
			case s.NotifiedStatus != "firing" || s.NotifiedSeverity != s.Severity:
				// A notification that was held back (silenced, inhibited)
				// goes out once it may.
				notify(Notification{Type: EventFiring, Status: "firing", Severity: s.Severity})
			case now.Sub(s.LastNotifiedAt) >= r.RepeatInterval.D():
				notify(Notification{Type: EventFiring, Status: "firing", Severity: s.Severity, Repeat: true})
			}
		}
	}
	return s.settle(out, now)
}

// flip records a firing start or a resolution for flap detection.
func (s *State) flip(now time.Time) {
	s.Flips = append(s.Flips, now)
}

// settle applies flap detection to a step's notifications and records
// what was notified. While flapping, firing and resolved notifications are
// held back; one alert.flapping is sent when it starts, and when the alert
// settles (no flip within the flap window) the state it settled in is sent
// if it differs from the last one notified.
func (s State) settle(out []Notification, now time.Time) (State, []Notification) {
	keep := s.Flips[:0:0]
	for _, f := range s.Flips {
		if now.Sub(f) < DefaultFlapWindow {
			keep = append(keep, f)
		}
	}
	s.Flips = keep
	if !s.Flapping && len(s.Flips) > DefaultFlapLimit {
		s.Flapping = true
		sev := s.Severity
		out = []Notification{{Type: EventFlapping, Status: "flapping", Severity: sev, Flips: len(s.Flips)}}
	} else if s.Flapping {
		if len(s.Flips) == 0 {
			s.Flapping = false
			current := "resolved"
			if s.Status == StatusFiring || s.Status == StatusRecovering {
				current = "firing"
			}
			out = nil
			if current != s.NotifiedStatus || (current == "firing" && s.Severity != s.NotifiedSeverity) {
				typ := EventResolved
				if current == "firing" {
					typ = EventFiring
				}
				out = []Notification{{Type: typ, Status: current, Severity: s.Severity, Value: s.Last}}
			}
		} else {
			out = nil
		}
	}
	for _, n := range out {
		s.LastNotifiedAt = now
		if n.Type != EventFlapping {
			s.NotifiedStatus, s.NotifiedSeverity = n.Status, n.Severity
		}
	}
	return s, out
}

// crossed reports whether v is on the bad side of limit for op: above it
// for Above, below it for Below. Against Fire it means the tier fires;
// against Clear, that the tier has not cleared yet.
func crossed(op string, v, limit float64) bool {
	if op == Below {
		return v < limit
	}
	return v > limit
}
