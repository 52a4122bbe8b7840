package app_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/match"
	"carrier/internal/store/storetest"
)

// fifoRecorder is a webhook endpoint that answers 500 where fail says so and
// records, per ordering key, the sequence numbers it answered 2xx, in order.
type fifoRecorder struct {
	mu   sync.Mutex
	got  map[string][]int
	ep   *apptest.Endpoint
	fail func(key string, seq int) bool
}

func newFIFORecorder(t *testing.T, fail func(key string, seq int) bool) *fifoRecorder {
	f := &fifoRecorder{got: map[string][]int{}, fail: fail}
	f.ep = apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
		var body struct {
			Data struct {
				Key string `json:"key"`
				Seq int    `json:"seq"`
			} `json:"data"`
		}
		json.Unmarshal(r.Body, &body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fail(body.Data.Key, body.Data.Seq) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		f.got[body.Data.Key] = append(f.got[body.Data.Key], body.Data.Seq)
		w.WriteHeader(http.StatusOK)
	})
	return f
}

func (f *fifoRecorder) delivered(key string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.got[key]...)
}

// checkInOrder fails unless key received exactly 0..n-1, in that order.
func (f *fifoRecorder) checkInOrder(t *testing.T, key string, n int) {
	t.Helper()
	got := f.delivered(key)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("key %s received %v, want %v", key, got, want)
	}
}

// publishInterleaved publishes per events to each key, round-robin over nodes.
func publishInterleaved(t *testing.T, nodes []*apptest.Carrier, keys []string, per int) {
	t.Helper()
	n := 0
	for i := range per {
		for _, k := range keys {
			nodes[n%len(nodes)].Publish(apptest.AdminKey, map[string]any{"type": "job.done", "ordering_key": k,
				"data": map[string]any{"key": k, "seq": i}})
			n++
		}
	}
}

// TestFIFOOrderWithRandomFailures sends five ordering keys' events, published
// interleaved, to a FIFO webhook that fails 30% of requests at random: each key
// receives every event once, in publish order.
func TestFIFOOrderWithRandomFailures(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			runFIFORandom(t, []*apptest.Carrier{c})
		})
	}
}

// TestFIFOTwoNodes runs the same on two Carrier processes sharing one
// PostgreSQL database, publishing through both.
func TestFIFOTwoNodes(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		if e.Name != "postgres" {
			continue // SQLite is one process by design
		}
		t.Run(e.Name, func(t *testing.T) {
			a := apptest.Start(t, e, apptest.Options{})
			b := apptest.Start(t, e, apptest.Options{})
			runFIFORandom(t, []*apptest.Carrier{a, b})
		})
	}
}

func runFIFORandom(t *testing.T, nodes []*apptest.Carrier) {
	rng := rand.New(rand.NewPCG(1, 2))
	rec := newFIFORecorder(t, func(string, int) bool { return rng.Float64() < 0.3 })
	id, _ := nodes[0].CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": rec.ep.URL, "event_types": []string{"job.done"},
		"ordering": "fifo", "max_retries": 10, "retry_backoff_multiplier": 1})
	r := nodes[0].Admin("GET", "/v1/webhooks/"+id, nil)
	if got := r.Data()["ordering"]; got != "fifo" {
		t.Fatalf("webhook ordering = %v, want fifo (%s)", got, r.Body)
	}
	for _, n := range nodes[1:] {
		apptest.Eventually(t, 5*time.Second, "other node sees the webhook", func() bool {
			return n.App.Matcher.Index().Match("default", match.Event{Type: "job.done"}) != nil
		})
	}
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	const per = 20
	publishInterleaved(t, nodes, keys, per)
	apptest.Eventually(t, 30*time.Second, "every event delivered", func() bool {
		for _, k := range keys {
			if len(rec.delivered(k)) < per {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // let any duplicate show up
	for _, k := range keys {
		rec.checkInOrder(t, k, per)
	}
	t.Logf("%d requests for %d events", len(rec.ep.Requests()), per*len(keys))
	for i, n := range nodes {
		t.Logf("node %d delivered %d", i, deliveredCount(t, n))
	}
}

// TestFIFOFailingHeadBlocksOnlyItsKey keeps one key's head failing: another
// key's events are all delivered, in order, while that head is still retrying
// and nothing behind it has been sent.
func TestFIFOFailingHeadBlocksOnlyItsKey(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			rec := newFIFORecorder(t, func(key string, _ int) bool { return key == "bad" })
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": rec.ep.URL, "event_types": []string{"job.done"},
				"ordering": "fifo", "max_retries": 10})
			const per = 20
			publishInterleaved(t, []*apptest.Carrier{c}, []string{"bad", "good"}, per)
			apptest.Eventually(t, 15*time.Second, "the good key delivered", func() bool { return len(rec.delivered("good")) == per })
			rec.checkInOrder(t, "good", per)
			// The bad key's head is still retrying, and only it was ever sent.
			r := c.Admin("GET", "/v1/webhooks/"+id+"/deliveries?limit=100", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("list deliveries: %d %s", r.Status, r.Body)
			}
			var badSeqs = map[int]bool{}
			for _, req := range rec.ep.Requests() {
				var body struct {
					Data struct {
						Key string `json:"key"`
						Seq int    `json:"seq"`
					} `json:"data"`
				}
				json.Unmarshal(req.Body, &body)
				if body.Data.Key == "bad" {
					badSeqs[body.Data.Seq] = true
				}
			}
			if len(badSeqs) != 1 || !badSeqs[0] {
				t.Errorf("bad key: sequence numbers sent %v, want only its head 0", badSeqs)
			}
			retrying := 0
			for _, d := range r.List() {
				if d["status"] == "retrying" || d["state"] == "retrying" {
					retrying++
				}
			}
			if retrying != 1 {
				t.Errorf("%d deliveries retrying, want the bad key's head alone: %s", retrying, r.Body)
			}
		})
	}
}

