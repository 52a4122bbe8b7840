package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// worstTemplates are templates that would pin a core (or fill memory) per
// delivery: loops over a billion, nested ranges, recursion, huge printf
// widths.
var worstTemplates = []string{
	`{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}`,
	`{{$n := 1000000000}}{{range $n}}x{{end}}`,
	`{{range .data.list}}{{range $.data.list}}{{range $.data.list}}{{end}}{{end}}{{end}}`,
	`{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}`,
	`{{printf "%999999999d" 1}}`,
	`{{printf "%*d" 999999999 1}}`,
}

// TestChatTemplatesBounded: through the real API, every worst template is
// refused when a Discord or Slack subscription is saved, naming the field.
// The same templates stored directly (as settings saved before the rules
// were), and a template the rules accept but whose work on a large event
// is unbounded (nested ranges over its data), fail their attempt quickly
// and visibly as template_error, post nothing, and do not hold up shutdown.
func TestChatTemplatesBounded(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			chat := newCompatibleChat(t)
			host := strings.TrimPrefix(chat.URL, "http://")
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.ChatCompatibleHosts = []string{host}
			}})
			urls := map[string]string{"slack": chat.URL + "/hooks/mm7x3kq9", "discord": chat.URL + "/discord/d1sc0rdk3y"}
			templateField := map[string]string{"slack": "text", "discord": "description"}

			for kind, u := range urls {
				for _, src := range worstTemplates {
					for _, field := range []string{"title", templateField[kind]} {
						sub := chatSubscription(kind, u)
						sub["destination"].(map[string]any)[field] = src
						r := c.Admin("POST", "/v1/subscriptions", sub)
						apiExpectError(t, kind+" "+field+" "+src, r, http.StatusBadRequest, "validation_error", "destination."+field)
					}
					sub := chatSubscription(kind, u)
					sub["destination"].(map[string]any)["fields"] = []any{map[string]any{"name": "n", "value": src}}
					r := c.Admin("POST", "/v1/subscriptions", sub)
					apiExpectError(t, kind+" fields "+src, r, http.StatusBadRequest, "validation_error", "destination.fields[0].value")
				}
			}

			// Accepted by the rules, stopped by the budget: 3000² iterations.
			nested := `{{range .data.list}}{{range $.data.list}}{{end}}{{end}}`
			var ids []string
			for kind, u := range urls {
				sub := chatSubscription(kind, u)
				sub["destination"].(map[string]any)["title"] = nested
				sub["max_retries"] = 3
				r := c.Admin("POST", "/v1/subscriptions", sub)
				if r.Status != http.StatusCreated {
					t.Fatalf("%s with nested ranges over data: %d %s", kind, r.Status, r.Body)
				}
				ids = append(ids, r.Data()["subscription_id"].(string))
				// The worst templates, stored as old data would be.
				for i, src := range worstTemplates[:3] {
					r := c.Admin("POST", "/v1/subscriptions", chatSubscription(kind, u))
					if r.Status != http.StatusCreated {
						t.Fatalf("%s: %d %s", kind, r.Status, r.Body)
					}
					id := r.Data()["subscription_id"].(string)
					ctx := context.Background()
					s, err := c.App.Store.GetSubscription(ctx, app.DefaultProjectID, id)
					if err != nil {
						t.Fatal(err)
					}
					var d map[string]any
					json.Unmarshal(s.Destination, &d)
					d[[]string{"title", templateField[kind], "title"}[i]] = src
					s.Destination, _ = json.Marshal(d)
					if err := c.App.Store.UpdateSubscription(ctx, s); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
			}
			time.Sleep(1200 * time.Millisecond) // let the matcher see the stored changes
			list := make([]int, 3000)
			apiPublish(t, c, apptest.AdminKey, map[string]any{"type": "order.paid", "data": map[string]any{"list": list}}, len(ids))

			for _, id := range ids {
				var delivery map[string]any
				apptest.Eventually(t, 20*time.Second, "the delivery of "+id+" to fail", func() bool {
					l := c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries", nil).List()
					if len(l) == 1 && l[0]["status"] == "failed" {
						delivery = l[0]
						return true
					}
					return false
				})
				r := c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries/"+delivery["uuid"].(string), nil)
				attempts, _ := r.Data()["attempts"].([]any)
				if len(attempts) != 1 {
					t.Fatalf("subscription %s: attempts %s, want exactly one (not retried)", id, r.Body)
				}
				a := attempts[0].(map[string]any)
				if a["error_code"] != "template_error" || !strings.Contains(a["error_message"].(string), "destination") {
					t.Errorf("subscription %s: attempt %v, want error_code template_error naming the destination", id, a)
				}
			}
			if s, d := chat.received(); len(s)+len(d) != 0 {
				t.Errorf("the chat server received %d Slack and %d Discord messages, want none", len(s), len(d))
			}
			start := time.Now()
			c.Stop()
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("shutdown took %s", took)
			}
		})
	}
}

