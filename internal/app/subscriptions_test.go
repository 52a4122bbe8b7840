package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// TestSubscriptionsAndWebhooksAreOne: a webhook created through /v1/webhooks
// is a subscription, and a webhook-destination subscription is a webhook;
// subscriptions of other kinds stay out of /v1/webhooks.
func TestSubscriptionsAndWebhooksAreOne(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			whID, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.b"}})
			got := c.Admin("GET", "/v1/subscriptions/"+whID, nil)
			dest, _ := got.Data()["destination"].(map[string]any)
			if got.Status != http.StatusOK || dest["type"] != "webhook" || dest["url"] != ep.URL || dest["secret"] != "***hidden***" {
				t.Fatalf("webhook as subscription: %d %s", got.Status, got.Body)
			}
			resp := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "as sub", "event_types": []string{"a.*"},
				"destination": map[string]any{"type": "webhook", "url": ep.URL, "custom_headers": map[string]string{"X-Team": "ops"}}})
			if resp.Status != http.StatusCreated || resp.Data()["secret"] == nil {
				t.Fatalf("create webhook subscription: %d %s", resp.Status, resp.Body)
			}
			subID := resp.Data()["subscription_id"].(string)
			if wh := c.Admin("GET", "/v1/webhooks/"+subID, nil); wh.Status != http.StatusOK || wh.Data()["webhook_url"] != ep.URL {
				t.Errorf("subscription as webhook: %d %s", wh.Status, wh.Body)
			}
			logSub := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "audit", "event_types": []string{"*"},
				"destination": map[string]any{"type": "log", "file": "audit.jsonl"}})
			if logSub.Status != http.StatusCreated {
				t.Fatalf("create log subscription: %d %s", logSub.Status, logSub.Body)
			}
			logID := logSub.Data()["subscription_id"].(string)
			if wh := c.Admin("GET", "/v1/webhooks/"+logID, nil); wh.Status != http.StatusNotFound {
				t.Errorf("log subscription visible as a webhook: %d", wh.Status)
			}
			if n := len(c.Admin("GET", "/v1/webhooks", nil).List()); n != 2 {
				t.Errorf("/v1/webhooks lists %d, want the 2 webhooks", n)
			}
			if n := len(c.Admin("GET", "/v1/subscriptions", nil).List()); n != 3 {
				t.Errorf("/v1/subscriptions lists %d, want 3", n)
			}
			// Deactivate, activate and delete work through both APIs.
			if r := c.Admin("PUT", "/v1/subscriptions/"+whID+"/deactivate", nil); r.Status != http.StatusOK || r.Data()["is_active"] != false {
				t.Errorf("deactivate: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("PUT", "/v1/webhooks/"+whID+"/activate", nil); r.Status != http.StatusOK || r.Data()["is_active"] != true {
				t.Errorf("activate: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("DELETE", "/v1/webhooks/"+logID, nil); r.Status != http.StatusNotFound {
				t.Errorf("delete a log subscription through /v1/webhooks: %d, want 404", r.Status)
			}
			if r := c.Admin("DELETE", "/v1/subscriptions/"+logID, nil); r.Status != http.StatusOK {
				t.Errorf("delete: %d %s", r.Status, r.Body)
			}
			// Another project's subscription is a 404.
			_, other := c.NewProject("other")
			if r := c.Do("GET", "/v1/subscriptions/"+subID, other, nil); r.Status != http.StatusNotFound {
				t.Errorf("other project reads subscription: %d", r.Status)
			}
		})
	}
}

func TestSubscriptionValidation(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{BlockPrivate: true})
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "x", "event_types": []string{"task.*"}, "destination": map[string]any{"type": "log", "file": "a.jsonl"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		body  map[string]any
		field string
	}{
		{base(map[string]any{"destination": nil}), "destination"},
		{base(map[string]any{"destination": map[string]any{"type": "pigeon"}}), "destination.type"},
		{base(map[string]any{"destination": map[string]any{"type": "webhook"}}), "destination.url"},
		{base(map[string]any{"destination": map[string]any{"type": "webhook", "url": "https://example.com", "colour": 1}}), "destination.colour"},
		{base(map[string]any{"destination": map[string]any{"type": "log", "file": "../etc/passwd"}}), "destination.file"},
		{base(map[string]any{"destination": map[string]any{"type": "discord"}}), "destination.webhook_url"},
		{base(map[string]any{"filter_policy": map[string]any{"status": []any{map[string]any{"numeric": []any{"<<", 1}}}}}), "filter_policy.status"},
		{base(map[string]any{"filter_policy": map[string]any{"a": []string{"1"}, "b": []string{"1"}, "c": []string{"1"}, "d": []string{"1"}, "e": []string{"1"}, "f": []string{"1"}}}), "filter_policy"},
		{base(map[string]any{"filter_policy_scope": "headers"}), "filter_policy_scope"},
		{base(map[string]any{"event_types": []string{}}), "event_types"},
	}
	for _, tc := range cases {
		r := c.Admin("POST", "/v1/subscriptions", tc.body)
		if r.Status != http.StatusBadRequest || !strings.HasPrefix(r.ErrorField(), tc.field) {
			t.Errorf("%v: %d %s, want 400 naming %s", tc.body, r.Status, r.Body, tc.field)
		}
	}
	// SSRF: a Discord URL on loopback is refused like a webhook URL.
	r := c.Admin("POST", "/v1/subscriptions", base(map[string]any{"destination": map[string]any{"type": "discord", "webhook_url": "http://127.0.0.1:9/api/webhooks/1/x"}}))
	if r.Status != http.StatusBadRequest || r.ErrorCode() != "url_not_allowed" {
		t.Errorf("loopback discord URL: %d %s", r.Status, r.Body)
	}
	if n := len(c.Admin("GET", "/v1/subscriptions", nil).List()); n != 0 {
		t.Errorf("invalid subscriptions were created: %d", n)
	}
}

