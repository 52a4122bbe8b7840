package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/ingest"
	"carrier/internal/store/storetest"
)

// TestSpoolDeadLettersRedrive: a spooled publish the store refused for good
// is listed under /v1/dead-letters (source=spool), and redriven through the
// same endpoints as a pingback's dead letter, async tasks off: refused while
// the cause lasts (422, still pending), stored once it is gone, then 409.
func TestSpoolDeadLettersRedrive(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			if c.App.Tasks != nil {
				t.Fatal("this test wants async tasks off")
			}
			ctx := context.Background()
			pid, key := c.NewProject("spooled")
			ep := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(key, map[string]any{"webhook_url": ep.URL, "event_types": []string{"late"}})
			taken := c.Publish(key, map[string]any{"type": "first"})

			// A spooled publish whose event id the store already holds: what
			// a replay after a crash, or an id reused by a bug, looks like.
			if err := c.App.Spooler.Publish(ingest.Input{ProjectID: pid, Type: "late", Subject: "spooled", EventID: taken, IdempotencyKey: "k-late"}); err != nil {
				t.Fatal(err)
			}
			var dead []map[string]any
			deadline := time.Now().Add(15 * time.Second)
			for len(dead) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				dead = c.Do("GET", "/v1/dead-letters?source=spool", key, nil).List()
			}
			if len(dead) != 1 || dead[0]["source"] != "spool" || dead[0]["status"] != "pending" {
				t.Fatalf("spool dead letters: %v", dead)
			}
			if other := c.Do("GET", "/v1/dead-letters?source=callback", key, nil).List(); len(other) != 0 {
				t.Errorf("source=callback lists %v", other)
			}
			if bad := c.Do("GET", "/v1/dead-letters?source=disk", key, nil); bad.Status != http.StatusBadRequest || bad.ErrorField() != "source" {
				t.Errorf("source=disk: %d %s", bad.Status, bad.Body)
			}
			id := dead[0]["id"].(string)

			r := c.Do("POST", "/v1/dead-letters/"+id+"/redrive", key, nil)
			if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "not_processable" {
				t.Fatalf("redrive while the id is taken: %d %s", r.Status, r.Body)
			}
			if got := c.Do("GET", "/v1/dead-letters/"+id, key, nil).Data(); got["status"] != "pending" || got["redrives"] != float64(1) || got["last_error"] == "" {
				t.Errorf("after a refused redrive: %v", got)
			}

			if _, err := c.App.Store.Prune(ctx, time.Now().Add(time.Hour), 1000); err != nil {
				t.Fatal(err)
			}
			bulk := c.Do("POST", "/v1/dead-letters/redrive?source=spool", key, nil)
			if bulk.Status != http.StatusOK || bulk.Data()["redriven"] != float64(1) {
				t.Fatalf("bulk redrive: %d %s", bulk.Status, bulk.Body)
			}
			if ev := c.Do("GET", "/v1/events/"+taken, key, nil); ev.Status != http.StatusOK || ev.Data()["type"] != "late" {
				t.Errorf("redriven event: %d %s", ev.Status, ev.Body)
			}
			if got := ep.WaitRequests(t, 1, 15*time.Second); len(got) != 1 {
				t.Errorf("%d deliveries of the redriven event", len(got))
			}
			if r := c.Do("POST", "/v1/dead-letters/"+id+"/redrive", key, nil); r.Status != http.StatusConflict {
				t.Errorf("second redrive: %d %s", r.Status, r.Body)
			}
		})
	}
}
