package app_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"carrier/internal/app/apptest"
	"carrier/internal/sign"
	"carrier/internal/store/storetest"
)

// rtWait bounds every wait in this file.
const rtWait = 10 * time.Second

// rtNoRetryWait is how long a test waits to be sure no retry comes: several
// times the first backoff delay (RetryBase 50ms in apptest) plus poll slack.
const rtNoRetryWait = 400 * time.Millisecond

// rtAnswer returns an endpoint script that answers every request with code.
func rtAnswer(code int) func(int, apptest.Request, http.ResponseWriter) {
	return func(_ int, _ apptest.Request, w http.ResponseWriter) { w.WriteHeader(code) }
}

// rtAnswerFirst answers the first request with first and later ones with 200.
func rtAnswerFirst(first int) func(int, apptest.Request, http.ResponseWriter) {
	return func(n int, _ apptest.Request, w http.ResponseWriter) {
		if n == 0 {
			w.WriteHeader(first)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// rtNum reads a JSON number as an int (-1 when absent or not a number).
func rtNum(v any) int {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// rtWebhook reads a webhook through the API.
func rtWebhook(t *testing.T, c *apptest.Carrier, id string) map[string]any {
	t.Helper()
	r := c.Admin("GET", "/v1/webhooks/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET webhook %s: %d %s", id, r.Status, r.Body)
	}
	return r.Data()
}

// rtDelivery reads a delivery and its attempt history through the API.
func rtDelivery(t *testing.T, c *apptest.Carrier, webhookID, deliveryID string) (map[string]any, []map[string]any) {
	t.Helper()
	r := c.Admin("GET", "/v1/webhooks/"+webhookID+"/deliveries/"+deliveryID, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET delivery %s: %d %s", deliveryID, r.Status, r.Body)
	}
	d, _ := r.Data()["delivery"].(map[string]any)
	raw, _ := r.Data()["attempts"].([]any)
	attempts := make([]map[string]any, 0, len(raw))
	for _, a := range raw {
		m, _ := a.(map[string]any)
		attempts = append(attempts, m)
	}
	return d, attempts
}

// rtWaitState waits until a delivery reaches state and returns it with its attempts.
func rtWaitState(t *testing.T, c *apptest.Carrier, webhookID, deliveryID, state string) (map[string]any, []map[string]any) {
	t.Helper()
	var d map[string]any
	var attempts []map[string]any
	apptest.Eventually(t, rtWait, "delivery "+deliveryID+" "+state, func() bool {
		d, attempts = rtDelivery(t, c, webhookID, deliveryID)
		return d["status"] == state
	})
	return d, attempts
}

// rtDeliveries lists a webhook's deliveries, optionally filtered by status.
func rtDeliveries(t *testing.T, c *apptest.Carrier, webhookID, status string) []map[string]any {
	t.Helper()
	path := "/v1/webhooks/" + webhookID + "/deliveries"
	if status != "" {
		path += "?status=" + status
	}
	r := c.Admin("GET", path, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	return r.List()
}

// rtEventDeliveryID returns the id of the delivery an event made to webhookID,
// read from GET /v1/events/{id}.
func rtEventDeliveryID(t *testing.T, c *apptest.Carrier, eventID, webhookID string) string {
	t.Helper()
	r := c.Admin("GET", "/v1/events/"+eventID, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET event %s: %d %s", eventID, r.Status, r.Body)
	}
	list, _ := r.Data()["deliveries"].([]any)
	for _, v := range list {
		d, _ := v.(map[string]any)
		if d["webhookSubscriptionUuid"] == webhookID {
			return d["uuid"].(string)
		}
	}
	t.Fatalf("event %s has no delivery to webhook %s: %s", eventID, webhookID, r.Body)
	return ""
}

// rtClosedPortURL returns a loopback URL on which nothing listens.
func rtClosedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}

// rtPublish publishes an event of the given type with a small payload.
func rtPublish(t *testing.T, c *apptest.Carrier, typ string) string {
	t.Helper()
	return c.Publish(apptest.AdminKey, map[string]any{"type": typ, "data": map[string]any{"n": 1}})
}

// TestRetryClasses checks which answers are retried: 5xx, 408 and 429 are, and
// the retry keeps the delivery id; other 4xx and redirects fail at once;
// network errors and timeouts are retried.
func TestRetryClasses(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})

			for _, code := range []int{500, 408, 429, 503} {
				t.Run(fmt.Sprintf("retried_%d", code), func(t *testing.T) {
					ep := apptest.NewEndpoint(t, rtAnswerFirst(code))
					typ := fmt.Sprintf("retry.s%d", code)
					id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{typ}})
					rtPublish(t, c, typ)
					reqs := ep.WaitRequests(t, 2, rtWait)
					did := reqs[0].Header.Get("X-Webhook-Delivery-Id")
					if did == "" {
						t.Fatal("first request has no X-Webhook-Delivery-Id")
					}
					for i, r := range reqs[:2] {
						if got := r.Header.Get("X-Webhook-Delivery-Id"); got != did {
							t.Errorf("request %d X-Webhook-Delivery-Id = %q, want %q", i+1, got, did)
						}
						if got := r.Header.Get("webhook-id"); got != did {
							t.Errorf("request %d webhook-id = %q, want %q", i+1, got, did)
						}
					}
					d, attempts := rtWaitState(t, c, id, did, "delivered")
					if rtNum(d["attempt_number"]) != 2 {
						t.Errorf("attempt_number = %v, want 2", d["attempt_number"])
					}
					if len(attempts) != 2 {
						t.Fatalf("attempts = %d, want 2: %v", len(attempts), attempts)
					}
					for i, want := range []int{code, 200} {
						a := attempts[i]
						if rtNum(a["attempt_number"]) != i+1 {
							t.Errorf("attempt %d attempt_number = %v", i+1, a["attempt_number"])
						}
						if rtNum(a["response_status"]) != want {
							t.Errorf("attempt %d response_status = %v, want %d", i+1, a["response_status"], want)
						}
						if _, ok := a["response_duration_ms"].(float64); !ok {
							t.Errorf("attempt %d response_duration_ms missing: %v", i+1, a)
						}
					}
					if got, want := attempts[0]["error_code"], fmt.Sprintf("http_%d", code); got != want {
						t.Errorf("attempt 1 error_code = %v, want %v", got, want)
					}
					if got, ok := attempts[1]["error_code"]; ok {
						t.Errorf("attempt 2 error_code = %v, want none", got)
					}
				})
			}

			for _, code := range []int{400, 401, 404, 422} {
				t.Run(fmt.Sprintf("not_retried_%d", code), func(t *testing.T) {
					ep := apptest.NewEndpoint(t, rtAnswer(code))
					typ := fmt.Sprintf("retry.c%d", code)
					id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{typ}})
					rtPublish(t, c, typ)
					did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
					d, attempts := rtWaitState(t, c, id, did, "failed")
					time.Sleep(rtNoRetryWait)
					if n := len(ep.Requests()); n != 1 {
						t.Errorf("endpoint got %d requests, want exactly 1", n)
					}
					if rtNum(d["attempt_number"]) != 1 || len(attempts) != 1 {
						t.Errorf("attempt_number = %v, attempts = %d; want 1 and 1", d["attempt_number"], len(attempts))
					}
					if got, want := d["error_code"], fmt.Sprintf("http_%d", code); got != want {
						t.Errorf("error_code = %v, want %v", got, want)
					}
					if d, _ := rtDelivery(t, c, id, did); d["status"] != "failed" {
						t.Errorf("status after waiting = %v, want failed", d["status"])
					}
				})
			}

			for _, code := range []int{302, 307} {
				t.Run(fmt.Sprintf("redirect_%d", code), func(t *testing.T) {
					target := apptest.NewEndpoint(t, nil)
					ep := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
						w.Header().Set("Location", target.URL+"/elsewhere")
						w.WriteHeader(code)
					})
					typ := fmt.Sprintf("retry.r%d", code)
					id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{typ}})
					rtPublish(t, c, typ)
					did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
					d, attempts := rtWaitState(t, c, id, did, "failed")
					time.Sleep(rtNoRetryWait)
					if n := len(target.Requests()); n != 0 {
						t.Errorf("redirect target got %d requests; redirects must not be followed", n)
					}
					if n := len(ep.Requests()); n != 1 {
						t.Errorf("endpoint got %d requests, want exactly 1", n)
					}
					if len(attempts) != 1 || rtNum(attempts[0]["response_status"]) != code {
						t.Errorf("attempts = %v, want one with response_status %d", attempts, code)
					}
					if got := d["error_code"]; got != "redirect_not_followed" {
						t.Errorf("error_code = %v, want redirect_not_followed", got)
					}
				})
			}

			t.Run("connection_refused", func(t *testing.T) {
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": rtClosedPortURL(t), "event_types": []string{"retry.refused"}, "max_retries": 1})
				eventID := rtPublish(t, c, "retry.refused")
				did := rtEventDeliveryID(t, c, eventID, id)
				d, attempts := rtWaitState(t, c, id, did, "failed")
				if len(attempts) != 2 {
					t.Fatalf("attempts = %d, want 2 (the refused connection is retried): %v", len(attempts), attempts)
				}
				for i, a := range attempts {
					if a["error_code"] != "connection_refused" {
						t.Errorf("attempt %d error_code = %v, want connection_refused", i+1, a["error_code"])
					}
					if a["response_status"] != nil {
						t.Errorf("attempt %d response_status = %v, want null", i+1, a["response_status"])
					}
				}
				if d["error_code"] != "connection_refused" || d["response_status"] != nil {
					t.Errorf("delivery error_code = %v, response_status = %v", d["error_code"], d["response_status"])
				}
			})

			t.Run("timeout", func(t *testing.T) {
				stop := make(chan struct{})
				ep := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
					select {
					case <-time.After(5 * time.Second):
					case <-stop:
					}
					w.WriteHeader(http.StatusOK)
				})
				t.Cleanup(func() { close(stop) }) // runs before the endpoint closes
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"retry.slow"}, "timeout_seconds": 1, "max_retries": 1})
				rtPublish(t, c, "retry.slow")
				did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
				d, attempts := rtWaitState(t, c, id, did, "failed")
				if n := len(ep.Requests()); n != 2 {
					t.Errorf("endpoint got %d requests, want 2 (the timeout is retried once)", n)
				}
				if len(attempts) != 2 {
					t.Fatalf("attempts = %d, want 2: %v", len(attempts), attempts)
				}
				for i, a := range attempts {
					if a["error_code"] != "timeout" {
						t.Errorf("attempt %d error_code = %v, want timeout", i+1, a["error_code"])
					}
					if ms := rtNum(a["response_duration_ms"]); ms < 900 || ms > 4000 {
						t.Errorf("attempt %d response_duration_ms = %d, want about 1000", i+1, ms)
					}
				}
				if d["error_code"] != "timeout" {
					t.Errorf("delivery error_code = %v, want timeout", d["error_code"])
				}
			})
		})
	}
}

