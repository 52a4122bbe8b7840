package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dest/slack/slacktest"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

var eventTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

const hookURL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

func event(typ, data string, attrs map[string]string) store.Event {
	return store.Event{ID: "evt_1", Type: typ, Subject: "task-42", Data: json.RawMessage(data), Attributes: attrs, CreatedAt: eventTime}
}

func settings(t *testing.T, v map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustConfig(t *testing.T, raw json.RawMessage) Config {
	t.Helper()
	cfg, err := ParseConfig(raw, dest.CompatibleHosts{})
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", raw, err)
	}
	return cfg
}

func render(t *testing.T, cfg Config, e store.Event) Message {
	t.Helper()
	b := Render(cfg, e, "dlv_1")
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	var generic map[string]any
	json.Unmarshal(b, &generic)
	if code, why := slacktest.Validate(generic); code != "" {
		t.Fatalf("Slack would refuse (%s): %s", code, why)
	}
	return m
}

func job(raw json.RawMessage, e store.Event) store.Job {
	return store.Job{
		Delivery:     store.Delivery{ID: "dlv_1"},
		Event:        e,
		Subscription: store.Subscription{Name: "captcha-alerts", Kind: Kind, Destination: raw},
	}
}

func guardedClient() *http.Client {
	return (&netguard.Guard{AllowPrivate: true}).Client(0)
}

func allFields(m Message) []string {
	var out []string
	for _, b := range m.Blocks {
		if b.Type == "section" {
			for _, f := range b.Fields {
				out = append(out, f.Text)
			}
		}
	}
	return out
}

