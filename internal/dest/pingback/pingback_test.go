package pingback

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"carrier/internal/store"
)

func TestLegacyAnswer(t *testing.T) {
	for _, c := range []struct {
		status, solution, code string
		want                   string
		solved                 bool
	}{
		{store.TaskSolved, "03AG-token", "", "03AG-token", true},
		{store.TaskFailed, "", "ERROR_CAPTCHA_UNSOLVABLE", "ERROR_CAPTCHA_UNSOLVABLE", false},
		{store.TaskFailed, "", "ERROR_BAD_DUPLICATES", "ERROR_BAD_DUPLICATES", false},
		{store.TaskFailed, "", "timeout", "ERROR_CAPTCHA_UNSOLVABLE", false}, // not a 2captcha code: the generic one
		{store.TaskExpired, "", "expired", "ERROR_CAPTCHA_UNSOLVABLE", false},
		{store.TaskPending, "", "", "CAPCHA_NOT_READY", false},
		{store.TaskSubmitted, "", "", "CAPCHA_NOT_READY", false},
		{"bogus", "", "", "", false},
	} {
		got, solved := LegacyAnswer(c.status, c.solution, c.code)
		if got != c.want || solved != c.solved {
			t.Errorf("LegacyAnswer(%q, %q, %q) = %q, %v; want %q, %v", c.status, c.solution, c.code, got, solved, c.want, c.solved)
		}
	}
}

func TestParseURLAndConfig(t *testing.T) {
	for _, raw := range []string{"https://mysite.com/pingback", "http://127.0.0.1:8080/cb?job=1"} {
		if _, err := ParseURL(raw); err != nil {
			t.Errorf("ParseURL(%q): %v", raw, err)
		}
	}
	for _, raw := range []string{"", "mysite.com/pingback", "ftp://mysite.com/x", "http://user:pw@mysite.com/", "https:///path", "http://x/" + strings.Repeat("a", MaxURLLength)} {
		if _, err := ParseURL(raw); err == nil {
			t.Errorf("ParseURL(%q) accepted it", raw)
		}
	}
	if _, err := ParseConfig(json.RawMessage(`{"type":"pingback","host":"mysite.com:8080"}`)); err != nil {
		t.Errorf("ParseConfig: %v", err)
	}
	for _, raw := range []string{`{}`, `{"host":"MySite.com"}`, `{"host":"a/b"}`, `{"host":"x","url":"y"}`, `{"host":3}`} {
		if _, err := ParseConfig(json.RawMessage(raw)); err == nil {
			t.Errorf("ParseConfig(%s) accepted it", raw)
		}
	}
}

// A pingback subscription sends only to its own host, whatever URL an event
// names: a tenant cannot route another host's pingbacks through it.
func TestSenderStaysOnItsHost(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		if form.Get("id") != "task-1" || form.Get("code") != "ANSWER" {
			t.Errorf("pingback body %q", b)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	job := func(target, subHost string) store.Job {
		cfg, _ := json.Marshal(Config{Host: subHost})
		return store.Job{
			Delivery:     store.Delivery{ID: "d1"},
			Event:        store.Event{ID: "e1", Type: "task.solved", Attributes: map[string]string{AttrURL: target}, Data: json.RawMessage(`{"task_id":"task-1","status":"solved","solution":"ANSWER"}`)},
			Subscription: store.Subscription{Kind: Kind, Destination: cfg, TimeoutSeconds: 5},
		}
	}
	s := &Sender{Client: srv.Client()}
	if res := s.Send(context.Background(), job(srv.URL+"/cb", host), time.Now()); !res.Delivered || res.URL != srv.URL+"/cb" {
		t.Errorf("own host: %+v", res)
	}
	res := s.Send(context.Background(), job(srv.URL+"/cb", "other.example:80"), time.Now())
	if res.Delivered || res.ErrorCode != "host_mismatch" || res.Retryable {
		t.Errorf("other host: %+v, want a final host_mismatch", res)
	}
	if hits != 1 {
		t.Errorf("%d requests reached the server, want 1", hits)
	}
}