// TestRetryMaxRetries checks that max_retries bounds the attempts and that the
// exhausted delivery is failed, listed and counted.
func TestRetryMaxRetries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			for _, retries := range []int{2, 0} {
				t.Run(fmt.Sprintf("max_retries_%d", retries), func(t *testing.T) {
					ep := apptest.NewEndpoint(t, rtAnswer(500))
					typ := fmt.Sprintf("max.r%d", retries)
					id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{typ}, "max_retries": retries})
					rtPublish(t, c, typ)
					did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
					d, attempts := rtWaitState(t, c, id, did, "failed")
					time.Sleep(rtNoRetryWait)
					if n := len(ep.Requests()); n != retries+1 {
						t.Errorf("endpoint got %d requests, want %d", n, retries+1)
					}
					if len(attempts) != retries+1 || rtNum(d["attempt_number"]) != retries+1 {
						t.Errorf("attempts = %d, attempt_number = %v; want %d", len(attempts), d["attempt_number"], retries+1)
					}
					failed := rtDeliveries(t, c, id, "failed")
					if len(failed) != 1 || failed[0]["uuid"] != did {
						t.Errorf("?status=failed = %v, want the one delivery %s", failed, did)
					}
					if got := rtDeliveries(t, c, id, "delivered"); len(got) != 0 {
						t.Errorf("?status=delivered = %v, want none", got)
					}
					wh := rtWebhook(t, c, id)
					if rtNum(wh["failed_deliveries"]) != 1 || rtNum(wh["total_deliveries"]) != 1 || rtNum(wh["successful_deliveries"]) != 0 {
						t.Errorf("counters failed/total/successful = %v/%v/%v, want 1/1/0",
							wh["failed_deliveries"], wh["total_deliveries"], wh["successful_deliveries"])
					}
					if rtNum(wh["consecutive_failures"]) != retries+1 {
						t.Errorf("consecutive_failures = %v, want %d", wh["consecutive_failures"], retries+1)
					}
					if wh["is_active"] != true {
						t.Errorf("is_active = %v, want true", wh["is_active"])
					}
				})
			}
		})
	}
}

