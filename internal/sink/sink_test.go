package sink_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/sign"
	"carrier/internal/sink"
	"carrier/internal/store/storetest"
)

// output collects what the sink prints; deliveries are printed from the
// server's goroutines while the test reads.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// serve runs r on ln until the test ends.
func serve(t *testing.T, r *sink.Receiver, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sink: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("sink did not stop within 10s")
		}
	})
}

// TestSinkWithCarrierDelivering runs a real Carrier delivering a published
// event to the sink, with the webhook's own secret, with another webhook's
// secret and with none, and checks what the sink prints, what it answers and
// what Carrier recorded.
func TestSinkWithCarrierDelivering(t *testing.T) {
	otherSecret, err := sign.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sinkSecret func(webhookSecret string) string
		verdict    string
		status     int
		state      string
	}{
		{"the webhook's secret", func(s string) string { return s }, sink.Verified, http.StatusOK, "delivered"},
		// Carrier does not retry a 4xx answer: the delivery is failed, kept and replayable.
		{"another webhook's secret", func(string) string { return otherSecret }, sink.Invalid, http.StatusUnauthorized, "failed"},
		{"no secret", func(string) string { return "" }, sink.Unchecked, http.StatusOK, "delivered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := apptest.Start(t, storetest.Engine{Name: storetest.SQLite, DataDir: t.TempDir()}, apptest.Options{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// The sink's address is needed to create the webhook, and the
			// webhook's secret to start the sink: listen first, serve after.
			webhookID, webhookSecret := c.CreateWebhook(apptest.AdminKey, map[string]any{
				"webhook_url": "http://" + ln.Addr().String() + "/hooks/carrier", "event_types": []string{"scrape.*"},
			})
			out := &output{}
			r, err := sink.NewReceiver(tt.sinkSecret(webhookSecret), out)
			if err != nil {
				t.Fatal(err)
			}
			serve(t, r, ln)

			eventID := c.Publish(apptest.AdminKey, map[string]any{"type": "scrape.completed", "data": map[string]any{"job_id": "job-1"}})
			var delivery map[string]any
			apptest.Eventually(t, 15*time.Second, "an attempt recorded", func() bool {
				list := c.Do("GET", "/v1/webhooks/"+webhookID+"/deliveries", apptest.AdminKey, nil).List()
				if len(list) == 1 && list[0]["response_status"] != nil {
					delivery = list[0]
					return true
				}
				return false
			})
			if got := delivery["response_status"]; got != float64(tt.status) {
				t.Errorf("Carrier recorded answer %v, want %d", got, tt.status)
			}
			if got := delivery["status"]; got != tt.state {
				t.Errorf("delivery status = %v, want %s", got, tt.state)
			}
			printed := out.String()
			for _, want := range []string{
				"POST /hooks/carrier", "event scrape.completed", "webhook-id " + delivery["uuid"].(string),
				`"id": "` + eventID + `"`, `"job_id": "job-1"`, tt.verdict,
			} {
				if !strings.Contains(printed, want) {
					t.Errorf("sink output lacks %q:\n%s", want, printed)
				}
			}
			for _, other := range []string{sink.Verified, sink.Invalid, sink.Unchecked} {
				if other != tt.verdict && strings.Contains(printed, other) {
					t.Errorf("sink output says %q as well:\n%s", other, printed)
				}
			}
		})
	}
}

// TestSinkRefusesUnsignedRequests checks that a sink with a secret answers a
// request without signature headers 401 and says which headers are missing.
func TestSinkRefusesUnsignedRequests(t *testing.T) {
	secret, err := sign.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	out := &output{}
	r, err := sink.NewReceiver(secret, out)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, r, ln)
	resp, err := http.Post("http://"+ln.Addr().String()+"/hook", "application/json", strings.NewReader(`{"type":"forged"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned request answered %d, want 401", resp.StatusCode)
	}
	if printed := out.String(); !strings.Contains(printed, sink.Invalid+": the webhook-id, webhook-timestamp or webhook-signature header is missing") ||
		!strings.Contains(printed, "event forged") {
		t.Errorf("sink output:\n%s", printed)
	}
}

// TestNewReceiverRefusesMalformedSecrets checks that a secret that is not a
// Standard Webhooks secret stops the sink at start instead of making every
// delivery look forged.
func TestNewReceiverRefusesMalformedSecrets(t *testing.T) {
	for _, secret := range []string{"hunter2", "whsec_not*base64", "whsec_c2hvcnQ="} {
		if _, err := sink.NewReceiver(secret, &output{}); err == nil || !strings.Contains(err.Error(), "secret") {
			t.Errorf("secret %q: err = %v, want an error about the secret", secret, err)
		}
	}
}
