// Package discordtest runs a local Discord on loopback for tests inside and
// outside the discord package: it executes webhooks at
// /api/webhooks/{id}/{token} (and /api/v10/webhooks/...), enforces every
// documented message and embed limit the way Discord does (lengths in code
// points, 400 with Discord's "Invalid Form Body" error JSON), answers 404
// "Unknown Webhook" for unknown webhooks and 401 for a wrong token, and rate
// limits per webhook with 429 and retry_after (in the body, Retry-After and
// X-RateLimit-* headers). It records every message it accepted and every
// answer it gave, so a test can count what arrived.
package discordtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The webhook every stand-in knows from the start (URL executes it).
const (
	WebhookID = "123456789012345678"
	Token     = "tok-EN_secret.value"
)

// Server is a running stand-in.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]string // webhook id -> token
	accepted []Request         // executed messages
	rejected []string          // error bodies of 400 answers to invalid messages
	answers  []Request         // every request, with the status it got
	// bucket: at most limit executions per window per webhook.
	limit  int
	window time.Duration
	hits   map[string][]time.Time
	// until is the end of a Throttle: every execution before it is a 429.
	until time.Time
	// override, when set, answers the next requests instead, in order.
	override []http.HandlerFunc
	changed  chan struct{} // closed and replaced when a request was answered
}

// Request is one request the stand-in answered.
type Request struct {
	At      time.Time
	Webhook string // the webhook id ("" when the path named none)
	Status  int    // 0 when a Then handler answered
	Body    []byte
	// RetryAfter is the retry_after of a 429, in seconds.
	RetryAfter float64
}

// New starts a stand-in on 127.0.0.1 until the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, tokens: map[string]string{WebhookID: Token}, hits: map[string][]time.Time{}, changed: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the execute URL of the stand-in's webhook.
func (s *Server) URL() string { return s.WebhookURL(WebhookID, Token) }

// BaseURL is the stand-in's root, http://127.0.0.1:port.
func (s *Server) BaseURL() string { return s.srv.URL }

// WebhookURL is the execute URL of webhook id with token (known or not).
func (s *Server) WebhookURL(id, token string) string {
	return s.srv.URL + "/api/webhooks/" + id + "/" + token
}

// AddWebhook makes webhook id with token known and returns its execute URL.
func (s *Server) AddWebhook(id, token string) string {
	s.mu.Lock()
	s.tokens[id] = token
	s.mu.Unlock()
	return s.WebhookURL(id, token)
}

// Then makes h answer the next request (after those queued before it),
// whatever it is; the request body is read and discarded first.
func (s *Server) Then(h http.HandlerFunc) {
	s.mu.Lock()
	s.override = append(s.override, h)
	s.mu.Unlock()
}

// SetRateLimit allows at most limit executions per window per webhook and
// answers 429 beyond them, as Discord's per-webhook bucket does; limit 0
// turns it off.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.limit, s.window = limit, window
	s.mu.Unlock()
}

// Throttle answers every execution 429 for the next d, with the time left
// as retry_after, as Discord does while a webhook's bucket is empty (other
// posters on the same webhook used it up).
func (s *Server) Throttle(d time.Duration) {
	s.mu.Lock()
	s.until = time.Now().Add(d)
	s.mu.Unlock()
}

// Accepted returns the bodies of the messages executed so far.
func (s *Server) Accepted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.accepted))
	for i, r := range s.accepted {
		out[i] = r.Body
	}
	return out
}

// AcceptedRequests returns the messages executed so far, with when.
func (s *Server) AcceptedRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Messages returns the messages executed so far, decoded.
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

// LastAccepted returns the last message executed, decoded; the test fails
// when there is none.
func (s *Server) LastAccepted() map[string]any {
	s.t.Helper()
	ms := s.Messages()
	if len(ms) == 0 {
		s.t.Fatalf("the Discord stand-in accepted no message (rejections: %v)", s.Rejected())
	}
	return ms[len(ms)-1]
}

// Rejected returns the error bodies of the messages refused as invalid.
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

// WaitAccepted waits until at least n messages were executed and returns
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
			t.Fatalf("the Discord stand-in accepted %d messages within %v, want %d (rejections: %v)", got, timeout, n, s.Rejected())
			return nil
		}
	}
}