// TestFIFOFieldsAndDeduplication checks the API fields: ordering on both
// subscription views, validation naming the field, and deduplication_id
// answering a repeat like a duplicate idempotency key.
func TestFIFOFieldsAndDeduplication(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			r := c.Admin("POST", "/v1/webhooks", map[string]any{"name": "x", "webhook_url": ep.URL, "event_types": []string{"job.done"}, "ordering": "lifo"})
			if r.Status != http.StatusBadRequest || r.ErrorField() != "ordering" {
				t.Errorf("bad ordering: %d %s", r.Status, r.Body)
			}
			r = c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "s", "event_types": []string{"job.done"}, "ordering": "fifo",
				"destination": map[string]any{"type": "webhook", "url": ep.URL}})
			if r.Status != http.StatusCreated {
				t.Fatalf("create subscription: %d %s", r.Status, r.Body)
			}
			id := r.Data()["subscription"].(map[string]any)["id"].(string)
			if got := c.Admin("GET", "/v1/subscriptions/"+id, nil).Data()["ordering"]; got != "fifo" {
				t.Errorf("subscription ordering = %v", got)
			}
			if got := c.Admin("GET", "/v1/webhooks/"+id, nil).Data()["ordering"]; got != "fifo" {
				t.Errorf("webhook view ordering = %v", got)
			}
			r = c.Admin("PUT", "/v1/subscriptions/"+id, map[string]any{"ordering": ""})
			if r.Status != http.StatusOK || r.Data()["ordering"] != "" {
				t.Errorf("clear ordering: %d %s", r.Status, r.Body)
			}
			long := fmt.Sprintf("%0129d", 0)
			for _, field := range []string{"ordering_key", "deduplication_id"} {
				r = c.Admin("POST", "/v1/events", map[string]any{"type": "job.done", field: long})
				if r.Status != http.StatusBadRequest || r.ErrorField() != field {
					t.Errorf("%s of 129 characters: %d %s", field, r.Status, r.Body)
				}
			}
			first := c.Publish(apptest.AdminKey, map[string]any{"type": "job.done", "deduplication_id": "d-1"})
			r = c.Admin("POST", "/v1/events", map[string]any{"type": "job.done", "deduplication_id": "d-1"})
			if r.Status != http.StatusOK || r.Data()["event_id"] != first || r.Data()["duplicate"] != true {
				t.Errorf("repeat deduplication_id: %d %s, want 200 duplicate of %s", r.Status, r.Body, first)
			}
			if other := c.Publish(apptest.AdminKey, map[string]any{"type": "job.done", "deduplication_id": "d-2"}); other == first {
				t.Errorf("another deduplication_id was a duplicate")
			}
		})
	}
}
