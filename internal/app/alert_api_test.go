package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// TestAlertRulesAPI: rules and silences through /v1, with the built-in
// rules for a new project, field-naming errors that change nothing,
// tenant isolation, and a test notification delivered to a subscriber of
// alert.* through the outbox.
func TestAlertRulesAPI(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.AlertDefaults = true
				cfg.AlertInterval = 100 * time.Millisecond
			}})
			_, keyA := c.NewProject("a")
			_, keyB := c.NewProject("b")

			rules := c.Do("GET", "/v1/alert-rules", keyA, nil).List()
			names := map[string]bool{}
			for _, r := range rules {
				names[r["name"].(string)] = true
			}
			for _, want := range []string{"Balance", "Balance check failing", "Error rate spike", "Queue backup", "Endpoint disabled", "Dead letters", "Daily summary"} {
				if !names[want] {
					t.Errorf("new project's rules %v lack %q", names, want)
				}
			}

			bad := []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"name": "x", "metric": "provider.balance", "tiers": []any{map[string]any{"severity": "warning", "fire": 10, "clear": 5}}}, "tiers[0].clear"},
				{map[string]any{"name": "x", "metric": "nope"}, "metric"},
				{map[string]any{"name": "x", "metric": "task.error_rate", "tiers": []any{map[string]any{"severity": "warning", "fire": 0.1}}}, "window"},
				{map[string]any{"name": "x", "metric": "provider.balance", "tierz": 1}, "tierz"},
			}
			for _, b := range bad {
				r := c.Do("POST", "/v1/alert-rules", keyA, b.body)
				if r.Status != http.StatusBadRequest || r.ErrorField() != b.field {
					t.Errorf("POST %v: %d %s, want 400 naming %s", b.body, r.Status, r.Body, b.field)
				}
			}
			if n := len(c.Do("GET", "/v1/alert-rules", keyA, nil).List()); n != len(rules) {
				t.Errorf("refused rules changed the list: %d rules, want %d", n, len(rules))
			}

			r := c.Do("POST", "/v1/alert-rules", keyA, map[string]any{"name": "low balance", "metric": "provider.balance",
				"tiers": []any{map[string]any{"severity": "warning", "fire": 50, "clear": 60}}, "repeat_interval": "1h"})
			if r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			id := r.Data()["id"].(string)
			if r.Data()["enabled"] != true || r.Data()["op"] != "below" || r.Data()["repeat_interval"] != "1h0m0s" {
				t.Errorf("created rule = %v", r.Data())
			}
			if r := c.Do("POST", "/v1/alert-rules", keyA, map[string]any{"name": "low balance", "metric": "provider.balance",
				"tiers": []any{map[string]any{"severity": "warning", "fire": 5}}}); r.Status != http.StatusConflict {
				t.Errorf("same name again: %d %s, want 409", r.Status, r.Body)
			}
			if r := c.Do("GET", "/v1/alert-rules/"+id, keyB, nil); r.Status != http.StatusNotFound {
				t.Errorf("another project reads the rule: %d", r.Status)
			}
			if r := c.Do("DELETE", "/v1/alert-rules/"+id, keyB, nil); r.Status != http.StatusNotFound {
				t.Errorf("another project deletes the rule: %d", r.Status)
			}
			r = c.Do("PUT", "/v1/alert-rules/"+id, keyA, map[string]any{"name": "low balance", "metric": "provider.balance", "enabled": false,
				"tiers": []any{map[string]any{"severity": "critical", "fire": 5}}})
			if r.Status != http.StatusOK || r.Data()["enabled"] != false {
				t.Errorf("update: %d %s", r.Status, r.Body)
			}

			// A test notification reaches a subscriber of alert.*, marked as a test.
			hook := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(keyA, map[string]any{"webhook_url": hook.URL, "event_types": []string{"alert.*"}})
			if r := c.Do("POST", "/v1/alert-rules/"+id+"/test", keyA, nil); r.Status != http.StatusAccepted {
				t.Fatalf("test: %d %s", r.Status, r.Body)
			}
			reqs := hook.WaitRequests(t, 1, 20*time.Second)
			var body struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			notice, _ := body.Data["notice"].(map[string]any)
			if body.Type != "alert.firing" || body.Data["rule"] != "low balance" || notice["title"] != "💰 Balance Alert" {
				t.Errorf("test notification = %s", reqs[0].Body)
			}

			// Silences: made, listed, refused with the field, expired.
			r = c.Do("POST", "/v1/silences", keyA, map[string]any{"matchers": []any{map[string]any{"name": "rule", "value": "low balance"}},
				"ends_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "comment": "maintenance"})
			if r.Status != http.StatusCreated {
				t.Fatalf("silence: %d %s", r.Status, r.Body)
			}
			sid := r.Data()["id"].(string)
			if r := c.Do("POST", "/v1/silences", keyA, map[string]any{"matchers": []any{map[string]any{"name": "rule", "op": "=~", "value": ".*"}},
				"ends_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}); r.Status != http.StatusBadRequest || r.ErrorField() != "matchers" {
				t.Errorf("match-all silence: %d %s", r.Status, r.Body)
			}
			if n := len(c.Do("GET", "/v1/silences", keyA, nil).List()); n != 1 {
				t.Errorf("silences listed: %d, want 1", n)
			}
			if n := len(c.Do("GET", "/v1/silences", keyB, nil).List()); n != 0 {
				t.Errorf("another project lists %d silences", n)
			}
			if r := c.Do("DELETE", "/v1/silences/"+sid, keyA, nil); r.Status != http.StatusOK {
				t.Errorf("expire: %d %s", r.Status, r.Body)
			}
			if n := len(c.Do("GET", "/v1/silences", keyA, nil).List()); n != 0 {
				t.Errorf("an expired silence is still listed as active (%d)", n)
			}

			if r := c.Do("DELETE", "/v1/alert-rules/"+id, keyA, nil); r.Status != http.StatusOK {
				t.Errorf("delete: %d %s", r.Status, r.Body)
			}
			if r := c.Do("GET", "/v1/alert-rules/"+id, keyA, nil); r.Status != http.StatusNotFound {
				t.Errorf("deleted rule: %d", r.Status)
			}
			if r := c.Do("GET", "/v1/alerts?status=loud", keyA, nil); r.Status != http.StatusBadRequest || r.ErrorField() != "status" {
				t.Errorf("bad status filter: %d %s", r.Status, r.Body)
			}
			if r := c.Do("GET", "/v1/alerts", keyA, nil); r.Status != http.StatusOK {
				t.Errorf("alerts: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestAlertRulesFile: the rules of CARRIER_ALERT_RULES_FILE are created at
// start, and updated by name at the next start.
func TestAlertRulesFile(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			path := t.TempDir() + "/rules.json"
			write := func(fire float64) {
				body := fmt.Sprintf(`[{"project": "default", "name": "file balance", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": %v}]}]`, fire)
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			fireOf := func(c *apptest.Carrier) []float64 {
				var out []float64
				for _, r := range c.Admin("GET", "/v1/alert-rules", nil).List() {
					if r["name"] == "file balance" {
						out = append(out, r["tiers"].([]any)[0].(map[string]any)["fire"].(float64))
					}
				}
				return out
			}
			configure := func(cfg *config.Config) { cfg.AlertRulesFile = path }
			write(10)
			c := apptest.Start(t, e, apptest.Options{Configure: configure})
			if got := fireOf(c); fmt.Sprint(got) != "[10]" {
				t.Fatalf("after the first start: %v, want one rule firing at 10", got)
			}
			c.Stop()
			write(25)
			c = apptest.Start(t, e, apptest.Options{Configure: configure})
			if got := fireOf(c); fmt.Sprint(got) != "[25]" {
				t.Fatalf("after the second start: %v, want the same rule updated to 25", got)
			}
		})
	}
}
