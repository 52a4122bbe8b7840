package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"carrier/internal/store"
)

func (f *fixture) alertChange(projectID, ruleID, item, status string, at time.Time, events ...store.OutboxEvent) store.AlertChange {
	a := store.Alert{ID: newID(), ProjectID: projectID, RuleID: ruleID, Item: item, Status: status, Severity: "warning",
		State: json.RawMessage(`{"status":"` + status + `"}`), StartedAt: at, UpdatedAt: at}
	return store.AlertChange{Alert: a, Events: events, Transitions: []store.AlertTransition{{ID: newID(), AlertID: a.ID, ProjectID: projectID,
		At: at, From: "normal", To: status, Severity: "warning", EventType: "alert.firing", EventID: "e"}}}
}

func (f *fixture) outboxEvent(projectID string, at time.Time) store.OutboxEvent {
	return store.OutboxEvent{ID: newID(), ProjectID: projectID, Type: "alert.firing", Data: json.RawMessage(`{}`), Attributes: map[string]string{}, CreatedAt: at}
}

// testAlertChangesAtomic: an alert's row, its transitions, its events and
// the cursors commit together; a second current alert of one rule and item
// is refused, and then nothing of that round is written.
func testAlertChangesAtomic(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	rule := store.AlertRule{ID: newID(), ProjectID: p.ID, Name: "r", Spec: json.RawMessage(`{}`), Enabled: true, CreatedAt: f.base, UpdatedAt: f.base}
	f.must(f.s.CreateAlertRule(f.ctx, rule))
	wantErr(t, "a second rule of the same name", f.s.CreateAlertRule(f.ctx, store.AlertRule{ID: newID(), ProjectID: p.ID, Name: "r", Spec: json.RawMessage(`{}`)}), store.ErrConflict)

	first := f.alertChange(p.ID, rule.ID, "sub-1", "firing", f.at(0), f.outboxEvent(p.ID, f.at(0)))
	f.must(f.s.ApplyAlertChanges(f.ctx, []store.AlertChange{first}, []store.AlertCursor{{RuleID: rule.ID, At: f.at(0), EventID: "ev-1"}}))
	rows := f.claimOutbox("n", f.at(time.Hour), 10)
	check(t, "outbox rows after the first round", len(rows), 1)
	for _, r := range rows {
		f.must(f.s.DeleteOutbox(f.ctx, r.ID))
	}

	// The round that tries a second current alert for sub-1 writes nothing.
	other := f.alertChange(p.ID, rule.ID, "sub-2", "firing", f.at(time.Second), f.outboxEvent(p.ID, f.at(time.Second)))
	dup := f.alertChange(p.ID, rule.ID, "sub-1", "firing", f.at(time.Second), f.outboxEvent(p.ID, f.at(time.Second)))
	if err := f.s.ApplyAlertChanges(f.ctx, []store.AlertChange{other, dup}, []store.AlertCursor{{RuleID: rule.ID, At: f.at(time.Second), EventID: "ev-2"}}); err == nil {
		t.Fatal("a second current alert of one rule and item was accepted")
	}
	cur, err := f.s.CurrentAlerts(f.ctx)
	f.must(err)
	check(t, "current alerts after the refused round", len(cur), 1)
	check(t, "outbox rows after the refused round", len(f.claimOutbox("n2", f.at(2*time.Hour), 10)), 0)
	cursors, err := f.s.AlertCursors(f.ctx)
	f.must(err)
	check(t, "cursor after the refused round", cursors[0].EventID, "ev-1")

	// Ending the alert frees the item for a new one.
	ended := first.Alert
	end := f.at(time.Minute)
	ended.Status, ended.EndedAt, ended.UpdatedAt = "resolved", &end, end
	f.must(f.s.ApplyAlertChanges(f.ctx, []store.AlertChange{{Alert: ended}, dup}, nil))
	got, ts, err := f.s.GetAlert(f.ctx, p.ID, first.Alert.ID)
	f.must(err)
	check(t, "ended alert status", got.Status, "resolved")
	check(t, "ended alert transitions", len(ts), 1)
	_, _, err = f.s.GetAlert(f.ctx, f.project().ID, first.Alert.ID)
	wantErr(t, "another project's alert", err, store.ErrNotFound)
	list, err := f.s.ListAlerts(f.ctx, store.AlertFilter{ProjectID: p.ID, Current: true})
	f.must(err)
	check(t, "current alerts listed", len(list), 1)

	// Deleting the rule ends its current alerts and forgets its cursor.
	f.must(f.s.DeleteAlertRule(f.ctx, p.ID, rule.ID, f.at(2*time.Minute)))
	cur, err = f.s.CurrentAlerts(f.ctx)
	f.must(err)
	check(t, "current alerts after deleting the rule", len(cur), 0)
	cursors, err = f.s.AlertCursors(f.ctx)
	f.must(err)
	check(t, "cursors after deleting the rule", len(cursors), 0)
}

// testProbeGauge: a failed probe keeps the last good value and counts
// failures in a row; a good one resets them.
func testProbeGauge(t *testing.T, e Storage) {
	f := setup(t, e)
	rec := func(v float64, ok bool) store.Gauge {
		g, err := f.s.RecordProbe(f.ctx, store.Gauge{Name: "balance", Item: "default", Value: v, OK: ok, Error: "down", ObservedAt: f.base})
		f.must(err)
		return g
	}
	g := rec(12.5, true)
	check(t, "first good probe", [3]any{g.Value, g.OK, g.Failures}, [3]any{12.5, true, 0})
	rec(0, false)
	g = rec(99, false)
	check(t, "two failed probes", [3]any{g.Value, g.OK, g.Failures}, [3]any{12.5, false, 2})
	g = rec(8, true)
	check(t, "good probe again", [4]any{g.Value, g.OK, g.Failures, g.Error}, [4]any{8.0, true, 0, ""})
}
