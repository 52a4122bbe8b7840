package app_test

import (
	"net/http"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestShutdownFinishesInFlightAttempts stops Carrier while an attempt is in
// flight: the attempt completes and is recorded, and nothing is sent twice.
func TestShutdownFinishesInFlightAttempts(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ep := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
				time.Sleep(300 * time.Millisecond)
			})
			c := apptest.Start(t, e, apptest.Options{})
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"job.done"}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "job.done"})
			ep.WaitRequests(t, 1, 10*time.Second)
			c.Stop()

			c2 := apptest.Start(t, e, apptest.Options{})
			r := c2.Admin("GET", "/v1/webhooks/"+id+"/deliveries", nil)
			if l := r.List(); len(l) != 1 || l[0]["status"] != "delivered" {
				t.Fatalf("after a graceful stop the in-flight delivery should be recorded delivered: %s", r.Body)
			}
			time.Sleep(300 * time.Millisecond)
			if got := len(ep.Requests()); got != 1 {
				t.Errorf("endpoint received %d requests, want 1", got)
			}
		})
	}
}

// TestShutdownReleasesUnfinishedAttempts stops Carrier while an attempt hangs
// past the shutdown grace: its lease is released, and the next start sends it
// again at once with the same webhook-id.
func TestShutdownReleasesUnfinishedAttempts(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			release := make(chan struct{})
			ep := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
				if n == 0 {
					select {
					case <-release:
					case <-time.After(15 * time.Second):
					}
				}
			})
			defer close(release)
			c := apptest.Start(t, e, apptest.Options{})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"job.done"}, "timeout_seconds": 30})
			c.Publish(apptest.AdminKey, map[string]any{"type": "job.done"})
			ep.WaitRequests(t, 1, 10*time.Second)
			start := time.Now()
			c.Stop() // grace is 2 s in tests
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("stop took %v", d)
			}

			apptest.Start(t, e, apptest.Options{})
			reqs := ep.WaitRequests(t, 2, 10*time.Second)
			if a, b := reqs[0].Header.Get("webhook-id"), reqs[1].Header.Get("webhook-id"); a != b {
				t.Errorf("resent with webhook-id %s, first was %s", b, a)
			}
		})
	}
}
