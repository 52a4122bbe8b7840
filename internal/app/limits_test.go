package app_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// TestListsAreBoundedByBytes: GET /v1/events over large events answers at most
// store.ListBytes of payload however high the limit (it held limit × 1 MiB in
// memory before), says that more follows, and paging by next_offset returns
// every event once.
func TestListsAreBoundedByBytes(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// No rate limit here: this test pages as fast as it can (the
			// rate is TestListReadsAreRateLimited's).
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.ListBytesPerSecond = 0 }})
			_, key := c.NewProject("big")
			blob := strings.Repeat("y", 900<<10)
			const n = 12
			for i := range n {
				c.Publish(key, map[string]any{"type": "big", "subject": strconv.Itoa(i), "data": map[string]any{"blob": blob}})
			}
			seen := map[string]bool{}
			offset := 0
			for page := 0; page < 20; page++ {
				resp := c.Do("GET", "/v1/events?limit=150&offset="+strconv.Itoa(offset), key, nil)
				if resp.Status != http.StatusOK {
					t.Fatalf("list events: %d %s", resp.Status, resp.Body)
				}
				list := resp.List()
				if max := store.ListBytes/(900<<10) + 1; len(list) > max {
					t.Fatalf("a page holds %d events of 900 KiB, want at most %d", len(list), max)
				}
				for _, ev := range list {
					id := ev["id"].(string)
					if seen[id] {
						t.Errorf("event %s listed twice", id)
					}
					seen[id] = true
				}
				meta := resp.JSON["meta"].(map[string]any)
				if meta["has_more"] != true {
					break
				}
				offset = int(meta["next_offset"].(float64))
			}
			if len(seen) != n {
				t.Errorf("paging listed %d events, want %d", len(seen), n)
			}
		})
	}
}

// TestSubscriptionsPerProjectAreLimited: a project cannot have more than
// CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT subscriptions through either API or
// through in.php pingback hosts; another project is not affected.
func TestSubscriptionsPerProjectAreLimited(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
		cfg.MaxSubscriptionsPerProject = 3
		cfg.Simulate = true
	}})
	_, key := c.NewProject("many")
	ep := apptest.NewEndpoint(t, nil)
	c.CreateWebhook(key, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a"}})
	c.CreateWebhook(key, map[string]any{"webhook_url": ep.URL, "event_types": []string{"b"}})
	if r := c.Do("POST", "/v1/subscriptions", key, map[string]any{"name": "third", "event_types": []string{"c"},
		"destination": map[string]any{"type": "log", "file": "third.jsonl"}}); r.Status != http.StatusCreated {
		t.Fatalf("third subscription: %d %s", r.Status, r.Body)
	}
	for _, r := range []apptest.Response{
		c.Do("POST", "/v1/webhooks", key, map[string]any{"name": "fourth", "webhook_url": ep.URL, "event_types": []string{"d"}}),
		c.Do("POST", "/v1/subscriptions", key, map[string]any{"name": "fourth", "event_types": []string{"d"},
			"destination": map[string]any{"type": "webhook", "url": ep.URL}}),
	} {
		if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "limit_exceeded" || !strings.Contains(string(r.Body), "CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT") {
			t.Errorf("fourth subscription: %d %s, want 422 limit_exceeded naming the setting", r.Status, r.Body)
		}
	}
	got := legacyCall(t, c.URL, "/res.php", "query", map[string]string{"key": key, "action": "add_pingback", "addr": "127.0.0.1:9", "json": "1"})
	if !strings.Contains(got, "CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT") {
		t.Errorf("add_pingback past the limit: %s", got)
	}
	_, other := c.NewProject("other")
	c.CreateWebhook(other, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a"}})
}

// TestListReadsAreRateLimited: a project that lists large events in a loop
// is answered 429 with Retry-After once it read CARRIER_LIST_BYTES_PER_SECOND
// (plus the burst), while another project's lists go on; after the wait the
// first project may list again.
func TestListReadsAreRateLimited(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.ListBytesPerSecond = 1 << 20 }})
	_, reader := c.NewProject("reader")
	_, other := c.NewProject("other")
	blob := strings.Repeat("q", 900<<10)
	for range 3 {
		c.Publish(reader, map[string]any{"type": "big", "data": map[string]any{"blob": blob}})
	}
	limited := -1
	for i := 0; i < 20; i++ {
		r := c.Do("GET", "/v1/events?limit=100", reader, nil)
		if r.Status == http.StatusTooManyRequests {
			if r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "CARRIER_LIST_BYTES_PER_SECOND") {
				t.Fatalf("429 without its code, Retry-After or the setting: %v %s", r.Header, r.Body)
			}
			limited = i
			break
		}
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
	}
	if limited < 0 {
		t.Fatal("20 lists of about 1.8 MB each were never limited")
	}
	if r := c.Do("GET", "/v1/events?limit=100", other, nil); r.Status != http.StatusOK {
		t.Errorf("another project's list: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, 10*time.Second, "the reader may list again", func() bool {
		return c.Do("GET", "/v1/events?limit=1", reader, nil).Status == http.StatusOK
	})
}
