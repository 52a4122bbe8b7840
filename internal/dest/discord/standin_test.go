package discord

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

// standIn is a local Discord: it executes webhooks at
// /api/webhooks/{id}/{token} (and /api/v10/...), enforces every documented
// message and embed limit the way Discord does (lengths in code points,
// 400 with Discord's "Invalid Form Body" error JSON), answers 404 "Unknown
// Webhook" for unknown webhooks, and rate limits per webhook with 429 and
// retry_after (body, Retry-After, X-RateLimit-* headers).
type standIn struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]string // webhook id -> token
	accepted [][]byte          // bodies of executed messages
	rejected []string          // error bodies sent back
	// bucket: at most limit executions per window per webhook.
	limit  int
	window time.Duration
	hits   map[string][]time.Time
	// override, when set, answers the next request instead.
	override []http.HandlerFunc
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	s := &standIn{t: t, tokens: map[string]string{"123456789012345678": "tok-EN_secret.value"}, hits: map[string][]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// url is the execute URL of the stand-in's webhook.
func (s *standIn) url() string {
	return s.srv.URL + "/api/webhooks/123456789012345678/tok-EN_secret.value"
}

func (s *standIn) then(h http.HandlerFunc) {
	s.mu.Lock()
	s.override = append(s.override, h)
	s.mu.Unlock()
}

func (s *standIn) setRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.limit, s.window = limit, window
	s.mu.Unlock()
}

func (s *standIn) lastAccepted() map[string]any {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accepted) == 0 {
		s.t.Fatalf("the stand-in accepted no message (rejections: %v)", s.rejected)
	}
	var m map[string]any
	if err := json.Unmarshal(s.accepted[len(s.accepted)-1], &m); err != nil {
		s.t.Fatal(err)
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if len(s.override) > 0 {
		h := s.override[0]
		s.override = s.override[1:]
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		h(w, r)
		return
	}
	s.mu.Unlock()

	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) == 5 && segs[0] == "api" && strings.HasPrefix(segs[1], "v") {
		segs = append(segs[:1], segs[2:]...)
	}
	if r.Method != http.MethodPost || len(segs) != 4 || segs[0] != "api" || segs[1] != "webhooks" {
		writeJSON(w, 404, map[string]any{"message": "404: Not Found", "code": 0})
		return
	}
	s.mu.Lock()
	token, ok := s.tokens[segs[2]]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, 404, map[string]any{"message": "Unknown Webhook", "code": 10015})
		return
	}
	if token != segs[3] {
		writeJSON(w, 401, map[string]any{"message": "Invalid Webhook Token", "code": 50027})
		return
	}
	if wait, ok := s.rateLimited(segs[2]); ok {
		secs := wait.Seconds()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
		w.Header().Set("X-RateLimit-Scope", "shared")
		writeJSON(w, 429, map[string]any{"message": "You are being rate limited.", "retry_after": secs, "global": false})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, 400, map[string]any{"message": "Cannot send an empty message", "code": 50006})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		writeJSON(w, 400, map[string]any{"message": "The request body contains invalid JSON.", "code": 50109})
		return
	}
	if errBody, bad := validateDiscordMessage(msg); bad {
		b, _ := json.Marshal(errBody)
		s.mu.Lock()
		s.rejected = append(s.rejected, string(b))
		s.mu.Unlock()
		writeJSON(w, 400, errBody)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, body)
	s.mu.Unlock()
	if r.URL.Query().Get("wait") == "true" {
		writeJSON(w, 200, map[string]any{"id": "1", "content": msg["content"]})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rateLimited records an execution and reports the wait when the bucket is
// exhausted.
func (s *standIn) rateLimited(id string) (time.Duration, bool) {
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

// problem is one invalid field of a request.
type problem struct {
	path []string
	code string
	msg  string
}

// validateDiscordMessage applies Discord's documented limits to an
// execute-webhook body and returns Discord's error body when any is broken.
func validateDiscordMessage(m map[string]any) (map[string]any, bool) {
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

// TestStandInEnforcesLimits proves the stand-in refuses what Discord refuses,
// so that the sender tests that pass through it mean something.
func TestStandInEnforcesLimits(t *testing.T) {
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, bad := validateDiscordMessage(roundTrip(t, c.msg))
			if !bad {
				t.Fatalf("accepted %s", c.name)
			}
			if body["code"] != float64(50035) && body["code"] != 50035 {
				t.Fatalf("code = %v", body["code"])
			}
			if !strings.Contains(describeForTest(body), c.path+":") {
				t.Fatalf("error %s does not name %s", describeForTest(body), c.path)
			}
		})
	}
	if _, bad := validateDiscordMessage(roundTrip(t, map[string]any{"embeds": []any{map[string]any{"description": long(4096), "fields": fields(1, 1024), "title": long(256), "footer": map[string]any{"text": long(600)}}}})); bad {
		t.Fatal("refused a message exactly at the limits")
	}
	if body, bad := validateDiscordMessage(map[string]any{}); !bad || body["code"] != 50006 {
		t.Fatalf("empty message: %v %v", body, bad)
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

func describeForTest(body map[string]any) string {
	b, _ := json.Marshal(body)
	var ae apiError
	json.Unmarshal(b, &ae)
	return describe(ae)
}
