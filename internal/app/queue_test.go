package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// queueHelper wraps the /v1/queues API for one key.
type queueHelper struct {
	t   *testing.T
	c   *apptest.Carrier
	key string
}

func (h queueHelper) create(fields map[string]any) string {
	h.t.Helper()
	r := h.c.Do("POST", "/v1/queues", h.key, fields)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create queue %v: %d %s", fields, r.Status, r.Body)
	}
	return r.Data()["id"].(string)
}

func (h queueHelper) send(id string, body any) []string {
	h.t.Helper()
	r := h.c.Do("POST", "/v1/queues/"+id+"/messages", h.key, body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	var ids []string
	for _, v := range r.Data()["message_ids"].([]any) {
		ids = append(ids, v.(string))
	}
	return ids
}

func (h queueHelper) receive(id string, req map[string]any) []map[string]any {
	h.t.Helper()
	r := h.c.Do("POST", "/v1/queues/"+id+"/receive", h.key, req)
	if r.Status != http.StatusOK {
		h.t.Fatalf("receive: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	for _, v := range r.Data()["messages"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

func (h queueHelper) counts(id string) map[string]any {
	h.t.Helper()
	r := h.c.Do("GET", "/v1/queues/"+id, h.key, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("get queue: %d %s", r.Status, r.Body)
	}
	return r.Data()["approximate_messages"].(map[string]any)
}

func wantCounts(t *testing.T, what string, got map[string]any, visible, inFlight, delayed float64) {
	t.Helper()
	if got["visible"] != visible || got["in_flight"] != inFlight || got["delayed"] != delayed {
		t.Errorf("%s: counts %v, want visible %v in_flight %v delayed %v", what, got, visible, inFlight, delayed)
	}
}

// TestQueueLifecycle: at-least-once delivery with a visibility timeout, dead
// letters after the max receive count, redrive, ack, change visibility,
// purge, counts and deletion rules.
func TestQueueLifecycle(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			dlq := h.create(map[string]any{"name": "jobs-dlq"})
			q := h.create(map[string]any{"name": "jobs", "visibility_timeout_seconds": 1, "max_receive_count": 2, "dead_letter_queue": "jobs-dlq"})
			if got := c.Admin("GET", "/v1/queues/"+q, nil).Data(); got["dead_letter_queue_id"] != dlq || got["max_receive_count"] != 2.0 {
				t.Fatalf("queue: %v", got)
			}
			ids := h.send(q, map[string]any{"body": "work-1", "attributes": map[string]string{"kind": "captcha"}})
			wantCounts(t, "after send", h.counts(q), 1, 0, 0)

			first := h.receive(q, map[string]any{"max_messages": 10})
			if len(first) != 1 || first[0]["id"] != ids[0] || first[0]["body"] != "work-1" || first[0]["receive_count"] != 1.0 ||
				first[0]["attributes"].(map[string]any)["kind"] != "captcha" || first[0]["first_received_at"] == nil {
				t.Fatalf("first receive: %v", first)
			}
			if again := h.receive(q, map[string]any{"max_messages": 10}); len(again) != 0 {
				t.Fatalf("received while invisible: %v", again)
			}
			wantCounts(t, "in flight", h.counts(q), 0, 1, 0)

			// The visibility timeout (1 s) runs out: received again, higher count, new handle.
			var second []map[string]any
			apptest.Eventually(t, 5*time.Second, "redelivery", func() bool {
				second = h.receive(q, map[string]any{"max_messages": 10})
				return len(second) == 1
			})
			if second[0]["receive_count"] != 2.0 || second[0]["receipt_handle"] == first[0]["receipt_handle"] || second[0]["id"] != ids[0] {
				t.Fatalf("second receive: %v (first %v)", second, first)
			}
			if r := c.Admin("DELETE", "/v1/queues/"+q+"/messages/"+first[0]["receipt_handle"].(string), nil); r.Status != http.StatusNotFound || r.ErrorField() != "receipt_handle" {
				t.Errorf("ack with a stale handle: %d %s", r.Status, r.Body)
			}

			// Received max_receive_count (2) times: the next receive moves it to the dead-letter queue.
			apptest.Eventually(t, 5*time.Second, "dead-lettering", func() bool {
				h.receive(q, map[string]any{"max_messages": 10})
				return h.counts(dlq)["visible"] == 1.0
			})
			wantCounts(t, "source after dead-lettering", h.counts(q), 0, 0, 0)

			// Redrive brings it back, receive count reset.
			if r := c.Admin("POST", "/v1/queues/"+dlq+"/redrive", nil); r.Status != http.StatusOK || r.Data()["redriven"] != 1.0 {
				t.Fatalf("redrive: %d %s", r.Status, r.Body)
			}
			back := h.receive(q, map[string]any{"max_messages": 10, "visibility_timeout_seconds": 60})
			if len(back) != 1 || back[0]["id"] != ids[0] || back[0]["receive_count"] != 1.0 {
				t.Fatalf("after redrive: %v", back)
			}
			wantCounts(t, "dead-letter queue after redrive", h.counts(dlq), 0, 0, 0)

			// Change visibility to 0: visible again at once.
			if r := c.Admin("POST", "/v1/queues/"+q+"/visibility", map[string]any{"receipt_handle": back[0]["receipt_handle"], "visibility_timeout_seconds": 0}); r.Status != http.StatusOK {
				t.Fatalf("change visibility: %d %s", r.Status, r.Body)
			}
			again := h.receive(q, map[string]any{"max_messages": 1, "visibility_timeout_seconds": 60})
			if len(again) != 1 || again[0]["receive_count"] != 2.0 {
				t.Fatalf("after change visibility: %v", again)
			}
			// Ack deletes.
			if r := c.Admin("DELETE", "/v1/queues/"+q+"/messages/"+again[0]["receipt_handle"].(string), nil); r.Status != http.StatusOK {
				t.Fatalf("ack: %d %s", r.Status, r.Body)
			}
			wantCounts(t, "after ack", h.counts(q), 0, 0, 0)

			// A batch, then purge.
			batch := h.send(q, map[string]any{"messages": []map[string]any{{"body": "a"}, {"body": "b"}, {"body": "c"}}})
			if len(batch) != 3 {
				t.Fatalf("batch ids: %v", batch)
			}
			got := h.receive(q, map[string]any{"max_messages": 2, "visibility_timeout_seconds": 60})
			if len(got) != 2 || got[0]["body"] != "a" || got[1]["body"] != "b" {
				t.Fatalf("oldest first: %v", got)
			}
			wantCounts(t, "batch", h.counts(q), 1, 2, 0)
			list := c.Admin("GET", "/v1/queues", nil).List()
			if len(list) != 2 || list[0]["name"] != "jobs" || list[0]["approximate_messages"].(map[string]any)["in_flight"] != 2.0 {
				t.Errorf("list: %v", list)
			}
			if r := c.Admin("POST", "/v1/queues/"+q+"/purge", nil); r.Status != http.StatusOK || r.Data()["purged"] != 3.0 {
				t.Fatalf("purge: %d %s", r.Status, r.Body)
			}
			wantCounts(t, "after purge", h.counts(q), 0, 0, 0)

			// Delay: a queue with delay_seconds holds new messages back.
			delayed := h.create(map[string]any{"name": "later", "delay_seconds": 60})
			h.send(delayed, map[string]any{"body": "x"})
			wantCounts(t, "delayed", h.counts(delayed), 0, 0, 1)

			// A dead-letter target cannot be deleted while in use.
			if r := c.Admin("DELETE", "/v1/queues/"+dlq, nil); r.Status != http.StatusConflict {
				t.Errorf("delete a dead-letter target: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("DELETE", "/v1/queues/"+q, nil); r.Status != http.StatusOK {
				t.Errorf("delete: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("DELETE", "/v1/queues/"+dlq, nil); r.Status != http.StatusOK {
				t.Errorf("delete the dead-letter queue afterwards: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("GET", "/v1/queues/"+q, nil); r.Status != http.StatusNotFound {
				t.Errorf("deleted queue: %d", r.Status)
			}
		})
	}
}

// TestQueueLongPoll: a receiver waiting up to 10 s gets a message well under
// a second after it is sent, and an empty wait ends on time.
func TestQueueLongPoll(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			q := h.create(map[string]any{"name": "poll"})

			start := time.Now()
			if got := h.receive(q, map[string]any{"wait_time_seconds": 1}); len(got) != 0 {
				t.Fatalf("empty queue: %v", got)
			}
			if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
				t.Errorf("an empty 1 s wait took %v", d)
			}

			type result struct {
				msgs []map[string]any
				at   time.Time
			}
			done := make(chan result, 1)
			go func() {
				r := c.Admin("POST", "/v1/queues/"+q+"/receive", map[string]any{"wait_time_seconds": 10})
				var out []map[string]any
				if msgs, ok := r.Data()["messages"].([]any); ok {
					for _, m := range msgs {
						out = append(out, m.(map[string]any))
					}
				}
				done <- result{out, time.Now()}
			}()
			time.Sleep(300 * time.Millisecond) // let the receiver start waiting
			sentAt := time.Now()
			h.send(q, map[string]any{"body": "wake up"})
			select {
			case r := <-done:
				if len(r.msgs) != 1 || r.msgs[0]["body"] != "wake up" {
					t.Fatalf("long poll got %v", r.msgs)
				}
				if d := r.at.Sub(sentAt); d > 500*time.Millisecond {
					t.Errorf("long poll answered %v after the send", d)
				} else {
					t.Logf("long poll answered %v after the send", d)
				}
			case <-time.After(12 * time.Second):
				t.Fatal("long poll did not return")
			}
		})
	}
}