// TestFanOutWithFilterPolicies reproduces the source document's architecture:
// one result fans out to a webhook, an audit log and Discord, and a filter
// policy sends only failures to a second webhook.
func TestFanOutWithFilterPolicies(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			logDir := t.TempDir()
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.LogDir = logDir }})
			all := apptest.NewEndpoint(t, nil)
			failures := apptest.NewEndpoint(t, nil)
			discord := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) })
			create := func(body map[string]any) {
				t.Helper()
				if r := c.Admin("POST", "/v1/subscriptions", body); r.Status != http.StatusCreated {
					t.Fatalf("create subscription: %d %s", r.Status, r.Body)
				}
			}
			create(map[string]any{"name": "results", "event_types": []string{"task.*"}, "destination": map[string]any{"type": "webhook", "url": all.URL}})
			create(map[string]any{"name": "audit", "event_types": []string{"task.*"}, "destination": map[string]any{"type": "log", "file": "audit.jsonl"}})
			create(map[string]any{"name": "failures", "event_types": []string{"task.*"}, "destination": map[string]any{"type": "webhook", "url": failures.URL},
				"filter_policy": map[string]any{"status": []string{"failed", "expired"}}, "filter_policy_scope": "body"})
			create(map[string]any{"name": "ops", "event_types": []string{"task.*"},
				"destination":   map[string]any{"type": "discord", "webhook_url": discord.URL + "/api/webhooks/1/token"},
				"filter_policy": map[string]any{"severity": []any{map[string]any{"anything-but": []string{"info"}}}}})

			c.Publish(apptest.AdminKey, map[string]any{"type": "task.solved", "subject": "t1", "data": map[string]any{"status": "solved", "solution": "abc"},
				"attributes": map[string]string{"severity": "info"}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "task.failed", "subject": "t2", "data": map[string]any{"status": "failed", "error_code": "ERROR_CAPTCHA_UNSOLVABLE"},
				"attributes": map[string]string{"severity": "error"}})

			all.WaitRequests(t, 2, 10*time.Second)
			got := failures.WaitRequests(t, 1, 10*time.Second)
			discord.WaitRequests(t, 1, 10*time.Second)
			time.Sleep(300 * time.Millisecond)
			if n := len(failures.Requests()); n != 1 || !strings.Contains(string(got[0].Body), "ERROR_CAPTCHA_UNSOLVABLE") {
				t.Errorf("failures webhook got %d requests, want only the failure", n)
			}
			if n := len(discord.Requests()); n != 1 {
				t.Errorf("discord got %d messages, want 1 (severity not info)", n)
			}
			var embed struct {
				Embeds []struct {
					Title string `json:"title"`
				} `json:"embeds"`
			}
			json.Unmarshal(discord.Requests()[0].Body, &embed)
			if len(embed.Embeds) != 1 || !strings.Contains(embed.Embeds[0].Title, "task.failed") {
				t.Errorf("discord payload: %s", discord.Requests()[0].Body)
			}
			var lines []map[string]any
			apptest.Eventually(t, 10*time.Second, "two audit lines", func() bool {
				// Log files are per project: <log dir>/<project id>/<file>.
				files, _ := filepath.Glob(filepath.Join(logDir, "*", "audit.jsonl"))
				if len(files) != 1 {
					return false
				}
				lines = readLines(t, files[0])
				return len(lines) == 2
			})
			types := map[any]bool{lines[0]["type"]: true, lines[1]["type"]: true}
			if !types["task.solved"] || !types["task.failed"] {
				t.Errorf("audit lines: %v", lines)
			}
		})
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("audit line is not JSON: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}

// TestSubscriptionSecretsHidden: an email password is never shown, and
// settings read from the API can be sent back without losing it.
func TestSubscriptionSecretsHidden(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{})
	r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "alerts", "event_types": []string{"task.failed"},
		"destination": map[string]any{"type": "email", "host": "smtp.example.com", "username": "carrier", "password": "s3cret-pass",
			"from": "carrier@example.com", "to": []string{"ops@example.com"}}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.Data()["subscription_id"].(string)
	got := c.Admin("GET", "/v1/subscriptions/"+id, nil)
	if strings.Contains(string(got.Body), "s3cret-pass") {
		t.Fatalf("password shown: %s", got.Body)
	}
	dest := got.Data()["destination"].(map[string]any)
	dest["subject"] = "[ops] {{.type}}"
	if u := c.Admin("PUT", "/v1/subscriptions/"+id, map[string]any{"destination": dest}); u.Status != http.StatusOK {
		t.Fatalf("update with the shown settings: %d %s", u.Status, u.Body)
	}
	sub, err := c.App.Store.GetSubscription(context.Background(), "default", id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sub.Destination), "s3cret-pass") || !strings.Contains(string(sub.Destination), "[ops]") {
		t.Errorf("stored settings after update: %s", sub.Destination)
	}
}

