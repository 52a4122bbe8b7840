package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/app/apptest"
	"carrier/internal/ingest"
	"carrier/internal/outage"
	"carrier/internal/store/storetest"
)

// TestNULAndInvalidUTF8AreRefusedByName sends, on both engines, a NUL
// (escaped, as JSON carries it) and an invalid UTF-8 byte in every kind of
// text Carrier stores, and wants 400 naming the field each time: PostgreSQL
// refuses both in text, SQLite keeps them, and before this a NUL answered 500
// (a webhook, a project, a queue message) or was spooled (a publish) on
// PostgreSQL only. The same text without the bad character is accepted.
func TestNULAndInvalidUTF8AreRefusedByName(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{})
			c := r.c
			q := c.Admin("POST", "/v1/queues", map[string]any{"name": "bodies"})
			if q.Status != http.StatusCreated {
				t.Fatalf("create queue: %d %s", q.Status, q.Body)
			}
			queueID := q.Data()["id"].(string)
			hook := `"webhook_url": "http://127.0.0.1:9/hook", "event_types": ["a.b"]`
			// Each body has one BAD where the bad character goes, and names
			// the field the error must name.
			for _, tc := range []struct{ path, body, field string }{
				{"/v1/events", `{"type": "a.b", "subject": "xBADy"}`, "subject"},
				{"/v1/events", `{"type": "a.BAD"}`, "type"},
				{"/v1/events", `{"type": "a.b", "idempotency_key": "kBAD"}`, "idempotency_key"},
				{"/v1/events", `{"type": "a.b", "deduplication_id": "dBAD"}`, "deduplication_id"},
				{"/v1/events", `{"type": "a.b", "ordering_key": "oBAD"}`, "ordering_key"},
				{"/v1/events", `{"type": "a.b", "attributes": {"k": "vBAD"}}`, "attributes.k"},
				{"/v1/events", `{"type": "a.b", "data": {"list": [1, {"deep": "BAD"}]}}`, "data.list[1].deep"},
				{"/v1/webhooks", `{"name": "nBAD", ` + hook + `}`, "name"},
				{"/v1/webhooks", `{"name": "n", "description": "dBAD", ` + hook + `}`, "description"},
				{"/v1/webhooks", `{"name": "n", "tags": ["ok", "tBAD"], ` + hook + `}`, "tags[1]"},
				{"/v1/webhooks", `{"name": "n", "metadata": {"m": "BAD"}, ` + hook + `}`, "metadata.m"},
				{"/v1/subscriptions", `{"name": "sBAD", "event_types": ["a.b"], "destination": {"type": "queue", "queue": "bodies"}}`, "name"},
				{"/v1/projects", `{"name": "pBAD"}`, "name"},
				{"/v1/queues", `{"name": "qBAD"}`, "name"},
				{"/v1/queues/" + queueID + "/messages", `{"body": "bBAD"}`, "body"},
				{"/v1/queues/" + queueID + "/messages", `{"body": "b", "attributes": {"a": "BAD"}}`, "attributes.a"},
				{"/v1/tasks", `{"method": "userrecaptcha", "params": {"googlekey": "gBAD", "pageurl": "https://example.com/"}}`, "params.googlekey"},
				{"/v1/tasks", `{"method": "userrecaptcha", "params": {"googlekey": "g", "pageurl": "https://example.com/"}, "metadata": {"m": "BAD"}}`, "metadata.m"},
			} {
				for _, bad := range []struct{ name, text string }{{"NUL", `\u0000`}, {"invalid UTF-8", "\xff"}} {
					got := c.Admin("POST", tc.path, strings.Replace(tc.body, "BAD", bad.text, 1))
					if got.Status != http.StatusBadRequest || got.ErrorField() != tc.field {
						t.Errorf("POST %s with %s in %s: %d %s; want 400 naming %s", tc.path, bad.name, tc.field, got.Status, got.Body, tc.field)
					}
				}
				if got := c.Admin("POST", tc.path, strings.Replace(tc.body, "BAD", "fine", 1)); got.Status >= 300 {
					t.Errorf("POST %s without the bad character: %d %s; want it accepted", tc.path, got.Status, got.Body)
				}
			}
		})
	}
}

