package app_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/dest/email/smtptest"
	"carrier/internal/store/storetest"
)

// TestHiddenEmailPasswordNotSentToNewHost replays the attack of issue 9:
// with a project key, point an email destination at your own SMTP server,
// send the password back as "***hidden***" and call /test. The update must
// be refused naming the password, and the stored password must reach only
// the server it was set for.
func TestHiddenEmailPasswordNotSentToNewHost(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			legit, attacker := smtptest.Start(t), smtptest.Start(t)
			// Both stand-ins use httptest's certificate, so one root trusts both.
			roots := legit.Roots
			c := apptest.Start(t, e, apptest.Options{EmailTLS: &tls.Config{RootCAs: roots}})
			_, key := c.NewProject("tenant")
			settings := func(port int, password string, mod func(map[string]any)) map[string]any {
				d := map[string]any{"type": "email", "host": "127.0.0.1", "port": port, "security": "starttls",
					"username": "ops", "password": password, "from": "carrier@example.com", "to": []string{"ops@example.com"}}
				if mod != nil {
					mod(d)
				}
				return d
			}
			r := c.Do("POST", "/v1/subscriptions", key, map[string]any{"name": "alerts", "event_types": []string{"*"},
				"destination": settings(legit.Port(), "s3cret-pw", nil)})
			if r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			id := r.Data()["subscription_id"].(string)
			shown := c.Do("GET", "/v1/subscriptions/"+id, key, nil)
			if strings.Contains(string(shown.Body), "s3cret-pw") || !strings.Contains(string(shown.Body), `"password":"***hidden***"`) {
				t.Fatalf("GET shows %s", shown.Body)
			}

			for field, mod := range map[string]func(map[string]any){
				"port":     func(d map[string]any) { d["port"] = attacker.Port() },
				"host":     func(d map[string]any) { d["host"] = "localhost" },
				"username": func(d map[string]any) { d["username"] = "someone-else" },
				"to":       func(d map[string]any) { d["to"] = []string{"me@attacker.example"} },
				"from":     func(d map[string]any) { d["from"] = "me@attacker.example" },
				"security": func(d map[string]any) { d["security"] = "tls" },
			} {
				u := c.Do("PUT", "/v1/subscriptions/"+id, key, map[string]any{"destination": settings(legit.Port(), "***hidden***", mod)})
				if u.Status != http.StatusBadRequest || u.ErrorCode() != "validation_error" || u.ErrorField() != "destination.password" ||
					!strings.Contains(string(u.Body), "destination.password is required when destination."+field+" changes") {
					t.Errorf("hidden password with another %s: %d %s", field, u.Status, u.Body)
				}
			}
			// Sent back unchanged (as read), the hidden password is kept.
			if u := c.Do("PUT", "/v1/subscriptions/"+id, key, map[string]any{"name": "alerts 2",
				"destination": settings(legit.Port(), "***hidden***", nil)}); u.Status != http.StatusOK {
				t.Fatalf("round trip with the password hidden: %d %s", u.Status, u.Body)
			}
			if r := c.Do("POST", "/v1/subscriptions/"+id+"/test", key, nil); r.Status >= 300 {
				t.Fatalf("test: %d %s", r.Status, r.Body)
			}
			apptest.Eventually(t, 15*time.Second, "test email at the legitimate server", func() bool { return len(legit.Messages()) == 1 })
			if got := legit.Auth(); len(got) != 1 || got[0] != "ops:s3cret-pw" {
				t.Errorf("legitimate server saw credentials %v", got)
			}
			if n := attacker.Connections(); n != 0 || len(attacker.Auth()) != 0 {
				t.Errorf("the attacker's server got %d connections, credentials %v", n, attacker.Auth())
			}
			// A new password for a new server is fine.
			if u := c.Do("PUT", "/v1/subscriptions/"+id, key, map[string]any{"destination": settings(attacker.Port(), "own-password", nil)}); u.Status != http.StatusOK {
				t.Errorf("new server with its own password: %d %s", u.Status, u.Body)
			}
		})
	}
}

