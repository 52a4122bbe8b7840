package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// Evaluator is the leader-only maintenance service that evaluates every
// enabled rule each Interval and commits the alerts' transitions with the
// events they cause.
type Evaluator struct {
	Store store.AlertStore
	// Every is the time between rounds (default 1 s).
	Every time.Duration
	// Now is the clock (time.Now when nil); tests drive it.
	Now func() time.Time
	// Provider names the CAPTCHA provider in notices ("CaptchaAI"), and
	// ProviderSite is where its balance is topped up ("captchaai.com").
	Provider     string
	ProviderSite string
	Log          *slog.Logger
	// Wake, when set, is called after a round that wrote notifications
	// (the outbox relay's wake, so they go out at once).
	Wake func()
	// Evaluated, when set, is told every rule's reading and state for each
	// item after every round (metrics).
	Evaluated func(rule Rule, item string, s State, x Sample)

	lastPrune time.Time
	// hold says why a notification is held back ("" to send it): set each
	// round from the silences and inhibitions in force.
	hold func(r Rule, item string, n Notification, inhibited string) string
}

func (e *Evaluator) Name() string { return "alerts" }

func (e *Evaluator) Interval() time.Duration {
	if e.Every > 0 {
		return e.Every
	}
	return time.Second
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Evaluator) footer() string { return MonitorFooter(e.Provider) }

// maxEventsPerRound bounds the events one event rule reads in a round; the
// rest wait for the next round.
const maxEventsPerRound = 500

// Round evaluates every enabled rule once.
func (e *Evaluator) Round(ctx context.Context) error {
	now := e.now().UTC()
	raw, err := e.Store.EnabledAlertRules(ctx)
	if err != nil {
		return err
	}
	current, err := e.Store.CurrentAlerts(ctx)
	if err != nil {
		return err
	}
	byKey := map[string]store.Alert{}
	for _, a := range current {
		byKey[a.RuleID+"\x00"+a.Item] = a
	}
	cursorList, err := e.Store.AlertCursors(ctx)
	if err != nil {
		return err
	}
	cursors := map[string]store.AlertCursor{}
	for _, c := range cursorList {
		cursors[c.RuleID] = c
	}
	silenceList, err := e.Store.ActiveSilences(ctx, now)
	if err != nil {
		return err
	}
	silences := map[string][]Silence{}
	for _, x := range silenceList {
		silences[x.ProjectID] = append(silences[x.ProjectID], decodeSilence(x))
	}
	rules := make([]Rule, 0, len(raw))
	metricOf := map[string]string{}
	for _, ar := range raw {
		r, err := Decode(ar)
		if err != nil {
			e.logf("alert rule %s: %v", ar.ID, err)
			continue
		}
		rules = append(rules, r)
		metricOf[r.ID] = r.Metric
	}
	// A critical alert inhibits the lower-severity alerts of other rules on
	// the same metric and item. Rules with a critical tier go first, so a
	// critical alert that fires in this round already inhibits.
	sort.SliceStable(rules, func(i, j int) bool { return hasCritical(rules[i]) && !hasCritical(rules[j]) })
	critical := map[string]string{}
	for _, a := range current {
		if a.Severity == SeverityCritical && (a.Status == StatusFiring || a.Status == StatusRecovering) {
			critical[metricOf[a.RuleID]+"\x00"+a.Item] = a.RuleID
		}
	}
	m := &measurements{ctx: ctx, st: e.Store, now: now}
	var changes []store.AlertChange
	var moved []store.AlertCursor
	for _, r := range rules {
		e.hold = func(r Rule, item string, n Notification, inhibited string) string {
			if n.Type != EventFlapping && inhibited != "" {
				return "inhibited: " + inhibited
			}
			if by, ok := critical[r.Metric+"\x00"+item]; ok && by != r.ID && severityRank[n.Severity] < severityRank[SeverityCritical] {
				return "inhibited: a critical alert of rule " + by + " on the same item"
			}
			labels := alertLabels(r, item, n.Severity)
			for _, x := range silences[r.ProjectID] {
				if x.matches(labels) {
					return "silenced by " + x.ID
				}
			}
			return ""
		}
		switch r.Kind {
		case KindEvent:
			ch, cur, ok := e.events(ctx, r, byKey, cursors[r.ID], now)
			changes = append(changes, ch...)
			if ok {
				moved = append(moved, cur)
			}
		case KindSchedule:
			ch, cur, ok := e.schedule(r, m, cursors[r.ID], now)
			changes = append(changes, ch...)
			if ok {
				moved = append(moved, cur)
			}
		default:
			seen := map[string]bool{}
			for _, is := range m.measure(r) {
				seen[is.item] = true
				a, had := byKey[r.ID+"\x00"+is.item]
				c, st, ok := e.step(r, a, had, is, now)
				if ok {
					changes = append(changes, c)
				}
				key := r.Metric + "\x00" + is.item
				switch {
				case st.Severity == SeverityCritical && (st.Status == StatusFiring || st.Status == StatusRecovering):
					critical[key] = r.ID
				case critical[key] == r.ID:
					delete(critical, key)
				}
				if e.Evaluated != nil {
					e.Evaluated(r, is.item, st, is.sample)
				}
			}
			// An item that is gone (a deleted subscription) has cleared.
			for _, a := range byKey {
				if a.RuleID == r.ID && !seen[a.Item] {
					gone := r
					gone.NoData = NoDataOK
					if c, _, ok := e.step(gone, a, true, itemSample{item: a.Item}, now); ok {
						changes = append(changes, c)
					}
				}
			}
		}
	}
	if m.err != nil {
		// A failed measurement is no data for the rules that needed it:
		// their alerts kept their state. Say so, and still commit the rest.
		e.logf("alert measurements: %v", m.err)
	}
	if err := e.Store.ApplyAlertChanges(ctx, changes, moved); err != nil {
		return err
	}
	if e.Wake != nil {
		for _, c := range changes {
			if len(c.Events) > 0 {
				e.Wake()
				break
			}
		}
	}
	if samples := m.samplesToWrite(); len(samples) > 0 {
		if err := e.Store.AddSamples(ctx, samples); err != nil {
			return err
		}
	}
	if now.Sub(e.lastPrune) > 10*time.Minute {
		e.lastPrune = now
		if err := e.Store.PruneSamples(ctx, now.Add(-SampleRetention)); err != nil {
			return err
		}
	}
	return nil
}