// TestBurstWithOneBadPublishLosesNone publishes a burst from one project with
// one NUL subject among it, concurrently, so the publishes share group
// commits: the bad one is refused with 400, and every acknowledged one is in
// the store at once (none spooled, none lost).
func TestBurstWithOneBadPublishLosesNone(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			_, key := c.NewProject("burst")
			const n, bad = 60, 31
			got := make([]apptest.Response, n)
			var wg sync.WaitGroup
			for i := range n {
				subject := fmt.Sprintf("job-%d", i)
				if i == bad {
					subject = "job\x00bad"
				}
				wg.Go(func() {
					got[i] = c.Do("POST", "/v1/events", key, map[string]any{"type": "scrape.completed", "subject": subject})
				})
			}
			wg.Wait()
			for i, r := range got {
				if i == bad {
					if r.Status != http.StatusBadRequest || r.ErrorField() != "subject" {
						t.Errorf("bad publish: %d %s; want 400 naming subject", r.Status, r.Body)
					}
					continue
				}
				if r.Status != http.StatusAccepted || r.Data()["spooled"] == true {
					t.Errorf("publish %d: %d %s; want 202, committed", i, r.Status, r.Body)
					continue
				}
				id := r.Data()["event_id"].(string)
				if ev := c.Do("GET", "/v1/events/"+id, key, nil); ev.Status != http.StatusOK || ev.Data()["subject"] != fmt.Sprintf("job-%d", i) {
					t.Errorf("acknowledged event %d (%s) not stored: %d %s", i, id, ev.Status, ev.Body)
				}
			}
		})
	}
}

// TestRefusedSpoolRecordIsADeadLetter puts a publish the store refuses into
// the running process's spool, ahead of a good one (as a spool written before
// validation refused NUL could hold): it becomes a dead letter listed in
// /v1/dead-letters, the good one is stored, and /readyz is ready again.
func TestRefusedSpoolRecordIsADeadLetter(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			pid, key := c.NewProject("spooled")
			badID, goodID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
			for _, in := range []ingest.Input{
				{ProjectID: pid, Type: "a.b", Subject: "x\x00y", EventID: badID, IdempotencyKey: "bad"},
				{ProjectID: pid, Type: "a.b", Subject: "fine", EventID: goodID, IdempotencyKey: "good"},
			} {
				if err := c.App.Spooler.Publish(in); err != nil {
					t.Fatal(err)
				}
			}
			apptest.Eventually(t, 15*time.Second, "spool drained and /readyz ready", func() bool {
				r := c.Do("GET", "/readyz", "", nil)
				return r.JSON["status"] == "ready"
			})
			if ev := c.Do("GET", "/v1/events/"+goodID, key, nil); ev.Status != http.StatusOK {
				t.Errorf("good spooled publish not stored: %d %s", ev.Status, ev.Body)
			}
			if ev := c.Do("GET", "/v1/events/"+badID, key, nil); ev.Status != http.StatusNotFound {
				t.Errorf("refused publish: %d %s; want 404", ev.Status, ev.Body)
			}
			dl := c.Do("GET", "/v1/dead-letters", key, nil)
			list := dl.List()
			if dl.Status != http.StatusOK || len(list) != 1 || list[0]["source"] != outage.DeadLetterSource || list[0]["reason"] != outage.ReasonRejected ||
				!strings.Contains(list[0]["body"].(string), badID) {
				t.Errorf("dead letters: %d %s; want the refused record, source %s", dl.Status, dl.Body, outage.DeadLetterSource)
			}
		})
	}
}