// TestRetryBackoffTiming checks that the pauses between attempts grow with the
// multiplier and that Retry-After stretches the pause.
func TestRetryBackoffTiming(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// A base of 250ms keeps scheduling noise under the race detector on a
			// busy machine (tens of milliseconds) small next to the gaps compared.
			c := apptest.Start(t, e, apptest.Options{RetryBase: 250 * time.Millisecond})
			t.Run("multiplier", func(t *testing.T) {
				ep := apptest.NewEndpoint(t, rtAnswer(500))
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"backoff.x"},
					"max_retries": 2, "retry_backoff_multiplier": 2})
				rtPublish(t, c, "backoff.x")
				reqs := ep.WaitRequests(t, 3, rtWait)
				rtWaitState(t, c, id, reqs[0].Header.Get("X-Webhook-Delivery-Id"), "failed")
				gap1, gap2 := reqs[1].At.Sub(reqs[0].At), reqs[2].At.Sub(reqs[1].At)
				t.Logf("gaps: %v, %v", gap1, gap2)
				if gap1 < 225*time.Millisecond {
					t.Errorf("first gap %v, want at least 225ms (250ms base less jitter)", gap1)
				}
				if float64(gap2) <= float64(gap1)*1.3 {
					t.Errorf("second gap %v is not clearly larger than the first %v (multiplier 2)", gap2, gap1)
				}
			})
			t.Run("retry_after", func(t *testing.T) {
				ep := apptest.NewEndpoint(t, func(n int, _ apptest.Request, w http.ResponseWriter) {
					if n == 0 {
						w.Header().Set("Retry-After", "1")
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					w.WriteHeader(http.StatusOK)
				})
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"backoff.ra"}})
				rtPublish(t, c, "backoff.ra")
				reqs := ep.WaitRequests(t, 2, rtWait)
				if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
					t.Errorf("retry came %v after a 429 with Retry-After: 1, want at least 0.9s", gap)
				}
				rtWaitState(t, c, id, reqs[0].Header.Get("X-Webhook-Delivery-Id"), "delivered")
			})
		})
	}
}