func (e *Evaluator) logf(format string, args ...any) {
	if e.Log != nil {
		e.Log.Warn(fmt.Sprintf(format, args...))
	}
}

// Decode parses a stored rule.
func Decode(ar store.AlertRule) (Rule, error) {
	var r Rule
	if err := json.Unmarshal(ar.Spec, &r); err != nil {
		return r, err
	}
	r.ID, r.ProjectID, r.Name, r.Enabled, r.CreatedAt, r.UpdatedAt = ar.ID, ar.ProjectID, ar.Name, ar.Enabled, ar.CreatedAt, ar.UpdatedAt
	return r, r.Normalize()
}

// decodeState reads an alert's persisted state.
func decodeState(a store.Alert) State {
	var s State
	if len(a.State) > 0 {
		_ = json.Unmarshal(a.State, &s) // a state that does not decode starts over
	}
	return s
}

// step runs the state machine for one item and turns its result into a
// change to commit; ok is false when nothing changed.
func (e *Evaluator) step(r Rule, a store.Alert, had bool, is itemSample, now time.Time) (store.AlertChange, State, bool) {
	prev := State{Status: StatusNormal}
	if had {
		prev = decodeState(a)
	}
	next, ns := Step(r, prev, is.sample, now)
	if !had && next.Status == StatusNormal && len(ns) == 0 {
		return store.AlertChange{}, next, false
	}
	if !had {
		a = store.Alert{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: r.ProjectID, RuleID: r.ID, Item: is.item, StartedAt: now}
	}
	return e.change(r, a, prev, next, ns, is, now), next, true
}