// TestQueueIsolationAndValidation: another project's queue is a 404, and
// every validation error names its field.
func TestQueueIsolationAndValidation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			q := h.create(map[string]any{"name": "mine"})
			h.send(q, map[string]any{"body": "secret"})
			_, other := c.NewProject("other")
			for _, req := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/v1/queues/" + q, nil},
				{"DELETE", "/v1/queues/" + q, nil},
				{"POST", "/v1/queues/" + q + "/messages", map[string]any{"body": "x"}},
				{"POST", "/v1/queues/" + q + "/receive", map[string]any{"max_messages": 10}},
				{"POST", "/v1/queues/" + q + "/purge", nil},
				{"POST", "/v1/queues/" + q + "/redrive", nil},
			} {
				if r := c.Do(req.method, req.path, other, req.body); r.Status != http.StatusNotFound || r.ErrorCode() != "not_found" {
					t.Errorf("other project %s %s: %d %s", req.method, req.path, r.Status, r.Body)
				}
			}
			if n := len(c.Do("GET", "/v1/queues", other, nil).List()); n != 0 {
				t.Errorf("other project lists %d queues", n)
			}
			// The same name in another project is fine; the dead-letter queue must be in the project.
			queueHelper{t, c, other}.create(map[string]any{"name": "mine"})
			if r := c.Do("POST", "/v1/queues", other, map[string]any{"name": "x", "max_receive_count": 1, "dead_letter_queue": q}); r.ErrorField() != "dead_letter_queue" {
				t.Errorf("dead-letter queue of another project: %d %s", r.Status, r.Body)
			}
			wantCounts(t, "untouched", h.counts(q), 1, 0, 0)

			big := strings.Repeat("x", 256<<10+1)
			eleven := make([]map[string]any, 11)
			for i := range eleven {
				eleven[i] = map[string]any{"body": "m"}
			}
			for _, tc := range []struct {
				path  string
				body  any
				field string
			}{
				{"/v1/queues", map[string]any{}, "name"},
				{"/v1/queues", map[string]any{"name": "bad name!"}, "name"},
				{"/v1/queues", map[string]any{"name": strings.Repeat("a", 81)}, "name"},
				{"/v1/queues", map[string]any{"name": "v", "visibility_timeout_seconds": 43201}, "visibility_timeout_seconds"},
				{"/v1/queues", map[string]any{"name": "v", "visibility_timeout_seconds": "30"}, "visibility_timeout_seconds"},
				{"/v1/queues", map[string]any{"name": "r", "retention_seconds": 59}, "retention_seconds"},
				{"/v1/queues", map[string]any{"name": "d", "delay_seconds": 901}, "delay_seconds"},
				{"/v1/queues", map[string]any{"name": "m", "max_receive_count": 3}, "dead_letter_queue"},
				{"/v1/queues", map[string]any{"name": "m", "max_receive_count": 3, "dead_letter_queue": "nope"}, "dead_letter_queue"},
				{"/v1/queues", map[string]any{"name": "m", "dead_letter_queue": "mine"}, "max_receive_count"},
				{"/v1/queues", map[string]any{"name": "u", "colour": "red"}, "colour"},
				{"/v1/queues/" + q + "/messages", map[string]any{}, "body"},
				{"/v1/queues/" + q + "/messages", map[string]any{"body": 5}, "body"},
				{"/v1/queues/" + q + "/messages", map[string]any{"body": ""}, "body"},
				{"/v1/queues/" + q + "/messages", map[string]any{"body": big}, "body"},
				{"/v1/queues/" + q + "/messages", map[string]any{"messages": eleven}, "messages"},
				{"/v1/queues/" + q + "/messages", map[string]any{"messages": []map[string]any{{"body": "ok"}, {}}}, "messages[1].body"},
				{"/v1/queues/" + q + "/receive", map[string]any{"max_messages": 11}, "max_messages"},
				{"/v1/queues/" + q + "/receive", map[string]any{"max_messages": 0}, "max_messages"},
				{"/v1/queues/" + q + "/receive", map[string]any{"wait_time_seconds": 21}, "wait_time_seconds"},
				{"/v1/queues/" + q + "/receive", map[string]any{"visibility_timeout_seconds": -1}, "visibility_timeout_seconds"},
				{"/v1/queues/" + q + "/visibility", map[string]any{"visibility_timeout_seconds": 5}, "receipt_handle"},
				{"/v1/queues/" + q + "/visibility", map[string]any{"receipt_handle": "nope", "visibility_timeout_seconds": 5}, "receipt_handle"},
				{"/v1/subscriptions", map[string]any{"name": "s", "event_types": []string{"*"}, "destination": map[string]any{"type": "queue"}}, "destination.queue"},
				{"/v1/subscriptions", map[string]any{"name": "s", "event_types": []string{"*"}, "destination": map[string]any{"type": "queue", "queue": "nope"}}, "destination.queue"},
				{"/v1/subscriptions", map[string]any{"name": "s", "event_types": []string{"*"}, "destination": map[string]any{"type": "queue", "queue": "mine", "fifo": true}}, "destination.fifo"},
			} {
				r := c.Admin("POST", tc.path, tc.body)
				if r.Status/100 != 4 || r.ErrorField() != tc.field {
					b, _ := json.Marshal(tc.body)
					t.Errorf("POST %s %.200s: %d %s, want field %s", tc.path, b, r.Status, r.Body, tc.field)
				}
			}
			if r := c.Admin("POST", "/v1/queues", map[string]any{"name": "mine"}); r.Status != http.StatusConflict {
				t.Errorf("duplicate name: %d %s", r.Status, r.Body)
			}
			wantCounts(t, "nothing changed", h.counts(q), 1, 0, 0)
		})
	}
}