// TestCustomHeaderValuesHidden: custom header values (often the endpoint's
// credentials) are shown hidden; sent back hidden they are kept only while
// the URL stays, and changing the URL without sending them again is refused
// rather than sending the stored values to the new URL.
func TestCustomHeaderValuesHidden(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep, other := apptest.NewEndpoint(t, nil), apptest.NewEndpoint(t, nil)
			_, key := c.NewProject("tenant")
			id, _ := c.CreateWebhook(key, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.*"},
				"custom_headers": map[string]string{"Authorization": "Bearer endpoint-cred-123", "X-Team": "ops"}})
			for _, path := range []string{"/v1/webhooks/" + id, "/v1/webhooks", "/v1/subscriptions/" + id, "/v1/subscriptions"} {
				r := c.Do("GET", path, key, nil)
				if r.Status != http.StatusOK || strings.Contains(string(r.Body), "endpoint-cred-123") || !strings.Contains(string(r.Body), `"Authorization":"***hidden***"`) {
					t.Errorf("GET %s shows %s", path, r.Body)
				}
			}
			hidden := map[string]string{"Authorization": "***hidden***", "X-Team": "***hidden***"}
			refused := []struct {
				path  string
				body  map[string]any
				field string
			}{
				{"/v1/webhooks/" + id, map[string]any{"webhook_url": other.URL, "custom_headers": hidden}, "custom_headers.Authorization"},
				{"/v1/webhooks/" + id, map[string]any{"webhook_url": other.URL}, "custom_headers"},
				{"/v1/subscriptions/" + id, map[string]any{"destination": map[string]any{"type": "webhook", "url": other.URL, "custom_headers": hidden}}, "destination.custom_headers.Authorization"},
			}
			for _, rc := range refused {
				u := c.Do("PUT", rc.path, key, rc.body)
				// Map order decides which hidden header is named first.
				if u.Status != http.StatusBadRequest || !strings.HasPrefix(u.ErrorField(), rc.field[:len(rc.field)-len("Authorization")]) && u.ErrorField() != rc.field {
					t.Errorf("PUT %s %v: %d %s", rc.path, rc.body, u.Status, u.Body)
				}
			}
			// Same URL, values hidden: kept, and sent.
			if u := c.Do("PUT", "/v1/webhooks/"+id, key, map[string]any{"name": "renamed", "custom_headers": hidden}); u.Status != http.StatusOK {
				t.Fatalf("round trip: %d %s", u.Status, u.Body)
			}
			c.Publish(key, map[string]any{"type": "a.b"})
			got := ep.WaitRequests(t, 1, 15*time.Second)
			if got[0].Header.Get("Authorization") != "Bearer endpoint-cred-123" || got[0].Header.Get("X-Team") != "ops" {
				t.Errorf("headers sent: %v", got[0].Header)
			}
			if n := len(other.Requests()); n != 0 {
				t.Errorf("the other URL got %d requests", n)
			}
		})
	}
}

// TestCustomHeaderValidation: values no request can carry and hop-by-hop or
// framing header names are refused when saved, naming the header.
func TestCustomHeaderValidation(t *testing.T) {
	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{})
	ep := apptest.NewEndpoint(t, nil)
	for name, value := range map[string]string{
		"X-Bell": "a\x07b", "X-Esc": "a\x1bb", "X-Del": "a\x7fb", "X-Nul": "a\x00b", "X-Lf": "a\nb",
		"Expect": "100-continue", "Trailer": "X", "Upgrade": "h2c", "TE": "trailers", "Proxy-Authorization": "Basic x",
		"Connection": "close", "Keep-Alive": "timeout=5", "Transfer-Encoding": "chunked", "Host": "evil", "Content-Length": "1",
	} {
		r := c.Admin("POST", "/v1/webhooks", map[string]any{"name": "h", "webhook_url": ep.URL, "event_types": []string{"a"},
			"custom_headers": map[string]string{name: value}})
		if r.Status != http.StatusBadRequest || r.ErrorCode() != "validation_error" || r.ErrorField() != "custom_headers."+name {
			t.Errorf("%s: %q: %d %s", name, value, r.Status, r.Body)
		}
	}
	if r := c.Admin("POST", "/v1/webhooks", map[string]any{"name": "h", "webhook_url": ep.URL, "event_types": []string{"a"},
		"custom_headers": map[string]string{"X-Tab": "a\tb"}}); r.Status != http.StatusCreated {
		t.Errorf("a tab is a valid header value: %d %s", r.Status, r.Body)
	}
}