func TestParseConfig(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	if cfg.WebhookURL != hookURL {
		t.Fatalf("cfg = %+v", cfg)
	}
	mustConfig(t, settings(t, map[string]any{
		"type": "slack", "webhook_url": "https://hooks.slack-gov.com/services/T1/B2/abc", "title": "{{.type | upper}}",
		"text": "<!here> *{{.type}}*", "fields": []any{map[string]any{"name": "Balance", "value": "${{.data.balance}}", "inline": true}},
	}))
	mustConfig(t, json.RawMessage(`{"webhook_url":"http://localhost:8080/services/T1/B2/abc"}`))
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ name, raw, field, msg string }{
		{"not an object", `"x"`, "destination", "object"},
		{"missing url", `{"text":"x"}`, "webhook_url", "required"},
		{"unknown", `{"webhook_url":"` + hookURL + `","channel":"#ops"}`, "channel", "not a known setting"},
		{"unknown in field", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a","value":"b","short":true}]}`, "fields[0].short", "not a known setting"},
		{"wrong type", `{"type":"discord","webhook_url":"` + hookURL + `"}`, "type", "slack"},
		{"http", `{"webhook_url":"http://hooks.slack.com/services/T1/B2/x"}`, "webhook_url", "https"},
		{"workflow url", `{"webhook_url":"https://hooks.slack.com/triggers/T1/2/x"}`, "webhook_url", "incoming webhook"},
		{"discord url", `{"webhook_url":"https://discord.com/api/webhooks/1/x"}`, "webhook_url", "incoming webhook"},
		{"short path", `{"webhook_url":"https://hooks.slack.com/services/T1/B2"}`, "webhook_url", "incoming webhook"},
		{"text template", `{"webhook_url":"` + hookURL + `","text":"{{.type"}`, "text", "not a valid template"},
		{"title template", `{"webhook_url":"` + hookURL + `","title":"{{else}}"}`, "title", "not a valid template"},
		{"field template", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a","value":"{{nope}}"}]}`, "fields[0].value", "not a valid template"},
		{"field name", `{"webhook_url":"` + hookURL + `","fields":[{"value":"x"}]}`, "fields[0].name", "required"},
		{"fields type", `{"webhook_url":"` + hookURL + `","fields":"a"}`, "fields", "list"},
		{"too many", `{"webhook_url":"` + hookURL + `","fields":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a","value":"b"},`, 101), ",") + `]}`, "fields", "at most 100"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig(json.RawMessage(c.raw), dest.CompatibleHosts{})
			var fe *dest.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *dest.FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Message, c.msg) {
				t.Fatalf("got %q %q, want %q with %q", fe.Field, fe.Message, c.field, c.msg)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	red := Redact(json.RawMessage(`{"webhook_url":"` + hookURL + `","text":"hi"}`))
	if strings.Contains(string(red), "XXXX") {
		t.Fatalf("secret visible: %s", red)
	}
	var m map[string]any
	json.Unmarshal(red, &m)
	if m["webhook_url"] != "https://hooks.slack.com/services/T00000000/B00000000/***" || m["text"] != "hi" {
		t.Fatalf("redacted = %s", red)
	}
	for in, want := range map[string]string{
		`{"webhook_url":"https://example.com/hook/secret"}`: "https://example.com/***",
		`{"webhook_url":7}`:         "***",
		`{"webhook_url":"::::zzz"}`: "***",
	} {
		var got map[string]any
		json.Unmarshal(Redact(json.RawMessage(in)), &got)
		if got["webhook_url"] != want {
			t.Errorf("Redact(%s) = %v, want %s", in, got["webhook_url"], want)
		}
	}
	if string(Redact(json.RawMessage(`[]`))) != `{}` {
		t.Error("non-object settings should redact to {}")
	}
}

func TestRenderDefaults(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	cfg.Subscription = "captcha-alerts"
	m := render(t, cfg, event("task.failed", `{"error":"ERROR_CAPTCHA_UNSOLVABLE","attempts":3,"meta":{"a":1}}`, nil))
	if m.Text != "*task.failed* task-42" {
		t.Errorf("text = %q", m.Text)
	}
	if len(m.Blocks) != 3 || m.Blocks[0].Type != "header" || m.Blocks[1].Type != "section" || m.Blocks[2].Type != "context" {
		t.Fatalf("blocks = %+v", m.Blocks)
	}
	if h := m.Blocks[0].Text; h.Type != "plain_text" || h.Text != "task.failed" {
		t.Errorf("header = %+v", h)
	}
	if s := m.Blocks[1]; s.Text.Type != "mrkdwn" || s.Text.Text != "*task.failed* task-42" {
		t.Errorf("section = %+v", s)
	}
	want := []string{"*error*\nERROR_CAPTCHA_UNSOLVABLE", "*attempts*\n3", "*meta*\n{\"a\":1}"}
	if got := allFields(m); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields = %q", got)
	}
	ctx := m.Blocks[2].Elements[0].Text
	if ctx != "<!date^1741064767^{date_short_pretty} {time_secs}|2025-03-04T05:06:07Z> · Carrier · captcha-alerts" {
		t.Errorf("context = %q", ctx)
	}
	// More than ten data keys: nine fields and a note.
	var kv []string
	for i := 0; i < 14; i++ {
		kv = append(kv, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	m = render(t, cfg, event("x", "{"+strings.Join(kv, ",")+"}", nil))
	f := allFields(m)
	if len(f) != DefaultFieldCount || f[9] != "*(truncated)*\n5 more data key(s) not shown" {
		t.Errorf("fields = %q", f)
	}
}

func TestRenderEscapesEventValues(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{
		"webhook_url": hookURL,
		"text":        "<!here> {{.data.msg}} <https://example.com|details>",
		"fields":      []any{map[string]any{"name": "{{.data.name}}", "value": "{{range $k, $v := .data.m}}{{$k}}={{$v}} {{end}}"}},
	}))
	m := render(t, cfg, event("a<b>", `{"msg":"<!channel> & <@U123>","name":"x>y","m":{"<k>":"&v"}}`, nil))
	if m.Text != "<!here> &lt;!channel&gt; &amp; &lt;@U123&gt; <https://example.com|details>" {
		t.Errorf("text = %q", m.Text)
	}
	if f := allFields(m); len(f) != 1 || f[0] != "*x&gt;y*\n&lt;k&gt;=&amp;v" {
		t.Errorf("fields = %q", f)
	}
	// The header is plain text: shown literally, not escaped.
	if m.Blocks[0].Text.Text != "a<b>" {
		t.Errorf("header = %q", m.Blocks[0].Text.Text)
	}
}

func TestRenderTemplateErrors(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "text": "{{index .data.l 3}}"}))
	m := render(t, cfg, event("x", `{"l":[]}`, nil))
	if !strings.Contains(m.Text, "template error") {
		t.Errorf("text = %q", m.Text)
	}
	m = render(t, Config{WebhookURL: hookURL, Text: "{{"}, event("x", `{}`, nil))
	if !strings.Contains(m.Text, "template error") {
		t.Errorf("text = %q", m.Text)
	}
}