// TestTemplateTimeIsSharedPerProject: a project whose Slack template is
// costly (tens of thousands of steps, inside its budget) spends its share of
// rendering time (CARRIER_TEMPLATE_TIME_PER_SECOND) and then has its attempts
// put off unrendered, visibly (template_time_exceeded) and without losing
// their retries or counting against the endpoint's health, while another
// project's Slack message renders and arrives at once. Without the share,
// every one of the first project's publishes took its render's worth of a
// core from every other tenant.
func TestTemplateTimeIsSharedPerProject(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			chat := newCompatibleChat(t)
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.ChatCompatibleHosts = []string{strings.TrimPrefix(chat.URL, "http://")}
				cfg.TemplateTimePerSecond = 50 * time.Millisecond
			}})
			_, attacker := c.NewProject("attacker")
			_, victim := c.NewProject("victim")
			hook := chat.URL + "/hooks/mm7x3kq9"

			// 300² = 90,000 steps: within the step budget, some 50 ms a
			// render here, so 40 of them are more than a second's burst.
			heavy := chatSubscription("slack", hook)
			heavy["event_types"] = []string{"spam"}
			heavy["destination"].(map[string]any)["title"] = `{{range .data.list}}{{range $.data.list}}{{end}}{{end}}heavy`
			r := c.Do("POST", "/v1/subscriptions", attacker, heavy)
			if r.Status != http.StatusCreated {
				t.Fatalf("attacker's subscription: %d %s", r.Status, r.Body)
			}
			heavyID := r.Data()["subscription_id"].(string)
			if r := c.Do("POST", "/v1/subscriptions", victim, chatSubscription("slack", hook)); r.Status != http.StatusCreated {
				t.Fatalf("victim's subscription: %d %s", r.Status, r.Body)
			}
			list := make([]int, 300)
			for i := range 40 {
				c.Publish(attacker, map[string]any{"type": "spam", "data": map[string]any{"i": i, "list": list}})
			}

			var putOff map[string]any
			apptest.Eventually(t, 30*time.Second, "an attempt of the attacker put off", func() bool {
				for _, d := range c.Do("GET", "/v1/subscriptions/"+heavyID+"/deliveries?limit=100", attacker, nil).List() {
					if d["error_code"] == "template_time_exceeded" {
						putOff = d
						return true
					}
				}
				return false
			})
			if putOff["status"] != "retrying" || !strings.Contains(putOff["error_message"].(string), "CARRIER_TEMPLATE_TIME_PER_SECOND") {
				t.Errorf("an attempt put off: %v, want retrying, naming the setting", putOff)
			}
			// The victim renders at once, whatever the attacker owes.
			start := time.Now()
			c.Publish(victim, map[string]any{"type": "order.paid", "data": map[string]any{"id": "ord_1"}})
			apptest.Eventually(t, 20*time.Second, "the victim's Slack message", func() bool {
				slack, _ := chat.received()
				for _, m := range slack {
					if !strings.Contains(fmt.Sprint(m), "heavy") {
						return true
					}
				}
				return false
			})
			t.Logf("the victim's message arrived %v after its publish", time.Since(start))

			// Put off is not failed: the attacker's endpoint stays active
			// and healthy however many attempts wait.
			sub := c.Do("GET", "/v1/subscriptions/"+heavyID, attacker, nil).Data()
			if sub["is_active"] != true || sub["consecutive_failures"] != float64(0) {
				t.Errorf("the attacker's subscription after its attempts were put off: %v, want it active, without failures", sub)
			}
		})
	}
}