// change builds the alert row, transitions and events of one step.
func (e *Evaluator) change(r Rule, a store.Alert, prev, next State, ns []Notification, is itemSample, now time.Time) store.AlertChange {
	state, _ := json.Marshal(next)
	a.State, a.Status, a.Severity, a.UpdatedAt = state, next.Status, next.Severity, now
	if !next.StartedAt.IsZero() {
		a.StartedAt = next.StartedAt
	}
	c := store.AlertChange{Alert: a}
	ended := next.Status == StatusNormal && !next.Flapping
	if ended {
		if next.NotifiedStatus == "" && len(ns) == 0 {
			c.Delete = true // pending that went back to normal: never notified
		} else {
			a.Status = "resolved"
			t := now
			a.EndedAt = &t
			c.Alert = a
		}
	}
	if len(ns) == 0 && prev.Status != next.Status {
		c.Transitions = append(c.Transitions, e.transition(a, prev.Status, next.Status, next.Severity, is.sample, "", ""))
	}
	held := false
	for _, n := range ns {
		to := next.Status
		if n.Type == EventResolved {
			to = "resolved"
		}
		if note := e.holdOf(r, is, n); note != "" {
			t := e.transition(a, prev.Status, to, n.Severity, is.sample, n.Type, "")
			t.Note = note
			c.Transitions = append(c.Transitions, t)
			held = true
			continue
		}
		ev := e.event(r, a, next, n, is, now)
		c.Transitions = append(c.Transitions, e.transition(a, prev.Status, to, n.Severity, is.sample, n.Type, ev.ID))
		c.Events = append(c.Events, ev)
	}
	if held {
		// What was held back was not notified: the state keeps what was, so
		// a firing alert is notified once its silence ends.
		next.NotifiedStatus, next.NotifiedSeverity, next.LastNotifiedAt = prev.NotifiedStatus, prev.NotifiedSeverity, prev.LastNotifiedAt
		for _, ev := range c.Events {
			var d EventData
			if json.Unmarshal(ev.Data, &d) == nil && ev.Type != EventFlapping {
				next.NotifiedStatus, next.NotifiedSeverity, next.LastNotifiedAt = d.Status, d.Severity, now
			}
		}
		state, _ := json.Marshal(next)
		c.Alert.State = state
	}
	return c
}

// probeNotice says the balance check keeps failing, with its last error.
func probeNotice(provider string, failures float64, details map[string]any) Notice {
	name := provider
	if name == "" {
		name = "provider"
	}
	n := Notice{Title: "⚠️ Balance Check Failing", Color: ColorWarning,
		Description: fmt.Sprintf("The %s balance check failed **%s** times in a row; the balance is unknown", name, formatCount(failures))}
	n.Fields = append(n.Fields, NoticeField{Name: "Severity", Value: "WARNING", Inline: true})
	if e, _ := details["error"].(string); e != "" {
		n.Fields = append(n.Fields, NoticeField{Name: "Last Error", Value: e})
	}
	return n
}

func hasCritical(r Rule) bool { return len(r.Tiers) > 0 && r.Tiers[0].Severity == SeverityCritical }

// holdOf says why notification n of rule r for an item is held back ("" to send it).
func (e *Evaluator) holdOf(r Rule, is itemSample, n Notification) string {
	if e.hold == nil {
		return ""
	}
	return e.hold(r, is.item, n, is.inhibited)
}

func (e *Evaluator) transition(a store.Alert, from, to, severity string, x Sample, eventType, eventID string) store.AlertTransition {
	t := store.AlertTransition{ID: uuid.Must(uuid.NewV7()).String(), AlertID: a.ID, ProjectID: a.ProjectID, At: a.UpdatedAt,
		From: from, To: to, Severity: severity, EventType: eventType, EventID: eventID}
	if x.OK && !math.IsInf(x.Value, 0) {
		v := x.Value
		t.Value = &v
	}
	return t
}

