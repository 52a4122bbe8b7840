package slacktest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEnforcesLimits proves the stand-in refuses what Slack refuses, so
// that the tests that pass through it mean something.
func TestEnforcesLimits(t *testing.T) {
	long := func(k int) string { return strings.Repeat("é", k) }
	tobj := func(typ, s string) map[string]any { return map[string]any{"type": typ, "text": s} }
	manyFields := func(k int) []any {
		var fs []any
		for i := 0; i < k; i++ {
			fs = append(fs, tobj("mrkdwn", "x"))
		}
		return fs
	}
	var fifty1 []any
	for i := 0; i < 51; i++ {
		fifty1 = append(fifty1, map[string]any{"type": "divider"})
	}
	cases := []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"header", map[string]any{"blocks": []any{map[string]any{"type": "header", "text": tobj("plain_text", long(151))}}}, "invalid_blocks"},
		{"header mrkdwn", map[string]any{"blocks": []any{map[string]any{"type": "header", "text": tobj("mrkdwn", "x")}}}, "invalid_blocks"},
		{"section text", map[string]any{"blocks": []any{map[string]any{"type": "section", "text": tobj("mrkdwn", long(3001))}}}, "invalid_blocks"},
		{"section astral", map[string]any{"blocks": []any{map[string]any{"type": "section", "text": tobj("mrkdwn", strings.Repeat("🙂", 1501))}}}, "invalid_blocks"},
		{"empty section", map[string]any{"blocks": []any{map[string]any{"type": "section"}}}, "invalid_blocks"},
		{"field count", map[string]any{"blocks": []any{map[string]any{"type": "section", "fields": manyFields(11)}}}, "invalid_blocks"},
		{"field length", map[string]any{"blocks": []any{map[string]any{"type": "section", "fields": []any{tobj("mrkdwn", long(2001))}}}}, "invalid_blocks"},
		{"empty field", map[string]any{"blocks": []any{map[string]any{"type": "section", "fields": []any{tobj("mrkdwn", "")}}}}, "invalid_blocks"},
		{"block count", map[string]any{"blocks": fifty1}, "invalid_blocks"},
		{"context", map[string]any{"blocks": []any{map[string]any{"type": "context", "elements": []any{tobj("mrkdwn", long(3001))}}}}, "invalid_blocks"},
		{"unknown block", map[string]any{"blocks": []any{map[string]any{"type": "carousel"}}}, "invalid_blocks"},
		{"blocks not a list", map[string]any{"text": "x", "blocks": "nope"}, "invalid_blocks_format"},
		{"nothing", map[string]any{"text": " "}, "no_text"},
		{"long text", map[string]any{"text": strings.Repeat("x", 40001)}, "invalid_payload"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, _ := Validate(roundTrip(t, c.msg)); code != c.code {
				t.Fatalf("code = %q, want %q", code, c.code)
			}
		})
	}
	ok := map[string]any{"text": "x", "blocks": []any{
		map[string]any{"type": "header", "text": tobj("plain_text", long(150))},
		map[string]any{"type": "section", "text": tobj("mrkdwn", long(3000)), "fields": []any{tobj("mrkdwn", long(2000))}},
	}}
	if code, why := Validate(roundTrip(t, ok)); code != "" {
		t.Fatalf("refused a message at the limits: %s %s", code, why)
	}
}

// TestAnswers: the HTTP answers a sender sees, and what the stand-in records.
func TestAnswers(t *testing.T) {
	s := New(t)
	post := func(url, contentType, body string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Post(url, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	msg := `{"text":"hello"}`
	for _, c := range []struct {
		url, contentType, body string
		status                 int
		answer                 string
	}{
		{s.URL(), "application/json", msg, 200, "ok"},
		{s.HookURL("unknownXYZ"), "application/json", msg, 404, "no_service"},
		{s.BaseURL() + "/hooks/x", "application/json", msg, 404, "no_service"},
		{s.HookURL(ArchivedSecret), "application/json", msg, 410, "channel_is_archived"},
		{s.HookURL(RevokedSecret), "application/json", msg, 403, "invalid_token"},
		{s.URL(), "text/plain", msg, 400, "invalid_payload"},
		{s.URL(), "application/json", `{"text":`, 400, "invalid_payload"},
		{s.URL(), "application/json", `{"text":""}`, 400, "no_text"},
		{s.URL(), "application/json", `{"blocks":[{"type":"section"}]}`, 400, "invalid_blocks"},
	} {
		if resp, got := post(c.url, c.contentType, c.body); resp.StatusCode != c.status || got != c.answer {
			t.Errorf("%s %s: %d %q, want %d %q", c.url, c.body, resp.StatusCode, got, c.status, c.answer)
		}
	}
	if n := len(s.Rejected()); n != 2 {
		t.Errorf("rejected %v, want the two invalid messages", s.Rejected())
	}
	other := s.AddHook("otherXYZ")
	if resp, _ := post(other, "application/json", msg); resp.StatusCode != 200 {
		t.Fatalf("added hook: %d", resp.StatusCode)
	}
	if got := s.WaitAccepted(t, 2, 10*time.Second); len(got) != 2 {
		t.Fatalf("accepted %d, want 2", len(got))
	}
	var m map[string]any
	json.Unmarshal(s.Accepted()[0], &m)
	if m["text"] != "hello" || s.LastAccepted()["text"] != "hello" {
		t.Fatalf("accepted = %v", m)
	}

	// Rate limited per webhook: 429 "rate_limited" with Retry-After.
	s.SetRateLimit(1, 30*time.Second)
	if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	resp, got := post(s.URL(), "application/json", msg)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || got != "rate_limited" || ra < 29 || ra > 30 {
		t.Fatalf("second: %d %q Retry-After %q", resp.StatusCode, got, resp.Header.Get("Retry-After"))
	}
	if resp, _ := post(other, "application/json", msg); resp.StatusCode != 200 {
		t.Fatalf("another hook's limit: %d", resp.StatusCode)
	}
	if s.Throttled() != 1 {
		t.Fatalf("throttled %d, want 1", s.Throttled())
	}
	s.SetRateLimit(0, 0)

	s.Then(func(w http.ResponseWriter, r *http.Request) { Answer(w, 500, "rollup_error") })
	if resp, got := post(s.URL(), "application/json", msg); resp.StatusCode != 500 || got != "rollup_error" {
		t.Fatalf("Then: %d %q", resp.StatusCode, got)
	}
	if resp, _ := post(s.URL(), "application/json", msg); resp.StatusCode != 200 {
		t.Fatalf("after Then: %d", resp.StatusCode)
	}
	if n, want := len(s.Requests()), 15; n != want {
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
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