// TestQueueDestination: a subscription with a queue destination puts
// task.solved events into the queue wrapped in the SNS envelope (or raw), and
// a replayed delivery does not enqueue a second copy.
func TestQueueDestination(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			results := h.create(map[string]any{"name": "results"})
			rawQ := h.create(map[string]any{"name": "raw-results"})
			r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "to queue", "event_types": []string{"task.solved"},
				"destination": map[string]any{"type": "queue", "queue": "results"}})
			if r.Status != http.StatusCreated {
				t.Fatalf("create subscription: %d %s", r.Status, r.Body)
			}
			subID := r.Data()["subscription_id"].(string)
			if d := r.Data()["subscription"].(map[string]any)["destination"].(map[string]any); d["type"] != "queue" || d["queue"] != "results" {
				t.Errorf("destination shown as %v", d)
			}
			if r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "raw", "event_types": []string{"task.*"},
				"destination": map[string]any{"type": "queue", "queue": rawQ, "raw": true}}); r.Status != http.StatusCreated {
				t.Fatalf("create raw subscription: %d %s", r.Status, r.Body)
			}
			eventID := c.Publish(apptest.AdminKey, map[string]any{"type": "task.solved", "subject": "task-42",
				"data": map[string]any{"task_id": "task-42", "solution": "03AGdBq"}, "attributes": map[string]string{"method": "userrecaptcha"}})

			got := h.receive(results, map[string]any{"wait_time_seconds": 10, "visibility_timeout_seconds": 60})
			if len(got) != 1 {
				t.Fatalf("queue destination: got %v", got)
			}
			var env struct {
				Type, MessageId, TopicArn, Subject, Message, Timestamp string
				MessageAttributes                                      map[string]struct{ Type, Value string }
			}
			if err := json.Unmarshal([]byte(got[0]["body"].(string)), &env); err != nil {
				t.Fatalf("envelope: %v: %s", err, got[0]["body"])
			}
			if env.Type != "Notification" || env.TopicArn != "arn:carrier:default:task.solved" || env.Subject != "task.solved" ||
				env.MessageId == "" || env.Timestamp == "" || env.MessageAttributes["method"].Value != "userrecaptcha" || env.MessageAttributes["method"].Type != "String" {
				t.Errorf("envelope: %+v", env)
			}
			// What the source document's consumer does: json.loads(body)["Message"].
			var ev struct {
				ID, Type, Timestamp, Subject string
				Data                         map[string]any
				Attributes                   map[string]string
			}
			if err := json.Unmarshal([]byte(env.Message), &ev); err != nil {
				t.Fatalf("Message: %v: %s", err, env.Message)
			}
			if ev.ID != eventID || ev.Type != "task.solved" || ev.Subject != "task-42" || ev.Data["solution"] != "03AGdBq" || ev.Attributes["method"] != "userrecaptcha" {
				t.Errorf("event in Message: %+v", ev)
			}

			raw := h.receive(rawQ, map[string]any{"wait_time_seconds": 10})
			if len(raw) != 1 {
				t.Fatalf("raw queue destination: got %v", raw)
			}
			var rawEv map[string]any
			if err := json.Unmarshal([]byte(raw[0]["body"].(string)), &rawEv); err != nil || rawEv["id"] != eventID || rawEv["type"] != "task.solved" {
				t.Errorf("raw body: %v %s", err, raw[0]["body"])
			}

			// The delivery is recorded as delivered; replaying it does not enqueue again
			// while its message is still in the queue (the delivery id dedupes).
			var deliveryID string
			apptest.Eventually(t, 5*time.Second, "delivered", func() bool {
				list := c.Admin("GET", "/v1/subscriptions/"+subID+"/deliveries", nil).List()
				if len(list) == 1 && list[0]["status"] == "delivered" {
					deliveryID = list[0]["uuid"].(string)
					return true
				}
				return false
			})
			if env.MessageId != deliveryID {
				t.Errorf("MessageId %q, want the delivery id %q", env.MessageId, deliveryID)
			}
			if r := c.Admin("POST", "/v1/subscriptions/"+subID+"/deliveries/"+deliveryID+"/replay", nil); r.Status/100 != 2 {
				t.Fatalf("replay: %d %s", r.Status, r.Body)
			}
			var last map[string]any
			apptest.Eventually(t, 5*time.Second, "replayed", func() bool {
				last = c.Admin("GET", "/v1/subscriptions/"+subID+"/deliveries/"+deliveryID, nil).Data()
				d, _ := last["delivery"].(map[string]any)
				return d["status"] == "delivered" && d["attempt_number"] == 2.0
			})
			// Both attempts name the same message.
			if at, _ := last["attempts"].([]any); len(at) != 2 || at[0].(map[string]any)["response_body"] != at[1].(map[string]any)["response_body"] {
				t.Errorf("attempts: %v", last["attempts"])
			}
			wantCounts(t, "after replay", h.counts(results), 0, 1, 0)
		})
	}
}