// event is the outbox event of one notification.
func (e *Evaluator) event(r Rule, a store.Alert, s State, n Notification, is itemSample, now time.Time) store.OutboxEvent {
	d := EventData{
		AlertID: a.ID, RuleID: r.ID, Rule: r.Name, Kind: string(r.Kind), Metric: r.Metric, Item: is.item,
		Status: n.Status, Severity: n.Severity, PreviousSeverity: n.PreviousSeverity, Repeat: n.Repeat,
		Value: n.Value, Threshold: n.Threshold, FirstValue: s.First, WorstValue: s.Worst, LastValue: s.Last,
		StartsAt: s.StartedAt, Details: is.sample.Details,
	}
	if n.Type == EventResolved {
		t := now
		d.EndsAt = &t
		d.DurationSeconds = now.Sub(s.StartedAt).Seconds()
	}
	d.Notice = e.notice(r, d, n, is)
	data, _ := json.Marshal(d)
	return store.OutboxEvent{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: r.ProjectID, Type: n.Type, Subject: a.ID, Data: data,
		Attributes: map[string]string{"severity": n.Severity, "rule": r.Name, "status": n.Status, "metric": r.Metric},
		CreatedAt:  now,
	}
}

// notice renders a notification for people, in the source document's words
// where it has them.
func (e *Evaluator) notice(r Rule, d EventData, n Notification, is itemSample) Notice {
	v := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	var out Notice
	switch {
	case n.Type == EventFlapping:
		out = FlappingNotice(r.Name, n.Flips, DefaultFlapWindow)
	case r.Kind == KindEvent:
		out = eventNotice(r, n, is)
	case n.Type == EventResolved && r.Metric == "task.error_rate":
		// The source's recovery notice speaks of the solve rate.
		out = RecoveredNotice("✅ Pipeline Recovered", 1-v(d.WorstValue), 1-v(d.LastValue))
	case n.Type == EventResolved:
		out = ResolvedNotice(r.Name, r.Metric, v(d.FirstValue), v(d.WorstValue), v(d.LastValue), time.Duration(d.DurationSeconds*float64(time.Second)), r.Unit())
	case r.Metric == "provider.probe_failures":
		out = probeNotice(e.Provider, v(d.Value), is.sample.Details)
	case r.Metric == "provider.balance":
		out = BalanceNotice(e.Provider, v(d.Value), v(d.Threshold), n.Severity, e.ProviderSite)
	case r.Metric == "task.error_rate":
		codes, _ := is.sample.Details["breakdown"].(map[string]int)
		errs, _ := is.sample.Details["errors"].(int)
		total, _ := is.sample.Details["total"].(int)
		out = ErrorSpikeNotice(v(d.Value), errs, total, CodeCounts(codes), r.Window.D())
	case r.Metric == "subscription.drain_time" || r.Metric == "subscription.backlog":
		depth := 0
		rate := 0.0
		if x, ok := is.sample.Details["depth"].(int); ok {
			depth = x
		} else {
			depth = int(v(d.Value))
		}
		if x, ok := is.sample.Details["drain_rate"].(float64); ok {
			rate = x
		}
		drain := time.Duration(-1)
		if rate > 0 {
			drain = time.Duration(float64(depth) / rate * float64(time.Second))
		}
		out = QueueBackupNotice(is.name, depth, rate, drain)
	default:
		out = FiringNotice(r.Name, r.Metric, n.Severity, v(d.Value), v(d.Threshold), r.Unit())
	}
	if n.PreviousSeverity != "" {
		out.Title += fmt.Sprintf(" (%s → %s)", strings.ToUpper(n.PreviousSeverity), strings.ToUpper(n.Severity))
	}
	if n.Repeat {
		out.Title += " (still firing)"
	}
	if out.Footer == "" {
		out.Footer = e.footer()
	}
	out.Quiet = n.Type == EventResolved || n.Type == EventFlapping
	return out
}

func formatCount(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func upper(s string) string { return strings.ToUpper(s) }
