// Package slacktest runs a local Slack incoming-webhook service on loopback
// for tests inside and outside the slack package. It accepts posts at
// /services/{team}/{bot}/{secret}, enforces the Block Kit limits (counting
// UTF-16 code units, the stricter of the plausible counts) and answers as
// Slack does: 200 "ok", 400 "invalid_blocks"/"invalid_blocks_format"/
// "invalid_payload"/"no_text", 404 "no_service", 410 "channel_is_archived",
// 403 "invalid_token", and 429 "rate_limited" with Retry-After when its
// per-webhook rate limit is exceeded. It records every message it accepted
// and every answer it gave, so a test can count what arrived.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// The webhooks every stand-in knows: Secret posts to the channel, the
// other two are a webhook of an archived channel and a revoked one.
const (
	Team           = "T0001"
	Bot            = "B0002"
	Secret         = "s3cr3tXYZ"
	ArchivedSecret = "archivedXYZ"
	RevokedSecret  = "revokedXYZ"
)

// Server is a running stand-in.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	hooks    map[string]string // secret -> state: "ok", "archived", "revoked"
	accepted []Request
	rejected []string
	answers  []Request
	limit    int
	window   time.Duration
	hits     map[string][]time.Time
	override []http.HandlerFunc
	changed  chan struct{} // closed and replaced when a request was answered
}

// Request is one request the stand-in answered.
type Request struct {
	At     time.Time
	Secret string // the webhook's secret ("" when the path named none)
	Status int    // 0 when a Then handler answered
	Answer string // the body Slack answers, such as "ok" or "invalid_blocks"
	Body   []byte
}

// New starts a stand-in on 127.0.0.1 until the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, hooks: map[string]string{Secret: "ok", ArchivedSecret: "archived", RevokedSecret: "revoked"},
		hits: map[string][]time.Time{}, changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the URL of the stand-in's working webhook.
func (s *Server) URL() string { return s.HookURL(Secret) }

// BaseURL is the stand-in's root, http://127.0.0.1:port.
func (s *Server) BaseURL() string { return s.srv.URL }

// HookURL is the URL of the webhook with secret (known or not).
func (s *Server) HookURL(secret string) string {
	return s.srv.URL + "/services/" + Team + "/" + Bot + "/" + secret
}

// AddHook makes a working webhook with secret known and returns its URL.
func (s *Server) AddHook(secret string) string {
	s.mu.Lock()
	s.hooks[secret] = "ok"
	s.mu.Unlock()
	return s.HookURL(secret)
}

// Then makes h answer the next request (after those queued before it),
// whatever it is; the request body is read and discarded first.
func (s *Server) Then(h http.HandlerFunc) {
	s.mu.Lock()
	s.override = append(s.override, h)
	s.mu.Unlock()
}

// SetRateLimit allows at most limit posts per window per webhook and
// answers 429 beyond them; limit 0 turns it off.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.limit, s.window = limit, window
	s.mu.Unlock()
}

// Accepted returns the bodies of the messages posted so far.
func (s *Server) Accepted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.accepted))
	for i, r := range s.accepted {
		out[i] = r.Body
	}
	return out
}

// AcceptedRequests returns the messages posted so far, with when.
func (s *Server) AcceptedRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Messages returns the messages posted so far, decoded.
func (s *Server) Messages() []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for _, b := range s.Accepted() {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// LastAccepted returns the last message posted, decoded; the test fails
// when there is none.
func (s *Server) LastAccepted() map[string]any {
	s.t.Helper()
	ms := s.Messages()
	if len(ms) == 0 {
		s.t.Fatalf("the Slack stand-in accepted no message (rejections: %v)", s.Rejected())
	}
	return ms[len(ms)-1]
}

// Rejected returns "code: why" of every message refused as invalid.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Requests returns every request answered so far, accepted or not.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.answers...)
}

// Throttled is how many requests were answered 429 by the rate limit.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.answers {
		if r.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

// WaitAccepted waits until at least n messages were posted and returns
// their bodies; the test fails after timeout.
func (s *Server) WaitAccepted(t testing.TB, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.accepted), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Accepted()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("the Slack stand-in accepted %d messages within %v, want %d (rejections: %v)", got, timeout, n, s.Rejected())
			return nil
		}
	}
}

