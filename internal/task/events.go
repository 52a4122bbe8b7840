package task

import (
	"context"
	"encoding/json"

	"carrier/internal/dest/pingback"
	"carrier/internal/store"
)

// EventData is the data of every task event.
type EventData struct {
	TaskID       string          `json:"task_id"`
	Status       string          `json:"status"`
	Method       string          `json:"method"`
	ProviderID   string          `json:"provider_id,omitempty"`
	Solution     string          `json:"solution,omitempty"`
	Via          string          `json:"via,omitempty"`
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	Cost         string          `json:"cost,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	CreatedAt    string          `json:"created_at"`
	SubmittedAt  string          `json:"submitted_at,omitempty"`
	CompletedAt  string          `json:"completed_at,omitempty"`
}

// update writes t (read at t.Version) with entries and, when its status
// changed to one that is announced, the event announcing it, in one
// transaction; then it wakes the outbox relay.
func (s *Service) update(ctx context.Context, t store.Task, entries ...store.TaskEntry) (store.Task, error) {
	var events []store.OutboxEvent
	if e, ok := s.eventOf(ctx, t); ok {
		events = append(events, e)
		if pb, ok := s.pingbackEntry(ctx, t, e.ID); ok {
			entries = append(entries, pb)
		}
	}
	updated, err := s.store.UpdateTask(ctx, t, t.Version, entries, events...)
	if err == nil && len(events) > 0 {
		s.events()
	}
	return updated, err
}

// eventOf is the event announcing t's status (task.submitted, task.solved,
// task.failed or task.expired), deduplicated by an idempotency key per task
// and status; ok is false for a pending task, which is not announced.
func (s *Service) eventOf(ctx context.Context, t store.Task) (store.OutboxEvent, bool) {
	if t.Status == store.TaskPending {
		return store.OutboxEvent{}, false
	}
	d := EventData{TaskID: t.ID, Status: t.Status, Method: t.Method, ProviderID: t.ProviderID, Solution: t.Solution, Via: t.Via,
		ErrorCode: t.ErrorCode, ErrorMessage: t.ErrorMessage, Cost: t.Cost, CreatedAt: formatTime(t.CreatedAt)}
	if t.Status == store.TaskSubmitted {
		d.ErrorCode, d.ErrorMessage = "", ""
	}
	if string(t.Metadata) != "null" {
		d.Metadata = t.Metadata
	}
	if t.SubmittedAt != nil {
		d.SubmittedAt = formatTime(*t.SubmittedAt)
	}
	if t.CompletedAt != nil {
		d.CompletedAt = formatTime(*t.CompletedAt)
	}
	data, _ := json.Marshal(d)
	attrs := map[string]string{"method": t.Method, "status": t.Status}
	if u, err := pingback.ParseURL(t.PingbackURL); t.PingbackURL != "" && err == nil {
		attrs[pingback.AttrURL], attrs[pingback.AttrHost] = t.PingbackURL, pingback.HostOf(u)
	}
	return store.OutboxEvent{ID: newID(), ProjectID: t.ProjectID, Type: "task." + t.Status, Subject: t.ID, Data: data,
		Attributes: attrs, IdempotencyKey: "task:" + t.ID + ":" + t.Status, CreatedAt: t.UpdatedAt}, true
}

// pingbackEntry makes sure the pingback subscription of a decided task's
// pingback URL exists (del_pingback may have removed it since in.php made it)
// and returns the history entry saying the result is queued for that URL as
// event eventID. ok is false when the task has no pingback URL, is not
// decided, or the subscription cannot be made (the event is still written:
// what the subscription does not get stays visible in the task's history).
func (s *Service) pingbackEntry(ctx context.Context, t store.Task, eventID string) (store.TaskEntry, bool) {
	if s.pingbacks == nil || t.PingbackURL == "" || t.Status == store.TaskSubmitted {
		return store.TaskEntry{}, false
	}
	u, err := pingback.ParseURL(t.PingbackURL)
	if err != nil {
		return store.TaskEntry{}, false
	}
	host := pingback.HostOf(u)
	sub, err := s.pingbacks.Ensure(ctx, t.ProjectID, host)
	if err != nil {
		s.log.Warn("make pingback subscription; the result is not sent to the pingback URL", "task", t.ID, "host", host, "err", err)
		return store.TaskEntry{}, false
	}
	return entryOf(t, store.TaskPingback, "result queued for the pingback URL "+t.PingbackURL+" (event "+eventID+")",
		map[string]any{"event_id": eventID, "subscription_id": sub.ID, "url": t.PingbackURL}), true
}
