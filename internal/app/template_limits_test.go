package app_test

import (
	"context"
	"encoding/json"
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