func TestRenderOversized(t *testing.T) {
	fieldsN := func(k int, value string) []any {
		var fs []any
		for i := 0; i < k; i++ {
			fs = append(fs, map[string]any{"name": fmt.Sprintf("Field %d", i), "value": value})
		}
		return fs
	}
	huge := strings.Repeat("Ğüş 日本 🙂 & <x> ", 1000)
	cases := []struct {
		name     string
		settings map[string]any
		data     string
		check    func(t *testing.T, m Message)
	}{
		{"huge text", map[string]any{"text": "{{.data.v}}", "title": "{{.data.v}}"}, `{"v":` + quote(huge) + `}`, func(t *testing.T, m Message) {
			h, s := m.Blocks[0].Text.Text, m.Blocks[1].Text.Text
			if units(h) > MaxHeaderText || !strings.HasSuffix(h, "… (truncated)") {
				t.Errorf("header %d units, ends %q", units(h), h[len(h)-20:])
			}
			if units(s) > MaxSectionText || !strings.HasSuffix(s, "… (truncated)") {
				t.Errorf("section %d units", units(s))
			}
			if units(m.Text) > MaxFallbackText || !strings.HasSuffix(m.Text, "… (truncated)") {
				t.Errorf("text %d units", units(m.Text))
			}
			// Entities are never cut in half.
			for _, s := range []string{s, m.Text} {
				body := strings.TrimSuffix(s, "… (truncated)")
				if i := strings.LastIndexByte(body, '&'); i >= 0 && !strings.Contains(body[i:], ";") {
					t.Errorf("cut entity: %q", body[max(0, len(body)-20):])
				}
			}
		}},
		{"40 fields of 5000 chars", map[string]any{"fields": fieldsN(40, "{{.data.v}}")}, `{"v":` + quote(strings.Repeat("ß", 5000)) + `}`, func(t *testing.T, m Message) {
			f := allFields(m)
			if len(f) != 40 {
				t.Fatalf("fields = %d", len(f))
			}
			for _, x := range f {
				if units(x) > MaxFieldText || !strings.HasSuffix(x, "… (truncated)") {
					t.Fatalf("field %d units, not visibly cut", units(x))
				}
			}
			sections := 0
			for _, b := range m.Blocks {
				if b.Type == "section" {
					sections++
				}
			}
			if sections != 4 {
				t.Errorf("sections = %d", sections)
			}
		}},
		{"100 fields", map[string]any{"fields": fieldsN(100, "{{.data.v}}"), "text": "t"}, `{"v":"x"}`, func(t *testing.T, m Message) {
			if len(m.Blocks) > MaxBlocks || len(allFields(m)) != 100 {
				t.Errorf("blocks %d fields %d", len(m.Blocks), len(allFields(m)))
			}
		}},
		{"astral characters", map[string]any{"fields": fieldsN(1, "{{.data.v}}")}, `{"v":` + quote(strings.Repeat("🙂", 3000)) + `}`, func(t *testing.T, m Message) {
			f := allFields(m)[0]
			if units(f) > MaxFieldText || len([]rune(f)) > 1020 || !strings.HasSuffix(f, "… (truncated)") {
				t.Errorf("field %d units %d runes", units(f), len([]rune(f)))
			}
		}},
		{"long subscription", map[string]any{}, `{}`, func(t *testing.T, m Message) {
			c := m.Blocks[len(m.Blocks)-1].Elements[0].Text
			if units(c) > MaxContextText || !strings.Contains(c, "…") {
				t.Errorf("context %d units", units(c))
			}
		}},
	}
	srv := slacktest.New(t)
	sender := &Sender{Client: guardedClient()}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := map[string]any{"webhook_url": srv.URL()}
			for k, v := range c.settings {
				s[k] = v
			}
			j := job(settings(t, s), event("task.failed", c.data, nil))
			if c.name == "long subscription" {
				j.Subscription.Name = strings.Repeat("n", 5000)
			}
			res := sender.Send(context.Background(), j, time.Now())
			if !res.Delivered {
				t.Fatalf("not delivered: %+v (rejections %v)", res, srv.Rejected())
			}
			b, _ := json.Marshal(srv.LastAccepted())
			var m Message
			json.Unmarshal(b, &m)
			c.check(t, m)
		})
	}
}