// TestDiscordRateLimitSparesRetries: a 429 with retry_after from a Discord
// stand-in is waited out without using up the subscription's retries.
func TestDiscordRateLimitSparesRetries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			discord := apptest.NewEndpoint(t, func(n int, _ apptest.Request, w http.ResponseWriter) {
				if n < 2 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					w.Write([]byte(`{"message": "You are being rate limited.", "retry_after": 0.2, "global": false}`))
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "ops", "event_types": []string{"task.failed"}, "max_retries": 0,
				"destination": map[string]any{"type": "discord", "webhook_url": discord.URL + "/api/webhooks/1/token"}})
			if r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			id := r.Data()["subscription_id"].(string)
			c.Publish(apptest.AdminKey, map[string]any{"type": "task.failed", "subject": "t9", "data": map[string]any{"status": "failed"}})
			reqs := discord.WaitRequests(t, 3, 15*time.Second)
			if gap := reqs[1].At.Sub(reqs[0].At); gap < 200*time.Millisecond {
				t.Errorf("retried %v after a 429 asking for 200ms", gap)
			}
			var d map[string]any
			apptest.Eventually(t, 5*time.Second, "delivered", func() bool {
				list := c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries", nil).List()
				if len(list) == 1 {
					d = list[0]
				}
				return d != nil && d["status"] == "delivered"
			})
		})
	}
}

// TestDeleteSpeaksOfWhatWasDeleted: DELETE /v1/subscriptions/{id} answers in
// terms of a subscription, DELETE /v1/webhooks/{id} in terms of a webhook
// (the two share a handler).
func TestDeleteSpeaksOfWhatWasDeleted(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			sub := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": "audit", "event_types": []string{"*"},
				"destination": map[string]any{"type": "log", "file": "audit.jsonl"}})
			if sub.Status != http.StatusCreated {
				t.Fatalf("create subscription: %d %s", sub.Status, sub.Body)
			}
			subID := sub.Data()["subscription_id"].(string)
			whID, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.b"}})
			whSub, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.b"}})

			for _, d := range []struct {
				r                     apptest.Response
				what, key, id, answer string
			}{
				{c.Admin("DELETE", "/v1/subscriptions/"+subID, nil), "subscription", "subscription_id", subID, "Subscription deleted successfully"},
				// A webhook deleted through /v1/subscriptions is spoken of as a subscription there.
				{c.Admin("DELETE", "/v1/subscriptions/"+whSub, nil), "webhook as subscription", "subscription_id", whSub, "Subscription deleted successfully"},
				{c.Admin("DELETE", "/v1/webhooks/"+whID, nil), "webhook", "webhook_id", whID, "Webhook deleted successfully"},
			} {
				if data := d.r.Data(); d.r.Status != http.StatusOK || d.r.JSON["message"] != d.answer || len(data) != 2 || data[d.key] != d.id || data["deleted"] != true {
					t.Errorf("delete %s: %d %s, want 200 with message %q and data {%q: %q, \"deleted\": true}", d.what, d.r.Status, d.r.Body, d.answer, d.key, d.id)
				}
			}
			for path, want := range map[string]string{"/v1/subscriptions/" + subID: "subscription not found", "/v1/webhooks/" + whID: "webhook not found"} {
				r := c.Admin("DELETE", path, nil)
				e, _ := r.JSON["error"].(map[string]any)
				if r.Status != http.StatusNotFound || e["message"] != want {
					t.Errorf("DELETE %s again: %d %s, want 404 %q", path, r.Status, r.Body, want)
				}
			}
		})
	}
}
