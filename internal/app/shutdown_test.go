package app_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
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

// TestShutdownRecordsInFlightSubmission stops Carrier while a task's
// submission is in flight at a provider that answers slowly: the submission
// is answered and recorded within the shutdown grace, so the task is
// submitted (and paid for) once. It was cancelled by the shutdown instead,
// submitted again after the restart, and its first result dead-lettered.
func TestShutdownRecordsInFlightSubmission(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// The provider takes (and charges for) the task at once and
			// answers 800 ms later; the shutdown grace is 2 s in tests. No
			// solve (an hour) and no pingback during the test.
			sim := simulator.New(simulator.Config{Key: simulator.DefaultKey, Balance: 100, MinDelay: time.Hour,
				Faults: simulator.Faults{SubmitDelay: 800 * time.Millisecond}})
			simURL, err := sim.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			opts := apptest.Options{
				Configure: func(cfg *config.Config) {
					cfg.ProviderURL, cfg.ProviderKey = simURL, simulator.DefaultKey
					cfg.CallbackTimeout, cfg.SubmitRetryBase = time.Minute, 50*time.Millisecond
				},
				Tasks: func(tc *task.Config) { tc.Tick = 50 * time.Millisecond },
			}
			c := apptest.Start(t, e, opts)
			r := c.Admin("POST", "/v1/tasks", map[string]any{"method": "userrecaptcha",
				"params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"}})
			if r.Status != http.StatusAccepted {
				t.Fatalf("create task: %d %s", r.Status, r.Body)
			}
			id := r.Data()["task_id"].(string)
			apptest.Eventually(t, 10*time.Second, "the submission to reach the provider", func() bool { return sim.Stats().Submits == 1 })
			if sim.Stats().Submits != 1 {
				t.Fatalf("provider saw %d submits before the stop", sim.Stats().Submits)
			}
			start := time.Now()
			c.Stop()
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("stop took %v", d)
			}

			c2 := apptest.Start(t, e, opts)
			got := c2.Admin("GET", "/v1/tasks/"+id, nil).Data()
			if want := strconv.Itoa(simulator.FirstID); got["status"] != "submitted" || got["provider_id"] != want {
				t.Fatalf("after the stop the task is %v with provider id %v, want submitted as %s: %v", got["status"], got["provider_id"], want, got)
			}
			// Time for the restarted submitter to go wrong (it ticks every 50 ms).
			time.Sleep(1500 * time.Millisecond)
			if st := sim.Stats(); st.Submits != 1 || st.SubmitsAccepted != 1 {
				t.Errorf("provider saw %d submits (%d accepted), want exactly one", st.Submits, st.SubmitsAccepted)
			}
			if got := c2.Admin("GET", "/v1/tasks/"+id, nil).Data(); got["provider_id"] != strconv.Itoa(simulator.FirstID) || got["submit_attempts"] != float64(1) {
				t.Errorf("after the restart: provider id %v, %v submit attempts; want %d, 1", got["provider_id"], got["submit_attempts"], simulator.FirstID)
			}
			if dl := c2.Admin("GET", "/v1/dead-letters", nil); dl.Status != http.StatusOK || len(dl.List()) != 0 {
				t.Errorf("dead letters after the restart: %d %s", dl.Status, dl.Body)
			}
		})
	}
}