func TestRenderAlwaysWithinLimits(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	alphabet := []rune("aZ &<>;ç日🙂\n*_")
	text := func(k int) string {
		rs := make([]rune, rng.Intn(k+1))
		for i := range rs {
			rs[i] = alphabet[rng.Intn(len(alphabet))]
		}
		return string(rs)
	}
	for i := 0; i < 30; i++ {
		nf := rng.Intn(60)
		var fs []any
		vals := make([]string, nf)
		for j := 0; j < nf; j++ {
			fs = append(fs, map[string]any{"name": "n" + text(300), "value": fmt.Sprintf("{{index .data.v %d}}", j)})
			vals[j] = text(2500)
		}
		data, _ := json.Marshal(map[string]any{"v": vals, "t": text(5000), "h": text(300)})
		s := map[string]any{"webhook_url": hookURL, "title": "{{.data.h}}", "text": "{{.data.t}}"}
		if nf > 0 {
			s["fields"] = fs
		}
		cfg := mustConfig(t, settings(t, s))
		cfg.Subscription = text(4000)
		render(t, cfg, event(text(50), string(data), nil))
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestSendDelivers(t *testing.T) {
	srv := slacktest.New(t)
	sender := &Sender{Client: guardedClient()}
	res := sender.Send(context.Background(), job(settings(t, map[string]any{"webhook_url": srv.URL()}), event("task.solved", `{"token":"abc"}`, nil)), time.Now())
	if !res.Delivered || res.StatusCode != 200 || res.ResponseBody != "ok" {
		t.Fatalf("result = %+v", res)
	}
	m := srv.LastAccepted()
	if m["text"] != "*task.solved* task-42" || len(m["blocks"].([]any)) != 3 {
		t.Fatalf("message = %v", m)
	}
}

func TestSendRateLimited(t *testing.T) {
	srv := slacktest.New(t)
	sender := &Sender{Client: guardedClient()}
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	send := func() dispatch.Result {
		return sender.Send(context.Background(), job(raw, event("x", `{}`, nil)), time.Now())
	}
	srv.SetRateLimit(1, 30*time.Second)
	if r := send(); !r.Delivered {
		t.Fatalf("first: %+v", r)
	}
	r := send()
	if r.Delivered || !r.Throttled || !r.Retryable || r.StatusCode != 429 || r.ErrorCode != "rate_limited" {
		t.Fatalf("second: %+v", r)
	}
	if r.RetryAfter < 29*time.Second || r.RetryAfter > 30*time.Second {
		t.Fatalf("RetryAfter = %s", r.RetryAfter)
	}
	srv.SetRateLimit(0, 0)

	for _, c := range []struct {
		header string
		want   time.Duration
	}{{"", DefaultRetryAfter}, {"7200", MaxRetryAfter}, {"bogus", DefaultRetryAfter}} {
		srv.Then(func(w http.ResponseWriter, r *http.Request) {
			if c.header != "" {
				w.Header().Set("Retry-After", c.header)
			}
			slacktest.Answer(w, 429, "rate_limited")
		})
		if r := send(); !r.Throttled || r.RetryAfter != c.want {
			t.Errorf("Retry-After %q: %+v", c.header, r)
		}
	}
}

func TestSendStatuses(t *testing.T) {
	srv := slacktest.New(t)
	sender := &Sender{Client: guardedClient()}
	send := func(url string) dispatch.Result {
		return sender.Send(context.Background(), job(settings(t, map[string]any{"webhook_url": url}), event("x", `{}`, nil)), time.Now())
	}
	base := srv.BaseURL() + "/services/T0001/B0002/"
	for _, c := range []struct {
		secret, code string
		status       int
	}{{"unknownXYZ", "no_service", 404}, {"archivedXYZ", "channel_is_archived", 410}, {"revokedXYZ", "invalid_token", 403}} {
		r := send(base + c.secret)
		if !r.Disable || r.Retryable || r.Delivered || r.StatusCode != c.status || r.ErrorCode != c.code || r.ResponseBody != c.code {
			t.Errorf("%s: %+v", c.secret, r)
		}
		if strings.Contains(r.ErrorMessage, c.secret) {
			t.Errorf("secret in message: %q", r.ErrorMessage)
		}
	}
	reply := func(status int, body string, headers ...string) {
		srv.Then(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(headers); i += 2 {
				w.Header().Set(headers[i], headers[i+1])
			}
			slacktest.Answer(w, status, body)
		})
	}
	reply(500, "rollup_error")
	if r := send(srv.URL()); !r.Retryable || r.Disable || !strings.Contains(r.ErrorMessage, "rollup_error") {
		t.Errorf("500: %+v", r)
	}
	reply(503, "", "Retry-After", "12")
	if r := send(srv.URL()); !r.Retryable || r.RetryAfter != 12*time.Second {
		t.Errorf("503: %+v", r)
	}
	reply(403, "action_prohibited")
	if r := send(srv.URL()); r.Retryable || r.Disable || r.ErrorCode != "http_403" || r.ResponseBody != "action_prohibited" {
		t.Errorf("403 action_prohibited: %+v", r)
	}
	reply(400, "invalid_payload")
	if r := send(srv.URL()); r.Retryable || r.Disable || r.Delivered || r.ResponseBody != "invalid_payload" {
		t.Errorf("400: %+v", r)
	}
	reply(301, "", "Location", "https://elsewhere.example/")
	if r := send(srv.URL()); r.Retryable || r.ErrorCode != "redirect_not_followed" {
		t.Errorf("301: %+v", r)
	}
	reply(400, `{"ok":false,"error":"no_service"}`)
	if r := send(srv.URL()); !r.Disable {
		t.Errorf("JSON no_service: %+v", r)
	}
}

func TestSendNetworkFailures(t *testing.T) {
	sender := &Sender{Client: guardedClient()}
	srv := slacktest.New(t)
	release := make(chan struct{})
	defer close(release)
	srv.Then(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	r := sender.Send(ctx, job(settings(t, map[string]any{"webhook_url": srv.URL()}), event("x", `{}`, nil)), time.Now())
	cancel()
	if !r.Retryable || r.ErrorCode != "timeout" {
		t.Fatalf("timeout: %+v", r)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r = sender.Send(context.Background(), job(settings(t, map[string]any{"webhook_url": "http://" + addr + "/services/T1/B2/TopSecret"}), event("x", `{}`, nil)), time.Now())
	if !r.Retryable || r.ErrorCode != "connection_refused" || strings.Contains(r.ErrorMessage, "TopSecret") {
		t.Fatalf("refused: %+v", r)
	}

	strict := &Sender{Client: (&netguard.Guard{}).Client(0)}
	r = strict.Send(context.Background(), job(settings(t, map[string]any{"webhook_url": srv.URL()}), event("x", `{}`, nil)), time.Now())
	if r.Retryable || r.ErrorCode != "ssrf_blocked" {
		t.Fatalf("ssrf: %+v", r)
	}
}

func TestSendInvalidSettings(t *testing.T) {
	sender := &Sender{Client: guardedClient()}
	r := sender.Send(context.Background(), job(json.RawMessage(`{"webhook_url":"`+hookURL+`","text":"{{"}`), event("x", `{}`, nil)), time.Now())
	if r.Retryable || r.ErrorCode != "invalid_destination" || !strings.Contains(r.ErrorMessage, "text") {
		t.Fatalf("result = %+v", r)
	}
}

// TestSendToCompatibleServer: a Sender whose compatible hosts list a
// Mattermost-style server posts Slack messages to its /hooks/{key} URL, and
// the errors it records do not carry the key (the URL's path); without the
// host listed, the URL is refused with the setting named.
func TestSendToCompatibleServer(t *testing.T) {
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if r.URL.Path != "/hooks/mmk3y123" || json.NewDecoder(r.Body).Decode(&m) != nil {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		got = append(got, m)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	sender := &Sender{Client: guardedClient(), Compatible: dest.NewCompatibleHosts([]string{u.Hostname()})}
	raw := settings(t, map[string]any{"webhook_url": srv.URL + "/hooks/mmk3y123"})
	if _, err := ParseConfig(raw, dest.CompatibleHosts{}); err == nil || !strings.Contains(err.Error(), dest.CompatibleHostsSetting) {
		t.Errorf("ParseConfig without compatible hosts: %v, want a refusal naming %s", err, dest.CompatibleHostsSetting)
	}
	res := sender.Send(context.Background(), job(raw, event("order.paid", `{"total":12}`, nil)), time.Now())
	if res.StatusCode != 200 || res.ErrorCode != "" || len(got) != 1 || got[0]["text"] == nil {
		t.Fatalf("send: %+v, server got %v", res, got)
	}
	// A port nothing listens on: the connection is refused, and the
	// recorded error must not carry the key.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hooks/mmk3y123"
	ln.Close()
	raw = settings(t, map[string]any{"webhook_url": closed})
	res = sender.Send(context.Background(), job(raw, event("order.paid", `{}`, nil)), time.Now())
	if res.ErrorCode != "connection_refused" || strings.Contains(res.ErrorMessage, "mmk3y123") {
		t.Errorf("send to a closed port: %+v, want connection_refused without the key", res)
	}
}