// TestRetryResponseBodyRecorded checks that an attempt records the first 4 KiB
// of the endpoint's answer.
func TestRetryResponseBodyRecorded(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			t.Run("ascii", func(t *testing.T) {
				var b strings.Builder
				for i := 0; b.Len() < 10<<10; i++ {
					fmt.Fprintf(&b, "line %05d of the error page\n", i)
				}
				body := b.String()[:10<<10]
				ep := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
					w.Header().Set("Content-Type", "text/plain")
					w.WriteHeader(http.StatusInternalServerError)
					w.Write([]byte(body))
				})
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"body.x"}, "max_retries": 0})
				rtPublish(t, c, "body.x")
				did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
				_, attempts := rtWaitState(t, c, id, did, "failed")
				if len(attempts) != 1 {
					t.Fatalf("attempts = %d, want 1", len(attempts))
				}
				got, _ := attempts[0]["response_body"].(string)
				if got != body[:4096] {
					t.Errorf("response_body has %d bytes, want exactly the first 4096 bytes of the answer", len(got))
				}
			})
			t.Run("multibyte_and_nul", func(t *testing.T) {
				// A 3-byte rune straddles the 4096-byte cut, and the body holds a NUL:
				// the attempt must still be recorded (PostgreSQL text rejects both).
				body := "\x00" + strings.Repeat("a", 4094) + strings.Repeat("€", 2000)
				ep := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
					w.WriteHeader(http.StatusInternalServerError)
					w.Write([]byte(body))
				})
				id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"body.mb"}, "max_retries": 0})
				rtPublish(t, c, "body.mb")
				did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
				_, attempts := rtWaitState(t, c, id, did, "failed")
				if len(attempts) != 1 {
					t.Fatalf("attempts = %d, want 1", len(attempts))
				}
				got, _ := attempts[0]["response_body"].(string)
				if len(got) > 4096 || !utf8.ValidString(got) || strings.Contains(got, "\x00") {
					t.Errorf("response_body has %d bytes (valid UTF-8: %v, NUL: %v), want at most 4096 bytes of valid UTF-8 without NUL",
						len(got), utf8.ValidString(got), strings.Contains(got, "\x00"))
				}
				if !strings.Contains(got, strings.Repeat("a", 4000)) {
					t.Errorf("response_body lost the body's text: %q…", got[:min(len(got), 40)])
				}
			})
		})
	}
}

