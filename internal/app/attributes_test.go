package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestPublishNumberAndBooleanAttributes: SNS Number attributes arrive from
// JSON clients as numbers. POST /v1/events keeps numbers (exactly as
// written) and booleans as their string form, so a numeric filter policy
// matches the number 5 and an exact match matches true; the stored event
// and the delivered one show "price":"5". A value without a string form is
// refused with the attribute named in "field".
func TestPublishNumberAndBooleanAttributes(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			h := queueHelper{t, c, apptest.AdminKey}
			q := h.create(map[string]any{"name": "priced"})
			for _, sub := range []map[string]any{
				{"name": "expensive", "event_types": []string{"order.*"}, "filter_policy": map[string]any{"price": []any{map[string]any{"numeric": []any{">", 3}}}},
					"destination": map[string]any{"type": "queue", "queue": q, "raw": true}},
				{"name": "vip", "event_types": []string{"order.*"}, "filter_policy": map[string]any{"vip": []string{"true"}},
					"destination": map[string]any{"type": "log", "file": "vip.jsonl"}},
			} {
				if r := c.Admin("POST", "/v1/subscriptions", sub); r.Status != http.StatusCreated {
					t.Fatalf("create subscription %s: %d %s", sub["name"], r.Status, r.Body)
				}
			}

			publish := func(body string) apptest.Response {
				t.Helper()
				return c.Admin("POST", "/v1/events", body)
			}
			// The number 5 passes ">3"; 2 does not; true matches ["true"].
			r := publish(`{"type":"order.paid","attributes":{"price":5,"exact":5.50,"tiny":-1e3,"vip":true,"gift":false,"name":"tea"}}`)
			if r.Status != http.StatusAccepted || r.Data()["deliveries"] != float64(2) {
				t.Fatalf("publish with a number and a boolean: %d %s, want 202 with 2 deliveries (price > 3, vip = true)", r.Status, r.Body)
			}
			matched := r.Data()["event_id"].(string)
			if r := publish(`{"type":"order.paid","attributes":{"price":2,"vip":false}}`); r.Status != http.StatusAccepted || r.Data()["deliveries"] != float64(0) {
				t.Errorf("publish price 2, vip false: %d %s, want 202 with 0 deliveries", r.Status, r.Body)
			}

			want := map[string]any{"price": "5", "exact": "5.50", "tiny": "-1e3", "vip": "true", "gift": "false", "name": "tea"}
			stored := c.Admin("GET", "/v1/events/"+matched, nil)
			if got, _ := stored.Data()["attributes"].(map[string]any); !equalAttrs(got, want) {
				t.Errorf("stored attributes %v, want %v", got, want)
			}
			if !strings.Contains(string(stored.Body), `"price":"5"`) {
				t.Errorf("stored event does not show \"price\":\"5\": %s", stored.Body)
			}
			got := h.receive(q, map[string]any{"wait_time_seconds": 10})
			if len(got) != 1 {
				t.Fatalf("queue received %d messages, want the one event with price 5", len(got))
			}
			body := got[0]["body"].(string)
			var delivered struct {
				ID         string         `json:"id"`
				Attributes map[string]any `json:"attributes"`
			}
			if err := json.Unmarshal([]byte(body), &delivered); err != nil || delivered.ID != matched || !equalAttrs(delivered.Attributes, want) {
				t.Errorf("delivered event %s (%v), want id %s with attributes %v", body, err, matched, want)
			}
			if !strings.Contains(body, `"price":"5"`) {
				t.Errorf("delivered event does not show \"price\":\"5\": %s", body)
			}

			// Values without a string form name the attribute and the rule.
			for _, bad := range []struct{ attrs, field, got string }{
				{`{"price":null}`, "attributes.price", "null"},
				{`{"ok":"x","size":{"w":1}}`, "attributes.size", "an object"},
				{`{"tags":["a","b"]}`, "attributes.tags", "an array"},
			} {
				r := publish(`{"type":"order.paid","attributes":` + bad.attrs + `}`)
				e, _ := r.JSON["error"].(map[string]any)
				msg, _ := e["message"].(string)
				if r.Status != http.StatusBadRequest || r.ErrorCode() != "validation_error" || r.ErrorField() != bad.field ||
					!strings.Contains(msg, "must be a string, a number or a boolean") || !strings.Contains(msg, bad.got) {
					t.Errorf("attributes %s: %d %s, want 400 validation_error on %s saying what it must be and that it is %s", bad.attrs, r.Status, r.Body, bad.field, bad.got)
				}
			}
			if n := len(c.Admin("GET", "/v1/events", nil).List()); n != 2 {
				t.Errorf("%d events stored, want the 2 valid publishes only", n)
			}
		})
	}
}

func equalAttrs(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
