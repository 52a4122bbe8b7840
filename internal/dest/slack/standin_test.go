package slack

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
)

// standIn is a local Slack incoming-webhook service. It accepts posts at
// /services/{team}/{bot}/{secret}, enforces the Block Kit limits (counting
// UTF-16 code units, the stricter of the plausible counts) and answers as
// Slack does: 200 "ok", 400 "invalid_blocks"/"invalid_payload"/"no_text",
// 404 "no_service", 410 "channel_is_archived", 403 "invalid_token", and 429
// with Retry-After when its per-webhook rate limit is exceeded.
type standIn struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	hooks    map[string]string // secret -> state: "ok", "archived", "revoked"
	accepted [][]byte
	rejected []string
	limit    int
	window   time.Duration
	hits     map[string][]time.Time
	override []http.HandlerFunc
}

const hookPath = "/services/T0001/B0002/s3cr3tXYZ"

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	s := &standIn{t: t, hooks: map[string]string{"s3cr3tXYZ": "ok", "archivedXYZ": "archived", "revokedXYZ": "revoked"}, hits: map[string][]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) url() string { return s.srv.URL + hookPath }

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

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	io.WriteString(w, body)
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
	if r.Method != http.MethodPost || len(segs) != 4 || segs[0] != "services" {
		answer(w, 404, "no_service")
		return
	}
	s.mu.Lock()
	state := s.hooks[segs[3]]
	s.mu.Unlock()
	switch state {
	case "":
		answer(w, 404, "no_service")
		return
	case "archived":
		answer(w, 410, "channel_is_archived")
		return
	case "revoked":
		answer(w, 403, "invalid_token")
		return
	}
	if wait, limited := s.rateLimited(segs[3]); limited {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		answer(w, 429, "rate_limited")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	var msg map[string]any
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &msg) != nil {
		answer(w, 400, "invalid_payload")
		return
	}
	if code, why := validateSlackMessage(msg); code != "" {
		s.mu.Lock()
		s.rejected = append(s.rejected, code+": "+why)
		s.mu.Unlock()
		answer(w, 400, code)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, body)
	s.mu.Unlock()
	answer(w, 200, "ok")
}

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

// validateSlackMessage applies the Block Kit limits to a message and
// returns Slack's error string and why, or "" when it is valid.
func validateSlackMessage(m map[string]any) (code, why string) {
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

func TestStandInEnforcesLimits(t *testing.T) {
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
		{"nothing", map[string]any{"text": " "}, "no_text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(c.msg)
			var m map[string]any
			json.Unmarshal(b, &m)
			if code, _ := validateSlackMessage(m); code != c.code {
				t.Fatalf("code = %q, want %q", code, c.code)
			}
		})
	}
	ok := map[string]any{"text": "x", "blocks": []any{
		map[string]any{"type": "header", "text": tobj("plain_text", long(150))},
		map[string]any{"type": "section", "text": tobj("mrkdwn", long(3000)), "fields": []any{tobj("mrkdwn", long(2000))}},
	}}
	b, _ := json.Marshal(ok)
	var m map[string]any
	json.Unmarshal(b, &m)
	if code, why := validateSlackMessage(m); code != "" {
		t.Fatalf("refused a message at the limits: %s %s", code, why)
	}
}