// TestGoneDisablesWebhook checks that a 410 answer deactivates the webhook at
// once and announces it with a webhook.disabled event.
func TestGoneDisablesWebhook(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, rtAnswer(http.StatusGone))
			watcher := apptest.NewEndpoint(t, nil)
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"gone.x"}})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "watcher", "webhook_url": watcher.URL, "event_types": []string{"webhook.disabled"}})

			rtPublish(t, c, "gone.x")
			did := ep.WaitRequests(t, 1, rtWait)[0].Header.Get("X-Webhook-Delivery-Id")
			d, attempts := rtWaitState(t, c, id, did, "failed")
			if len(attempts) != 1 || rtNum(attempts[0]["response_status"]) != 410 {
				t.Errorf("attempts = %v, want one with response_status 410", attempts)
			}
			if d["error_code"] != "endpoint_gone" {
				t.Errorf("error_code = %v, want endpoint_gone", d["error_code"])
			}
			wh := rtWebhook(t, c, id)
			if wh["is_active"] != false {
				t.Errorf("is_active = %v after 410, want false", wh["is_active"])
			}
			if s, _ := wh["disabled_reason"].(string); s == "" {
				t.Error("disabled_reason is empty")
			}

			req := watcher.WaitRequests(t, 1, rtWait)[0]
			if got := req.Header.Get("X-Webhook-Event"); got != "webhook.disabled" {
				t.Errorf("watcher X-Webhook-Event = %q, want webhook.disabled", got)
			}
			var body struct {
				Type string `json:"type"`
				Data struct {
					WebhookID string `json:"webhook_id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatalf("watcher body: %v", err)
			}
			if body.Type != "webhook.disabled" || body.Data.WebhookID != id {
				t.Errorf("watcher got type %q webhook_id %q, want webhook.disabled for %s", body.Type, body.Data.WebhookID, id)
			}

			time.Sleep(rtNoRetryWait)
			if n := len(ep.Requests()); n != 1 {
				t.Errorf("gone endpoint got %d requests, want 1 (no retry)", n)
			}
			if n := len(watcher.Requests()); n != 1 {
				t.Errorf("watcher got %d requests, want 1", n)
			}
		})
	}
}

// TestAutoDisableAndActivate checks that 10 consecutive failed attempts
// deactivate a webhook, that deliveries wait while it is inactive, and that
// activating it sends them.
func TestAutoDisableAndActivate(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, rtAnswer(500))
			watcher := apptest.NewEndpoint(t, nil)
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"auto.x"}, "max_retries": 0})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "watcher", "webhook_url": watcher.URL, "event_types": []string{"webhook.disabled"}})

			for i := 0; i < 10; i++ {
				rtPublish(t, c, "auto.x")
			}
			ep.WaitRequests(t, 10, rtWait)
			var wh map[string]any
			apptest.Eventually(t, rtWait, "webhook auto-disabled", func() bool {
				wh = rtWebhook(t, c, id)
				return wh["is_active"] == false
			})
			if rtNum(wh["consecutive_failures"]) != 10 {
				t.Errorf("consecutive_failures = %v, want 10", wh["consecutive_failures"])
			}
			if s, _ := wh["disabled_reason"].(string); s == "" {
				t.Error("disabled_reason is empty")
			}
			if rtNum(wh["failed_deliveries"]) != 10 {
				t.Errorf("failed_deliveries = %v, want 10", wh["failed_deliveries"])
			}

			req := watcher.WaitRequests(t, 1, rtWait)[0]
			var body struct {
				Type string `json:"type"`
				Data struct {
					WebhookID string `json:"webhook_id"`
				} `json:"data"`
			}
			json.Unmarshal(req.Body, &body)
			if body.Type != "webhook.disabled" || body.Data.WebhookID != id {
				t.Errorf("watcher got %s, want webhook.disabled for %s", req.Body, id)
			}

			// Events that come long after the disable (past the matcher's 1s
			// refresh) must wait too, not only those racing it.
			time.Sleep(1200 * time.Millisecond)
			held := []string{rtPublish(t, c, "auto.x"), rtPublish(t, c, "auto.x")}
			heldIDs := make([]string, len(held))
			for i, ev := range held {
				heldIDs[i] = rtEventDeliveryID(t, c, ev, id)
			}
			time.Sleep(500 * time.Millisecond)
			if n := len(ep.Requests()); n != 10 {
				t.Errorf("inactive webhook's endpoint got %d requests, want 10", n)
			}
			for _, did := range heldIDs {
				if d, _ := rtDelivery(t, c, id, did); d["status"] != "pending" {
					t.Errorf("delivery %s to the inactive webhook is %v, want pending", did, d["status"])
				}
			}

			ep.SetRespond(nil) // 200 from now on
			r := c.Admin("PUT", "/v1/webhooks/"+id+"/activate", nil)
			if r.Status != http.StatusOK || r.Data()["is_active"] != true {
				t.Fatalf("activate: %d %s", r.Status, r.Body)
			}
			for _, did := range heldIDs {
				rtWaitState(t, c, id, did, "delivered")
			}
			if n := len(ep.Requests()); n != 12 {
				t.Errorf("endpoint got %d requests, want 12", n)
			}
			wh = rtWebhook(t, c, id)
			if wh["is_active"] != true || rtNum(wh["consecutive_failures"]) != 0 {
				t.Errorf("after activate: is_active %v, consecutive_failures %v; want true, 0", wh["is_active"], wh["consecutive_failures"])
			}
			if _, ok := wh["disabled_reason"]; ok {
				t.Errorf("disabled_reason = %v after activate, want none", wh["disabled_reason"])
			}
			if got := rtDeliveries(t, c, id, "failed"); len(got) != 10 {
				t.Errorf("failed deliveries = %d, want the 10 earlier ones", len(got))
			}
		})
	}
}

// TestDeactivateHoldsDeliveries checks that a deactivated webhook gets nothing
// and that activating it sends what waited.
func TestDeactivateHoldsDeliveries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"pause.x"}})
			rtPublish(t, c, "pause.x")
			ep.WaitRequests(t, 1, rtWait)

			r := c.Admin("PUT", "/v1/webhooks/"+id+"/deactivate", nil)
			if r.Status != http.StatusOK || r.Data()["is_active"] != false {
				t.Fatalf("deactivate: %d %s", r.Status, r.Body)
			}
			if s, _ := r.Data()["disabled_reason"].(string); s == "" {
				t.Error("deactivated webhook has no disabled_reason")
			}
			held := []string{
				rtEventDeliveryID(t, c, rtPublish(t, c, "pause.x"), id),
				rtEventDeliveryID(t, c, rtPublish(t, c, "pause.x"), id),
			}
			time.Sleep(500 * time.Millisecond)
			if n := len(ep.Requests()); n != 1 {
				t.Errorf("deactivated webhook's endpoint got %d requests, want 1", n)
			}
			if got := rtDeliveries(t, c, id, "pending"); len(got) != 2 {
				t.Errorf("pending deliveries = %d, want 2", len(got))
			}

			r = c.Admin("PUT", "/v1/webhooks/"+id+"/activate", nil)
			if r.Status != http.StatusOK || r.Data()["is_active"] != true {
				t.Fatalf("activate: %d %s", r.Status, r.Body)
			}
			for _, did := range held {
				rtWaitState(t, c, id, did, "delivered")
			}
			if n := len(ep.Requests()); n != 3 {
				t.Errorf("endpoint got %d requests, want 3", n)
			}

			if r := c.Admin("PUT", "/v1/webhooks/00000000-0000-0000-0000-000000000000/deactivate", nil); r.Status != http.StatusNotFound || r.ErrorCode() != "not_found" {
				t.Errorf("deactivate unknown webhook: %d %s, want 404 not_found", r.Status, r.Body)
			}
		})
	}
}

// TestReplayFailedDelivery checks replaying a failed delivery: same id, both
// attempts kept, and 404s for unknown or foreign delivery ids.
func TestReplayFailedDelivery(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, rtAnswer(400))
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"replay.x"}})
			other, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "other", "webhook_url": ep.URL, "event_types": []string{"replay.other"}})
			rtPublish(t, c, "replay.x")
			first := ep.WaitRequests(t, 1, rtWait)[0]
			did := first.Header.Get("X-Webhook-Delivery-Id")
			rtWaitState(t, c, id, did, "failed")

			ep.SetRespond(nil) // the endpoint is fixed
			r := c.Admin("POST", "/v1/webhooks/"+id+"/deliveries/"+did+"/replay", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("replay: %d %s", r.Status, r.Body)
			}
			if r.JSON["success"] != true || r.JSON["message"] != "Delivery replayed successfully" {
				t.Errorf("replay answer = %s", r.Body)
			}
			if r.Data()["delivery_id"] != did || r.Data()["status"] != "pending" {
				t.Errorf("replay data = %v, want delivery_id %s status pending", r.Data(), did)
			}

			reqs := ep.WaitRequests(t, 2, rtWait)
			if got, want := reqs[1].Header.Get("webhook-id"), first.Header.Get("webhook-id"); got != want || got != did {
				t.Errorf("replayed webhook-id = %q, want the original %q", got, want)
			}
			if !bytes.Equal(reqs[1].Body, first.Body) {
				t.Errorf("replayed body differs:\n%s\n%s", reqs[1].Body, first.Body)
			}
			d, attempts := rtWaitState(t, c, id, did, "delivered")
			if len(attempts) != 2 {
				t.Fatalf("attempts = %d, want 2 (history kept): %v", len(attempts), attempts)
			}
			for i, want := range []int{400, 200} {
				if rtNum(attempts[i]["attempt_number"]) != i+1 || rtNum(attempts[i]["response_status"]) != want {
					t.Errorf("attempt %d = %v, want number %d status %d", i+1, attempts[i], i+1, want)
				}
			}
			if rtNum(d["attempt_number"]) != 2 {
				t.Errorf("attempt_number = %v, want 2", d["attempt_number"])
			}

			r = c.Admin("POST", "/v1/webhooks/"+id+"/deliveries/00000000-0000-0000-0000-000000000000/replay", nil)
			if r.Status != http.StatusNotFound || r.ErrorCode() != "not_found" {
				t.Errorf("replay unknown delivery: %d %s, want 404 not_found", r.Status, r.Body)
			}
			r = c.Admin("POST", "/v1/webhooks/"+other+"/deliveries/"+did+"/replay", nil)
			if r.Status != http.StatusNotFound || r.ErrorCode() != "not_found" {
				t.Errorf("replay through another webhook: %d %s, want 404 not_found", r.Status, r.Body)
			}
			time.Sleep(rtNoRetryWait)
			if n := len(ep.Requests()); n != 2 {
				t.Errorf("endpoint got %d requests, want 2", n)
			}
		})
	}
}

// TestRecoverFailedDeliveries checks bulk replay by time range and event type.
func TestRecoverFailedDeliveries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, rtAnswer(400))
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.x", "b.y"}, "max_retries": 0})
			from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)

			var ax []string
			for _, typ := range []string{"a.x", "a.x"} {
				ax = append(ax, rtEventDeliveryID(t, c, rtPublish(t, c, typ), id))
			}
			by := rtEventDeliveryID(t, c, rtPublish(t, c, "b.y"), id)
			for _, did := range append(ax, by) {
				rtWaitState(t, c, id, did, "failed")
			}
			ep.SetRespond(nil)

			r := c.Admin("POST", "/v1/webhooks/"+id+"/recover", map[string]any{"from": from, "event_types": []string{"a.x"}})
			if r.Status/100 != 2 || rtNum(r.Data()["recovered"]) != 2 {
				t.Fatalf("recover a.x: %d %s, want recovered 2", r.Status, r.Body)
			}
			for _, did := range ax {
				rtWaitState(t, c, id, did, "delivered")
			}
			time.Sleep(rtNoRetryWait)
			if d, _ := rtDelivery(t, c, id, by); d["status"] != "failed" {
				t.Errorf("b.y delivery is %v, want still failed", d["status"])
			}
			if n := len(ep.Requests()); n != 5 {
				t.Errorf("endpoint got %d requests, want 5", n)
			}

			r = c.Admin("POST", "/v1/webhooks/"+id+"/recover", map[string]any{"from": from})
			if r.Status/100 != 2 || rtNum(r.Data()["recovered"]) != 1 {
				t.Fatalf("recover all: %d %s, want recovered 1", r.Status, r.Body)
			}
			rtWaitState(t, c, id, by, "delivered")

			r = c.Admin("POST", "/v1/webhooks/"+id+"/recover", map[string]any{"event_types": []string{"a.x"}})
			if r.Status != http.StatusBadRequest || r.ErrorField() != "from" {
				t.Errorf("recover without from: %d %s, want 400 with field from", r.Status, r.Body)
			}
		})
	}
}

// TestRotateSecret checks that after a rotation both secrets verify during the
// overlap, and that a rotation without overlap drops the old secret.
func TestRotateSecret(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			id, secret1 := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"rot.x"}})

			rotate := func(body any) string {
				t.Helper()
				r := c.Admin("POST", "/v1/webhooks/"+id+"/rotate-secret", body)
				if r.Status != http.StatusOK {
					t.Fatalf("rotate-secret: %d %s", r.Status, r.Body)
				}
				s, _ := r.Data()["secret"].(string)
				if _, err := sign.DecodeSecret(s); err != nil {
					t.Fatalf("rotated secret %q: %v", s, err)
				}
				return s
			}
			verifies := func(secret string, req apptest.Request) bool {
				wh, err := standardwebhooks.NewWebhook(secret)
				if err != nil {
					t.Fatal(err)
				}
				return wh.Verify(req.Body, req.Header) == nil
			}
			checkCarrierSig := func(secret string, req apptest.Request) {
				t.Helper()
				key, err := sign.DecodeSecret(secret)
				if err != nil {
					t.Fatal(err)
				}
				mac := hmac.New(sha256.New, key)
				mac.Write(req.Body)
				if got, want := req.Header.Get("X-Carrier-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
					t.Errorf("X-Carrier-Signature = %q, want %q (the new secret)", got, want)
				}
			}

			secret2 := rotate(nil)
			if secret2 == secret1 {
				t.Fatal("rotate-secret returned the old secret")
			}
			if wh := rtWebhook(t, c, id); wh["previous_secret_expires_at"] == nil {
				t.Errorf("webhook shows no previous_secret_expires_at during the overlap: %v", wh)
			}
			rtPublish(t, c, "rot.x")
			req := ep.WaitRequests(t, 1, rtWait)[0]
			sigs := strings.Split(req.Header.Get("webhook-signature"), " ")
			if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
				t.Errorf("webhook-signature = %q, want two space-separated v1 signatures", req.Header.Get("webhook-signature"))
			}
			if !verifies(secret1, req) {
				t.Error("the old secret does not verify during the overlap")
			}
			if !verifies(secret2, req) {
				t.Error("the new secret does not verify")
			}
			checkCarrierSig(secret2, req)

			secret3 := rotate(map[string]any{"overlap_seconds": 0})
			rtPublish(t, c, "rot.x")
			req = ep.WaitRequests(t, 2, rtWait)[1]
			if sigs := strings.Split(req.Header.Get("webhook-signature"), " "); len(sigs) != 1 {
				t.Errorf("webhook-signature = %q, want one signature without overlap", req.Header.Get("webhook-signature"))
			}
			if !verifies(secret3, req) {
				t.Error("the new secret does not verify")
			}
			if verifies(secret2, req) || verifies(secret1, req) {
				t.Error("an old secret still verifies after a rotation without overlap")
			}
			checkCarrierSig(secret3, req)
		})
	}
}

// TestTestEndpoint checks POST /v1/webhooks/{id}/test: the webhook alone gets
// a webhook.test event, whatever its event types.
func TestTestEndpoint(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			others := apptest.NewEndpoint(t, nil)
			id, secret := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"scrape.completed"}})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "all", "webhook_url": others.URL, "event_types": []string{"*"}})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "tests", "webhook_url": others.URL, "event_types": []string{"webhook.test"}})

			r := c.Admin("POST", "/v1/webhooks/"+id+"/test", nil)
			if r.Status != http.StatusAccepted {
				t.Fatalf("test: %d %s", r.Status, r.Body)
			}
			req := ep.WaitRequests(t, 1, rtWait)[0]
			if got := req.Header.Get("X-Webhook-Event"); got != "webhook.test" {
				t.Errorf("X-Webhook-Event = %q, want webhook.test", got)
			}
			var body struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if body.Type != "webhook.test" || body.Data["webhook_id"] != id {
				t.Errorf("body = %s, want webhook.test with data.webhook_id %s", req.Body, id)
			}
			if s, _ := body.Data["message"].(string); s == "" {
				t.Errorf("body data has no message: %s", req.Body)
			}
			wh, _ := standardwebhooks.NewWebhook(secret)
			if err := wh.Verify(req.Body, req.Header); err != nil {
				t.Errorf("test delivery signature: %v", err)
			}
			time.Sleep(rtNoRetryWait)
			if n := len(others.Requests()); n != 0 {
				t.Errorf("other webhooks got %d requests, want none", n)
			}
			if n := len(ep.Requests()); n != 1 {
				t.Errorf("tested webhook got %d requests, want 1", n)
			}
			if r := c.Admin("POST", "/v1/webhooks/00000000-0000-0000-0000-000000000000/test", nil); r.Status != http.StatusNotFound {
				t.Errorf("test unknown webhook: %d, want 404", r.Status)
			}
		})
	}
}