func (s *Server) record(r Request, accepted bool) {
	s.mu.Lock()
	s.answers = append(s.answers, r)
	if accepted {
		s.accepted = append(s.accepted, r)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Answer writes an answer as Slack's webhooks do: a short text/html body.
func Answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	s.mu.Lock()
	if len(s.override) > 0 {
		h := s.override[0]
		s.override = s.override[1:]
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		h(w, r)
		s.record(Request{At: at}, false)
		return
	}
	s.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	secret := ""
	answer := func(status int, text string) {
		Answer(w, status, text)
		s.record(Request{At: at, Secret: secret, Status: status, Answer: text, Body: body}, status == http.StatusOK)
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(segs) != 4 || segs[0] != "services" {
		answer(404, "no_service")
		return
	}
	secret = segs[3]
	s.mu.Lock()
	state := s.hooks[secret]
	s.mu.Unlock()
	switch state {
	case "":
		answer(404, "no_service")
		return
	case "archived":
		answer(410, "channel_is_archived")
		return
	case "revoked":
		answer(403, "invalid_token")
		return
	}
	if wait, limited := s.rateLimited(secret); limited {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		answer(429, "rate_limited")
		return
	}
	var msg map[string]any
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &msg) != nil {
		answer(400, "invalid_payload")
		return
	}
	if code, why := Validate(msg); code != "" {
		s.mu.Lock()
		s.rejected = append(s.rejected, code+": "+why)
		s.mu.Unlock()
		answer(400, code)
		return
	}
	answer(200, "ok")
}

func (s *Server) rateLimited(id string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit <= 0 {
		return 0, false
	}
	now := time.Now()
	var recent []time.Time
	for _, t := range s.hits[id] {
		if now.Sub(t) < s.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= s.limit {
		s.hits[id] = recent
		return s.window - now.Sub(recent[0]), true
	}
	s.hits[id] = append(recent, now)
	return 0, false
}

// units counts s in UTF-16 code units.
func units(s string) int { return len(utf16.Encode([]rune(s))) }

// Validate applies the Block Kit limits to a message (decoded JSON) and
// returns Slack's error string and why, or "" when it is valid.
func Validate(m map[string]any) (code, why string) {
	text, hasText := m["text"].(string)
	blocks, hasBlocks := m["blocks"].([]any)
	if _, ok := m["blocks"]; ok && !hasBlocks {
		return "invalid_blocks_format", "blocks is not a list"
	}
	if (!hasText || strings.TrimSpace(text) == "") && len(blocks) == 0 {
		return "no_text", "neither text nor blocks"
	}
	if units(text) > 40000 {
		return "invalid_payload", "text longer than 40000"
	}
	if len(blocks) > 50 {
		return "invalid_blocks", fmt.Sprintf("%d blocks, at most 50", len(blocks))
	}
	textObject := func(v any, limit int, where string, types ...string) string {
		o, ok := v.(map[string]any)
		if !ok {
			return where + ": not a text object"
		}
		typ, _ := o["type"].(string)
		okType := false
		for _, t := range types {
			okType = okType || typ == t
		}
		if !okType {
			return where + ": type " + typ
		}
		s, _ := o["text"].(string)
		if units(s) < 1 || units(s) > limit {
			return fmt.Sprintf("%s: text of %d, must be 1 to %d", where, units(s), limit)
		}
		return ""
	}
	for i, bv := range blocks {
		b, _ := bv.(map[string]any)
		where := fmt.Sprintf("blocks[%d]", i)
		if id, ok := b["block_id"].(string); ok && units(id) > 255 {
			return "invalid_blocks", where + ": block_id too long"
		}
		switch b["type"] {
		case "header":
			if p := textObject(b["text"], 150, where+".text", "plain_text"); p != "" {
				return "invalid_blocks", p
			}
		case "section":
			_, hasT := b["text"]
			fields, _ := b["fields"].([]any)
			if !hasT && len(fields) == 0 {
				return "invalid_blocks", where + ": section without text or fields"
			}
			if hasT {
				if p := textObject(b["text"], 3000, where+".text", "plain_text", "mrkdwn"); p != "" {
					return "invalid_blocks", p
				}
			}
			if len(fields) > 10 {
				return "invalid_blocks", fmt.Sprintf("%s: %d fields, at most 10", where, len(fields))
			}
			for j, f := range fields {
				if p := textObject(f, 2000, fmt.Sprintf("%s.fields[%d]", where, j), "plain_text", "mrkdwn"); p != "" {
					return "invalid_blocks", p
				}
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) < 1 || len(els) > 10 {
				return "invalid_blocks", fmt.Sprintf("%s: %d elements, must be 1 to 10", where, len(els))
			}
			for j, e := range els {
				if p := textObject(e, 3000, fmt.Sprintf("%s.elements[%d]", where, j), "plain_text", "mrkdwn"); p != "" {
					return "invalid_blocks", p
				}
			}
		case "divider":
		default:
			return "invalid_blocks", fmt.Sprintf("%s: unknown type %v", where, b["type"])
		}
	}
	return "", ""
}
