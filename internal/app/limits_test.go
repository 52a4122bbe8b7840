package app_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

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
			c := apptest.Start(t, e, apptest.Options{})
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