// record notes an answer and wakes WaitAccepted.
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
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

	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) == 5 && segs[0] == "api" && strings.HasPrefix(segs[1], "v") {
		segs = append(segs[:1], segs[2:]...)
	}
	answer := func(id string, status int, body []byte, v any) {
		writeJSON(w, status, v)
		s.record(Request{At: at, Webhook: id, Status: status, Body: body}, false)
	}
	if r.Method != http.MethodPost || len(segs) != 4 || segs[0] != "api" || segs[1] != "webhooks" {
		answer("", 404, nil, map[string]any{"message": "404: Not Found", "code": 0})
		return
	}
	id := segs[2]
	s.mu.Lock()
	token, ok := s.tokens[id]
	s.mu.Unlock()
	if !ok {
		answer(id, 404, nil, map[string]any{"message": "Unknown Webhook", "code": 10015})
		return
	}
	if token != segs[3] {
		answer(id, 401, nil, map[string]any{"message": "Invalid Webhook Token", "code": 50027})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if wait, limit, ok := s.rateLimited(id); ok {
		secs := math.Round(wait.Seconds()*1000) / 1000
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(limit))
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatFloat(float64(at.Add(wait).UnixMilli())/1000, 'f', 3, 64))
		w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
		w.Header().Set("X-RateLimit-Bucket", "webhook-"+id)
		w.Header().Set("X-RateLimit-Scope", "shared")
		writeJSON(w, 429, map[string]any{"message": "You are being rate limited.", "retry_after": secs, "global": false})
		s.record(Request{At: at, Webhook: id, Status: 429, Body: body, RetryAfter: secs}, false)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		answer(id, 400, body, map[string]any{"message": "Cannot send an empty message", "code": 50006})
		return
	}
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		answer(id, 400, body, map[string]any{"message": "The request body contains invalid JSON.", "code": 50109})
		return
	}
	if errBody, bad := Validate(msg); bad {
		b, _ := json.Marshal(errBody)
		s.mu.Lock()
		s.rejected = append(s.rejected, string(b))
		s.mu.Unlock()
		answer(id, 400, body, errBody)
		return
	}
	status := http.StatusNoContent
	if r.URL.Query().Get("wait") == "true" {
		status = http.StatusOK
		writeJSON(w, status, map[string]any{"id": "1", "content": msg["content"]})
	} else {
		w.WriteHeader(status)
	}
	s.record(Request{At: at, Webhook: id, Status: status, Body: body}, true)
}

