package discordtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEnforcesLimits proves the stand-in refuses what Discord refuses, so
// that the tests that pass through it mean something.
func TestEnforcesLimits(t *testing.T) {
	long := func(k int) string { return strings.Repeat("é", k) }
	fields := func(k, valueLen int) []any {
		var fs []any
		for i := 0; i < k; i++ {
			fs = append(fs, map[string]any{"name": fmt.Sprint("f", i), "value": long(valueLen)})
		}
		return fs
	}
	cases := []struct {
		name string
		msg  map[string]any
		path string
	}{
		{"title", map[string]any{"embeds": []any{map[string]any{"title": long(257)}}}, "embeds.0.title"},
		{"description", map[string]any{"embeds": []any{map[string]any{"description": long(4097)}}}, "embeds.0.description"},
		{"field count", map[string]any{"embeds": []any{map[string]any{"fields": fields(26, 1)}}}, "embeds.0.fields"},
		{"field value", map[string]any{"embeds": []any{map[string]any{"fields": fields(1, 1025)}}}, "embeds.0.fields.0.value"},
		{"empty field value", map[string]any{"embeds": []any{map[string]any{"fields": fields(1, 0)}}}, "embeds.0.fields.0.value"},
		{"footer", map[string]any{"embeds": []any{map[string]any{"footer": map[string]any{"text": long(2049)}}}}, "embeds.0.footer.text"},
		{"author", map[string]any{"embeds": []any{map[string]any{"author": map[string]any{"name": long(257)}}}}, "embeds.0.author.name"},
		{"total", map[string]any{"embeds": []any{map[string]any{"description": long(4000), "fields": fields(3, 1000)}}}, "embeds"},
		{"total across embeds", map[string]any{"embeds": []any{map[string]any{"description": long(4000)}, map[string]any{"description": long(2001)}}}, "embeds"},
		{"embed count", map[string]any{"embeds": []any{map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}}}, "embeds"},
		{"content", map[string]any{"content": long(2001)}, "content"},
		{"username", map[string]any{"content": "x", "username": "My Discord Bot"}, "username"},
		{"color", map[string]any{"embeds": []any{map[string]any{"color": 0x1000000}}}, "embeds.0.color"},
		{"timestamp", map[string]any{"embeds": []any{map[string]any{"timestamp": "yesterday"}}}, "embeds.0.timestamp"},
		{"allowed_mentions parse", map[string]any{"content": "x", "allowed_mentions": map[string]any{"parse": []any{"roles"}, "roles": []any{"1"}}}, "allowed_mentions.parse.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, bad := Validate(roundTrip(t, c.msg))
			if !bad {
				t.Fatalf("accepted %s", c.name)
			}
			if body["code"] != 50035 {
				t.Fatalf("code = %v", body["code"])
			}
			if paths := errorPaths(roundTrip(t, body)); !slices.Contains(paths, c.path) {
				t.Fatalf("errors name %v, not %s", paths, c.path)
			}
		})
	}
	if _, bad := Validate(roundTrip(t, map[string]any{"embeds": []any{map[string]any{"description": long(4096), "fields": fields(1, 1024), "title": long(256), "footer": map[string]any{"text": long(600)}}}})); bad {
		t.Fatal("refused a message exactly at the limits")
	}
	if body, bad := Validate(map[string]any{}); !bad || body["code"] != 50006 {
		t.Fatalf("empty message: %v %v", body, bad)
	}
}

