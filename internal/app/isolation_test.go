package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/match"
	"carrier/internal/store/storetest"
)

// TestIsolationSlowEndpointDoesNotDelayOthers subscribes a hanging endpoint and
// a healthy one to the same events: the healthy one receives every event while
// every request to the hanging one is still waiting for its timeout.
func TestIsolationSlowEndpointDoesNotDelayOthers(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			release := make(chan struct{})
			var slowStarted, slowFinished atomic.Int64
			slow := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
				slowStarted.Add(1)
				defer slowFinished.Add(1)
				select {
				case <-release:
				case <-time.After(60 * time.Second):
				}
			})
			defer close(release) // before the servers close
			fast := apptest.NewEndpoint(t, nil)
			// The longest timeout, so that on a slow machine no attempt to the
			// hanging endpoint times out (and is retried) while the test watches.
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": slow.URL, "event_types": []string{"job.done"}, "timeout_seconds": 60})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": fast.URL, "event_types": []string{"job.done"}})

			const events = 200
			for i := 0; i < events; i++ {
				c.Publish(apptest.AdminKey, map[string]any{"type": "job.done", "data": map[string]any{"i": i}})
			}
			fast.WaitRequests(t, events, 30*time.Second)
			if got := slowFinished.Load(); got != 0 {
				t.Fatalf("the slow endpoint finished %d requests; the test needs it to still be hanging", got)
			}
			lane := int64(c.Config.LaneConcurrency)
			if got := slowStarted.Load(); got > lane {
				t.Errorf("slow endpoint has %d requests in flight, want at most the lane limit %d", got, lane)
			}
			t.Logf("fast endpoint got all %d events while %d requests to the slow one hung", events, slowStarted.Load())
		})
	}
}

// TestMultiNodeSharesWorkWithoutDoubleClaims runs two Carrier processes on one
// PostgreSQL database: both publish, both deliver, and no delivery is attempted
// twice.
func TestMultiNodeSharesWorkWithoutDoubleClaims(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		if e.Name != "postgres" {
			continue // SQLite is one process by design (the data dir is locked)
		}
		t.Run(e.Name, func(t *testing.T) {
			a := apptest.Start(t, e, apptest.Options{})
			b := apptest.Start(t, e, apptest.Options{})
			var mu sync.Mutex
			seen := map[string]int{} // webhook-id -> requests
			ep := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
				mu.Lock()
				seen[r.Header.Get("webhook-id")]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			})
			a.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"job.done"}})
			// b learns about the webhook through the subscriptions version (polled each second).
			apptest.Eventually(t, 5*time.Second, "second node sees the webhook", func() bool {
				return b.App.Matcher.Index().Match("default", match.Event{Type: "job.done"}) != nil
			})

			const perNode = 300
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for _, node := range []*apptest.Carrier{a, b} {
				for w := 0; w < 4; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < perNode/4 && ctx.Err() == nil; i++ {
							r := node.Admin("POST", "/v1/events", map[string]any{"type": "job.done", "data": json.RawMessage(`{}`)})
							if r.Status != http.StatusAccepted {
								t.Errorf("publish: %d %s", r.Status, r.Body)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			ep.WaitRequests(t, 2*perNode, 20*time.Second)
			time.Sleep(300 * time.Millisecond) // let any double send show up
			mu.Lock()
			defer mu.Unlock()
			if got, want := len(seen), 2*perNode; got != want {
				t.Errorf("distinct deliveries received = %d, want %d", got, want)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("delivery %s was sent %d times", id, n)
				}
			}
			// Both nodes did some of the sending.
			for name, node := range map[string]*apptest.Carrier{"a": a, "b": b} {
				if n := deliveredCount(t, node); n == 0 {
					t.Errorf("node %s delivered nothing; the work was not shared", name)
				} else {
					t.Logf("node %s delivered %d", name, n)
				}
			}
		})
	}
}

var deliveredMetric = regexp.MustCompile(`(?m)^carrier_deliveries_total\{outcome="delivered"\} (\d+)`)

// deliveredCount reads a node's delivered counter from /metrics.
func deliveredCount(t *testing.T, c *apptest.Carrier) int {
	t.Helper()
	r := c.Do("GET", "/metrics", "", nil)
	m := deliveredMetric.FindSubmatch(r.Body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
