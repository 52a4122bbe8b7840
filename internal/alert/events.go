package alert

import (
	"context"
	"encoding/json"
	"time"

	"carrier/internal/store"
)

// events evaluates an event rule: each Event since the rule's cursor fires
// the alert of its subject (an endpoint disabled fires the alert of that
// endpoint), each ResolveEvent resolves it. A rule without ResolveEvent
// notifies each event and returns to normal. The cursor moves in the same
// transaction as the notifications, so an event is notified once.
func (e *Evaluator) events(ctx context.Context, r Rule, byKey map[string]store.Alert, cur store.AlertCursor, now time.Time) ([]store.AlertChange, store.AlertCursor, bool) {
	if cur.RuleID == "" {
		cur = store.AlertCursor{RuleID: r.ID, At: r.CreatedAt}
	}
	types := []string{r.Event}
	if r.ResolveEvent != "" {
		types = append(types, r.ResolveEvent)
	}
	evs, err := e.Store.EventsAfter(ctx, r.ProjectID, types, cur.At, cur.EventID, maxEventsPerRound)
	if err != nil {
		e.logf("alert rule %s: %v", r.ID, err)
		return nil, cur, false
	}
	var out []store.AlertChange
	for _, ev := range evs {
		cur.At, cur.EventID = ev.CreatedAt, ev.ID
		item := ev.Subject
		value := 1.0
		if ev.Type == r.ResolveEvent && r.ResolveEvent != r.Event {
			value = 0
		}
		var details map[string]any
		_ = json.Unmarshal(ev.Data, &details) // a non-object data is left out
		if details == nil {
			details = map[string]any{}
		}
		details["event_id"], details["event_type"] = ev.ID, ev.Type
		is := itemSample{item: item, name: item, sample: Sample{OK: true, Value: value, Details: details}}
		key := r.ID + "\x00" + item
		a, had := byKey[key]
		c, next, ok := e.step(r, a, had, is, now)
		if !ok {
			continue
		}
		if r.ResolveEvent == "" && next.Status != StatusNormal {
			// No event resolves it: notified, and over.
			ended := now
			c.Alert.Status, c.Alert.EndedAt = "resolved", &ended
		}
		out = append(out, c)
		if c.Delete || c.Alert.EndedAt != nil {
			delete(byKey, key)
		} else {
			byKey[key] = c.Alert
		}
	}
	return out, cur, len(evs) > 0
}

// eventNotice is the notice of an event rule's notification: the rule, the
// event that caused it and its subject, with the event's reason when it has one.
func eventNotice(r Rule, n Notification, is itemSample) Notice {
	typ, _ := is.sample.Details["event_type"].(string)
	out := Notice{Color: ColorWarning, Title: "🔔 " + r.Name}
	if n.Severity == SeverityCritical {
		out.Color = ColorError
	}
	if n.Type == EventResolved {
		out.Title, out.Color = "✅ Resolved: "+r.Name, ColorSuccess
	}
	out.Description = "`" + typ + "` for `" + is.item + "`"
	if reason, ok := is.sample.Details["reason"].(string); ok && reason != "" {
		out.Fields = append(out.Fields, NoticeField{Name: "Reason", Value: reason})
	}
	if f, ok := is.sample.Details["consecutive_failures"].(float64); ok {
		out.Fields = append(out.Fields, NoticeField{Name: "Consecutive Failures", Value: formatCount(f), Inline: true})
	}
	out.Fields = append(out.Fields, NoticeField{Name: "Severity", Value: upper(n.Severity), Inline: true})
	return out
}