// TestAnswers: the HTTP answers a sender sees, and what the stand-in records.
func TestAnswers(t *testing.T) {
	s := New(t)
	post := func(url, contentType, body string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Post(url, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp, m
	}
	msg := `{"content":"hello","embeds":[{"title":"t"}]}`
	if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("execute: %d", resp.StatusCode)
	}
	if resp, m := post(s.URL()+"?wait=true", "application/json", msg); resp.StatusCode != 200 || m["content"] != "hello" {
		t.Fatalf("execute with wait: %d %v", resp.StatusCode, m)
	}
	if resp, _ := post(s.BaseURL()+"/api/v10/webhooks/"+WebhookID+"/"+Token, "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("versioned path: %d", resp.StatusCode)
	}
	if resp, m := post(s.WebhookURL("999", "x"), "application/json", msg); resp.StatusCode != 404 || m["code"] != float64(10015) {
		t.Fatalf("unknown webhook: %d %v", resp.StatusCode, m)
	}
	if resp, m := post(s.WebhookURL(WebhookID, "wrong"), "application/json", msg); resp.StatusCode != 401 || m["code"] != float64(50027) {
		t.Fatalf("wrong token: %d %v", resp.StatusCode, m)
	}
	if resp, m := post(s.URL(), "text/plain", msg); resp.StatusCode != 400 || m["code"] != float64(50006) {
		t.Fatalf("not JSON: %d %v", resp.StatusCode, m)
	}
	if resp, m := post(s.URL(), "application/json", `{"embeds":[{"title":"`+strings.Repeat("x", 300)+`"}]}`); resp.StatusCode != 400 || m["code"] != float64(50035) {
		t.Fatalf("invalid form body: %d %v", resp.StatusCode, m)
	}
	if n := len(s.Rejected()); n != 1 {
		t.Fatalf("rejected %d, want 1", n)
	}
	other := s.AddWebhook("42", "other-token")
	if resp, _ := post(other, "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("added webhook: %d", resp.StatusCode)
	}
	if got := len(s.WaitAccepted(t, 4, 10*time.Second)); got != 4 {
		t.Fatalf("accepted %d, want 4", got)
	}
	if m := s.LastAccepted(); m["content"] != "hello" {
		t.Fatalf("last accepted = %v", m)
	}

	// The bucket: two executions per window, then 429 with the wait in the
	// body and the headers, for that webhook only.
	s.SetRateLimit(2, 30*time.Second)
	for i := range 2 {
		if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 204 {
			t.Fatalf("execution %d: %d", i, resp.StatusCode)
		}
	}
	resp, m := post(s.URL(), "application/json", msg)
	if resp.StatusCode != 429 || m["global"] != false || m["message"] != "You are being rate limited." {
		t.Fatalf("over the limit: %d %v", resp.StatusCode, m)
	}
	wait, _ := m["retry_after"].(float64)
	if wait <= 25 || wait > 30 {
		t.Fatalf("retry_after = %v", m["retry_after"])
	}
	h := resp.Header
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 26 || ra > 30 || h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != "0" ||
		h.Get("X-RateLimit-Reset-After") == "" || h.Get("X-RateLimit-Reset") == "" || h.Get("X-RateLimit-Scope") != "shared" {
		t.Fatalf("429 headers = %v", h)
	}
	if resp, _ := post(other, "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("another webhook's bucket: %d", resp.StatusCode)
	}
	if s.Throttled() != 1 {
		t.Fatalf("throttled %d, want 1", s.Throttled())
	}
	s.SetRateLimit(0, 0)

	// Throttle: every execution is a 429 until it ends.
	s.Throttle(20 * time.Second)
	resp, m = post(other, "application/json", msg)
	if wait, _ := m["retry_after"].(float64); resp.StatusCode != 429 || wait <= 15 || wait > 20 {
		t.Fatalf("throttled: %d %v", resp.StatusCode, m)
	}
	s.Throttle(0)
	if resp, _ := post(other, "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("after the throttle: %d", resp.StatusCode)
	}
	if s.Throttled() != 2 {
		t.Fatalf("throttled %d, want 2", s.Throttled())
	}

	// Then answers the next request, whatever it is.
	s.Then(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 503 {
		t.Fatalf("Then: %d", resp.StatusCode)
	}
	if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 204 {
		t.Fatalf("after Then: %d", resp.StatusCode)
	}
	if n, want := len(s.Requests()), 16; n != want {
		t.Fatalf("requests recorded %d, want %d", n, want)
	}
}

func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// errorPaths lists the field paths of an Invalid Form Body error.
func errorPaths(body map[string]any) []string {
	var out []string
	var walk func(prefix string, node map[string]any)
	walk = func(prefix string, node map[string]any) {
		for k, v := range node {
			if k == "_errors" {
				out = append(out, prefix)
				continue
			}
			if child, ok := v.(map[string]any); ok {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, child)
			}
		}
	}
	errs, _ := body["errors"].(map[string]any)
	walk("", errs)
	return out
}
