package app_test

import (
	"net/http"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestQueueFIFO: a FIFO queue over REST receives each message group in send
// order, blocks a group while one of its messages is in flight, deduplicates
// by deduplication id, and the queue destination fills it by subject.
func TestQueueFIFO(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			for _, tc := range []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"name": "orders", "fifo": true}, "name"},
				{map[string]any{"name": "orders.fifo"}, "name"},
				{map[string]any{"name": "or.ders.fifo", "fifo": true}, "name"},
				{map[string]any{"name": "plain", "content_based_deduplication": true}, "content_based_deduplication"},
			} {
				if r := c.Admin("POST", "/v1/queues", tc.body); r.Status != http.StatusBadRequest || r.ErrorField() != tc.field {
					t.Errorf("create %v: %d %s, want error on %s", tc.body, r.Status, r.Body, tc.field)
				}
			}
			q := h.create(map[string]any{"name": "orders.fifo", "fifo": true, "visibility_timeout_seconds": 60})
			if got := c.Admin("GET", "/v1/queues/"+q, nil).Data(); got["fifo"] != true || got["content_based_deduplication"] != false {
				t.Fatalf("queue: %v", got)
			}
			for _, tc := range []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"body": "x", "deduplication_id": "x"}, "group_id"},
				{map[string]any{"body": "x", "group_id": "g"}, "deduplication_id"},
				{map[string]any{"body": "x", "group_id": "g", "deduplication_id": "x", "delay_seconds": 5}, "delay_seconds"},
				{map[string]any{"messages": []any{map[string]any{"body": "x", "group_id": "g", "deduplication_id": "x"}, map[string]any{"body": "y", "deduplication_id": "y"}}}, "messages[1].group_id"},
			} {
				if r := c.Admin("POST", "/v1/queues/"+q+"/messages", tc.body); r.Status != http.StatusBadRequest || r.ErrorField() != tc.field {
					t.Errorf("send %v: %d %s, want error on %s", tc.body, r.Status, r.Body, tc.field)
				}
			}
			msg := func(g, b string) map[string]any {
				return map[string]any{"body": b, "group_id": g, "deduplication_id": b}
			}
			ids := h.send(q, map[string]any{"messages": []any{msg("a", "a1"), msg("b", "b1"), msg("a", "a2"), msg("b", "b2")}})
			if again := h.send(q, msg("a", "a1")); again[0] != ids[0] {
				t.Errorf("duplicate send: id %s, want the first %s", again[0], ids[0])
			}
			wantCounts(t, "after sends", h.counts(q), 4, 0, 0)

			first := h.receive(q, map[string]any{"max_messages": 1})
			if len(first) != 1 || first[0]["body"] != "a1" || first[0]["group_id"] != "a" || first[0]["deduplication_id"] != "a1" || first[0]["sequence_number"] == "" {
				t.Fatalf("first receive: %v", first)
			}
			// Group a is in flight: only group b comes out, in order.
			second := h.receive(q, map[string]any{"max_messages": 10})
			if len(second) != 2 || second[0]["body"] != "b1" || second[1]["body"] != "b2" {
				t.Fatalf("second receive: %v", second)
			}
			if none := h.receive(q, map[string]any{"max_messages": 10}); len(none) != 0 {
				t.Fatalf("received while every group is in flight: %v", none)
			}
			if r := c.Admin("DELETE", "/v1/queues/"+q+"/messages/"+first[0]["receipt_handle"].(string), nil); r.Status != http.StatusOK {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
			if next := h.receive(q, map[string]any{"max_messages": 10}); len(next) != 1 || next[0]["body"] != "a2" {
				t.Fatalf("after deleting a1: %v", next)
			}

			// The queue destination: the event's subject is the group, the delivery id the deduplication id.
			dest := h.create(map[string]any{"name": "events.fifo", "fifo": true})
			if r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "to fifo", "event_types": []string{"task.*"},
				"destination": map[string]any{"type": "queue", "queue": "events.fifo", "raw": true}}); r.Status != http.StatusCreated {
				t.Fatalf("create subscription: %d %s", r.Status, r.Body)
			}
			c.Publish(apptest.AdminKey, map[string]any{"type": "task.solved", "subject": "task-1", "data": map[string]any{"n": 1}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "task.solved", "data": map[string]any{"n": 2}})
			var got []map[string]any
			apptest.Eventually(t, 10*time.Second, "two events enqueued", func() bool {
				return h.counts(dest)["visible"] == 2.0
			})
			got = h.receive(dest, map[string]any{"max_messages": 10})
			groups := map[string]bool{}
			for _, m := range got {
				groups[m["group_id"].(string)] = true
				if m["deduplication_id"] == "" {
					t.Errorf("no deduplication id: %v", m)
				}
			}
			if len(got) != 2 || !groups["task-1"] || !groups["_"] {
				t.Errorf("queue destination into FIFO queue: %v", got)
			}
		})
	}
}