// rateLimited records an execution and reports the wait (and the limit)
// when the webhook's bucket is exhausted.
func (s *Server) rateLimited(id string) (time.Duration, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Before(s.until) {
		return s.until.Sub(now), max(s.limit, 1), true
	}
	if s.limit <= 0 {
		return 0, 0, false
	}
	var recent []time.Time
	for _, t := range s.hits[id] {
		if now.Sub(t) < s.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= s.limit {
		s.hits[id] = recent
		return s.window - now.Sub(recent[0]), s.limit, true
	}
	s.hits[id] = append(recent, now)
	return 0, s.limit, false
}

// problem is one invalid field of a request.
type problem struct {
	path []string
	code string
	msg  string
}

// Validate applies Discord's documented limits to an execute-webhook body
// (decoded JSON) and returns Discord's error body when any is broken: code
// 50035 "Invalid Form Body" with the errors by field path, or 50006 for an
// empty message.
func Validate(m map[string]any) (map[string]any, bool) {
	var probs []problem
	add := func(code, msg string, path ...string) { probs = append(probs, problem{path, code, msg}) }
	maxLen := func(v any, limit int, path ...string) {
		if s, ok := v.(string); ok && utf8.RuneCountInString(s) > limit {
			add("BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", limit), path...)
		} else if v != nil && !ok {
			add("BASE_TYPE_STRING", "Value must be a string.", path...)
		}
	}
	required := func(v any, limit int, path ...string) {
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			add("BASE_TYPE_REQUIRED", "This field is required", path...)
			return
		}
		maxLen(s, limit, path...)
	}

	content, _ := m["content"].(string)
	maxLen(m["content"], 2000, "content")
	if u, ok := m["username"]; ok {
		s, _ := u.(string)
		n := utf8.RuneCountInString(s)
		low := strings.ToLower(s)
		switch {
		case n < 1 || n > 80:
			add("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.", "username")
		case strings.Contains(low, "discord"):
			add("USERNAME_INVALID_CONTAINS", `Username cannot contain "discord"`, "username")
		case strings.Contains(low, "clyde"):
			add("USERNAME_INVALID_CONTAINS", `Username cannot contain "clyde"`, "username")
		}
	}
	if am, ok := m["allowed_mentions"].(map[string]any); ok {
		parse, _ := am["parse"].([]any)
		for i, p := range parse {
			if p != "roles" && p != "users" && p != "everyone" {
				add("ENUM_TYPE_COERCE", fmt.Sprintf("Value %q is not a valid enum value.", p), "allowed_mentions", "parse", strconv.Itoa(i))
			}
			for _, list := range []string{"users", "roles"} {
				if p == list {
					if l, _ := am[list].([]any); len(l) > 0 {
						add("MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", fmt.Sprintf("parse:[\"%s\"] and %s: [ids...] are mutually exclusive.", list, list), "allowed_mentions", "parse", strconv.Itoa(i))
					}
				}
			}
		}
		for _, list := range []string{"users", "roles"} {
			if l, _ := am[list].([]any); len(l) > 100 {
				add("BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.", "allowed_mentions", list)
			}
		}
	}

	embeds, _ := m["embeds"].([]any)
	if len(embeds) > 10 {
		add("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.", "embeds")
	}
	total := 0
	count := func(v any) {
		if s, ok := v.(string); ok {
			total += utf8.RuneCountInString(s)
		}
	}
	for i, ev := range embeds {
		e, ok := ev.(map[string]any)
		p := func(rest ...string) []string { return append([]string{"embeds", strconv.Itoa(i)}, rest...) }
		if !ok {
			add("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType", p()...)
			continue
		}
		maxLen(e["title"], 256, p("title")...)
		maxLen(e["description"], 4096, p("description")...)
		count(e["title"])
		count(e["description"])
		if c, ok := e["color"]; ok {
			f, isNum := c.(float64)
			if !isNum || f != math.Trunc(f) || f < 0 || f > 0xFFFFFF {
				add("NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215.", p("color")...)
			}
		}
		if ts, ok := e["timestamp"]; ok {
			s, _ := ts.(string)
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				add("DATE_TYPE_PARSE", fmt.Sprintf("Could not parse %s. Should be ISO8601.", s), p("timestamp")...)
			}
		}
		if f, ok := e["footer"].(map[string]any); ok {
			required(f["text"], 2048, p("footer", "text")...)
			count(f["text"])
		}
		if a, ok := e["author"].(map[string]any); ok {
			required(a["name"], 256, p("author", "name")...)
			count(a["name"])
		}
		fields, _ := e["fields"].([]any)
		if len(fields) > 25 {
			add("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.", p("fields")...)
		}
		for j, fv := range fields {
			f, _ := fv.(map[string]any)
			required(f["name"], 256, p("fields", strconv.Itoa(j), "name")...)
			required(f["value"], 1024, p("fields", strconv.Itoa(j), "value")...)
			if in, ok := f["inline"]; ok {
				if _, isBool := in.(bool); !isBool {
					add("BASE_TYPE_BOOLEAN", "Must be either true or false.", p("fields", strconv.Itoa(j), "inline")...)
				}
			}
			count(f["name"])
			count(f["value"])
		}
	}
	if total > 6000 {
		add("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000", "embeds")
	}
	if len(probs) == 0 && strings.TrimSpace(content) == "" && len(embeds) == 0 {
		return map[string]any{"message": "Cannot send an empty message", "code": 50006}, true
	}
	if len(probs) == 0 {
		return nil, false
	}
	sort.SliceStable(probs, func(a, b int) bool { return strings.Join(probs[a].path, ".") < strings.Join(probs[b].path, ".") })
	errs := map[string]any{}
	for _, pr := range probs {
		node := errs
		for _, k := range pr.path {
			next, ok := node[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
		list, _ := node["_errors"].([]any)
		node["_errors"] = append(list, map[string]any{"code": pr.code, "message": pr.msg})
	}
	return map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": errs}, true
}
