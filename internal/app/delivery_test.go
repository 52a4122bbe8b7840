package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"carrier/internal/app/apptest"
	"carrier/internal/sign"
	"carrier/internal/store/storetest"
)

// TestDeliverySignedAndVerifiable publishes an event and checks the request an
// endpoint receives: body shape, headers, and both signatures.
func TestDeliverySignedAndVerifiable(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			id, secret := c.CreateWebhook(apptest.AdminKey, map[string]any{
				"webhook_url": ep.URL + "/hook", "event_types": []string{"scrape.completed"},
				"custom_headers": map[string]string{"X-Team": "crawler"},
			})
			eventID := c.Publish(apptest.AdminKey, map[string]any{"type": "scrape.completed", "subject": "job-1", "data": map[string]any{"job_id": "job-1", "total": 10}})
			req := ep.WaitRequests(t, 1, 10*time.Second)[0]

			var body map[string]any
			if err := json.Unmarshal(req.Body, &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if got, want := body["id"], eventID; got != want {
				t.Errorf("body id = %v, want %v", got, want)
			}
			if got, want := body["type"], "scrape.completed"; got != want {
				t.Errorf("body type = %v, want %v", got, want)
			}
			if got, want := body["subject"], "job-1"; got != want {
				t.Errorf("body subject = %v, want %v", got, want)
			}
			if _, err := time.Parse(time.RFC3339, body["timestamp"].(string)); err != nil {
				t.Errorf("timestamp %v: %v", body["timestamp"], err)
			}
			if got := req.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := req.Header.Get("X-Webhook-Event"); got != "scrape.completed" {
				t.Errorf("X-Webhook-Event = %q", got)
			}
			if req.Header.Get("X-Webhook-Delivery-Id") == "" || req.Header.Get("X-Webhook-Delivery-Id") != req.Header.Get("webhook-id") {
				t.Errorf("X-Webhook-Delivery-Id %q and webhook-id %q should be the same delivery id", req.Header.Get("X-Webhook-Delivery-Id"), req.Header.Get("webhook-id"))
			}
			if _, err := time.Parse(time.RFC3339, req.Header.Get("X-Webhook-Timestamp")); err != nil {
				t.Errorf("X-Webhook-Timestamp %q: %v", req.Header.Get("X-Webhook-Timestamp"), err)
			}
			if got := req.Header.Get("X-Team"); got != "crawler" {
				t.Errorf("custom header X-Team = %q", got)
			}

			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(req.Body, req.Header); err != nil {
				t.Errorf("reference Standard Webhooks verification failed: %v", err)
			}
			key, err := sign.DecodeSecret(secret)
			if err != nil {
				t.Fatal(err)
			}
			mac := hmac.New(sha256.New, key)
			mac.Write(req.Body)
			if got, want := req.Header.Get("X-Carrier-Signature"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
				t.Errorf("X-Carrier-Signature = %q, want %q", got, want)
			}

			apptest.Eventually(t, 5*time.Second, "delivery recorded as delivered", func() bool {
				r := c.Admin("GET", "/v1/webhooks/"+id+"/deliveries", nil)
				l := r.List()
				return r.Status == http.StatusOK && len(l) == 1 && l[0]["status"] == "delivered"
			})
			r := c.Admin("GET", "/v1/webhooks/"+id, nil)
			if got := r.Data()["webhook_secret"]; got != "***hidden***" {
				t.Errorf("webhook_secret = %v, want hidden", got)
			}
			if got := r.Data()["successful_deliveries"]; got != float64(1) {
				t.Errorf("successful_deliveries = %v, want 1", got)
			}
		})
	}
}
