package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"carrier/internal/dest"
	"carrier/internal/dest/discord/discordtest"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

var eventTime = time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)

func event(typ string, data string, attrs map[string]string) store.Event {
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

func message(t *testing.T, cfg Config, e store.Event) Message {
	t.Helper()
	var m Message
	b := Render(cfg, e, "dlv_1")
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Render produced invalid JSON: %v\n%s", err, b)
	}
	if len(m.Embeds) != 1 {
		t.Fatalf("embeds = %d", len(m.Embeds))
	}
	return m
}

func guardedClient() *http.Client {
	return (&netguard.Guard{AllowPrivate: true}).Client(0)
}

func job(raw json.RawMessage, e store.Event) store.Job {
	return store.Job{
		Delivery:     store.Delivery{ID: "dlv_1"},
		Event:        e,
		Subscription: store.Subscription{Name: "captcha-alerts", Kind: Kind, Destination: raw},
	}
}

const hookURL = "https://discord.com/api/webhooks/123456789012345678/AbC-def_GHI"

func TestParseConfig(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	if cfg.WebhookURL != hookURL || cfg.Title != "" || len(cfg.Fields) != 0 {
		t.Fatalf("cfg = %+v", cfg)
	}
	full := settings(t, map[string]any{
		"type":               "discord",
		"webhook_url":        "https://discordapp.com/api/v10/webhooks/1/tok?thread_id=99",
		"username":           "Carrier Alerts",
		"avatar_url":         "https://example.com/a.png",
		"title":              "{{.data.title | default .type}}",
		"description":        "Balance {{.data.balance}}",
		"fields":             []any{map[string]any{"name": "Threshold", "value": "{{.data.threshold}}", "inline": true}},
		"colors":             map[string]any{"critical": 0xFF0000, "task.solved": "#00ff00"},
		"severity_attribute": "level",
		"mention":            "<@&123>",
		"mention_on":         []string{"critical"},
	})
	cfg = mustConfig(t, full)
	if cfg.Colors["task.solved"] != 0x00FF00 || cfg.Colors["critical"] != 0xFF0000 || !cfg.Fields[0].Inline || cfg.SeverityAttribute != "level" {
		t.Fatalf("cfg = %+v", cfg)
	}
	if _, err := ParseConfig(json.RawMessage(`{"webhook_url":"http://127.0.0.1:9/api/webhooks/1/t"}`), dest.CompatibleHosts{}); err != nil {
		t.Fatalf("loopback http refused: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, raw, field, msg string
	}{
		{"not an object", `[1]`, "destination", "object"},
		{"empty", ``, "destination", "object"},
		{"missing url", `{}`, "webhook_url", "required"},
		{"unknown setting", `{"webhook_url":"` + hookURL + `","colour":1}`, "colour", "not a known setting"},
		{"unknown field setting", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a","value":"b","short":true}]}`, "fields[0].short", "not a known setting"},
		{"wrong type", `{"webhook_url":"discord","type":"slack"}`, "type", "discord"},
		{"http not loopback", `{"webhook_url":"http://discord.com/api/webhooks/1/t"}`, "webhook_url", "https"},
		{"not a webhook path", `{"webhook_url":"https://discord.com/channels/1/2"}`, "webhook_url", "webhooks/{id}/{token}"},
		{"slack url", `{"webhook_url":"https://hooks.slack.com/services/T1/B2/x"}`, "webhook_url", "Discord webhook URL"},
		{"no token", `{"webhook_url":"https://discord.com/api/webhooks/1"}`, "webhook_url", "Discord webhook URL"},
		{"bad id", `{"webhook_url":"https://discord.com/api/webhooks/abc/tok"}`, "webhook_url", "id"},
		{"credentials", `{"webhook_url":"https://u:p@discord.com/api/webhooks/1/tok"}`, "webhook_url", "credentials"},
		{"url not string", `{"webhook_url":5}`, "webhook_url", "string"},
		{"title template", `{"webhook_url":"` + hookURL + `","title":"{{.type"}`, "title", "not a valid template"},
		{"description template", `{"webhook_url":"` + hookURL + `","description":"{{if}}"}`, "description", "not a valid template"},
		{"unknown function", `{"webhook_url":"` + hookURL + `","description":"{{nope .type}}"}`, "description", "not a valid template"},
		{"field value template", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a","value":"ok"},{"name":"b","value":"{{end}}"}]}`, "fields[1].value", "not a valid template"},
		{"field name template", `{"webhook_url":"` + hookURL + `","fields":[{"name":"{{","value":"x"}]}`, "fields[0].name", "not a valid template"},
		{"field without value", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a"}]}`, "fields[0].value", "required"},
		{"field inline type", `{"webhook_url":"` + hookURL + `","fields":[{"name":"a","value":"b","inline":"yes"}]}`, "fields[0].inline", "true or false"},
		{"fields not a list", `{"webhook_url":"` + hookURL + `","fields":{}}`, "fields", "list"},
		{"too many fields", `{"webhook_url":"` + hookURL + `","fields":[` + strings.TrimSuffix(strings.Repeat(`{"name":"a","value":"b"},`, 101), ",") + `]}`, "fields", "at most 100"},
		{"color range", `{"webhook_url":"` + hookURL + `","colors":{"failed":16777216}}`, "colors.failed", "16777215"},
		{"color string", `{"webhook_url":"` + hookURL + `","colors":{"failed":"red"}}`, "colors.failed", "#RRGGBB"},
		{"username long", `{"webhook_url":"` + hookURL + `","username":"` + strings.Repeat("ü", 81) + `"}`, "username", "80"},
		{"username discord", `{"webhook_url":"` + hookURL + `","username":"Discord alerts"}`, "username", "clyde"},
		{"avatar", `{"webhook_url":"` + hookURL + `","avatar_url":"ftp://x/y"}`, "avatar_url", "http"},
		{"mention long", `{"webhook_url":"` + hookURL + `","mention":"` + strings.Repeat("a", 2001) + `"}`, "mention", "2000"},
		{"mention_on", `{"webhook_url":"` + hookURL + `","mention_on":["critical",""]}`, "mention_on[1]", "empty"},
		{"severity attribute", `{"webhook_url":"` + hookURL + `","severity_attribute":""}`, "severity_attribute", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig(json.RawMessage(c.raw), dest.CompatibleHosts{})
			var fe *dest.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *dest.FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Message, c.msg) {
				t.Fatalf("got %q %q, want field %q with %q", fe.Field, fe.Message, c.field, c.msg)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	raw := json.RawMessage(`{"webhook_url":"https://discord.com/api/webhooks/123/AbC-secret_token","username":"Ops","fields":[{"name":"a","value":"b"}]}`)
	red := Redact(raw)
	if strings.Contains(string(red), "secret") {
		t.Fatalf("token visible: %s", red)
	}
	var m map[string]any
	if err := json.Unmarshal(red, &m); err != nil {
		t.Fatal(err)
	}
	if m["webhook_url"] != "https://discord.com/api/webhooks/123/***" || m["username"] != "Ops" || m["fields"] == nil {
		t.Fatalf("redacted = %s", red)
	}
	for in, want := range map[string]string{
		`{"webhook_url":"https://discord.com/api/v10/webhooks/1/tok?thread_id=5"}`: "https://discord.com/api/v10/webhooks/1/***?thread_id=5",
		`{"webhook_url":"https://x:pw@example.com/some/secret/path"}`:              "https://example.com/***",
		`{"webhook_url":"https://discord.com/api/webhooks/1/tok/github"}`:          "https://discord.com/api/webhooks/1/***",
		`{"webhook_url":{"nested":"secret"}}`:                                      "***",
		`{"webhook_url":"%zz secret"}`:                                             "***",
	} {
		var got map[string]any
		json.Unmarshal(Redact(json.RawMessage(in)), &got)
		if got["webhook_url"] != want {
			t.Errorf("Redact(%s) url = %v, want %s", in, got["webhook_url"], want)
		}
	}
	if string(Redact(json.RawMessage(`not json`))) != `{}` {
		t.Error("invalid settings should redact to {}")
	}
}

func TestRenderDefaults(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	cfg.Subscription = "captcha-alerts"
	data := `{"zeta":"last?","balance":8.42,"threshold":10,"ok":false,"nested":{"a":[1,2]},"note":"","k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"message":"Balance is low"}`
	m := message(t, cfg, event("balance.low", data, map[string]string{"severity": "warning"}))
	e := m.Embeds[0]
	if e.Title != "balance.low" {
		t.Errorf("title = %q", e.Title)
	}
	if e.Color != ColorOrange {
		t.Errorf("color = %#x, want orange", e.Color)
	}
	if e.Timestamp != "2025-03-04T05:06:07.890Z" {
		t.Errorf("timestamp = %q", e.Timestamp)
	}
	if e.Footer == nil || e.Footer.Text != "Carrier · captcha-alerts · balance.low" {
		t.Errorf("footer = %+v", e.Footer)
	}
	if len(e.Fields) != DefaultFieldCount {
		t.Fatalf("fields = %d, want %d", len(e.Fields), DefaultFieldCount)
	}
	wantNames := []string{"zeta", "balance", "threshold", "ok", "nested", "note", "k6", "k7", "k8", "k9"}
	for i, f := range e.Fields {
		if f.Name != wantNames[i] {
			t.Errorf("field %d = %q, want %q (document order)", i, f.Name, wantNames[i])
		}
	}
	if e.Fields[1].Value != "8.42" || e.Fields[4].Value != `{"a":[1,2]}` || e.Fields[5].Value != `""` || !e.Fields[1].Inline {
		t.Errorf("field values = %+v", e.Fields)
	}
	if !strings.Contains(e.Description, "Subject: task-42") || !strings.Contains(e.Description, "Balance is low") || !strings.Contains(e.Description, "3 more data key") {
		t.Errorf("description = %q", e.Description)
	}
	if m.Content != "" || m.AllowedMentions.Parse == nil || len(m.AllowedMentions.Parse) != 0 {
		t.Errorf("content %q, allowed_mentions %+v", m.Content, m.AllowedMentions)
	}
	// Data that is not an object is shown in the description.
	m = message(t, cfg, event("ping", `[1,2,3]`, nil))
	if !strings.Contains(m.Embeds[0].Description, "[1,2,3]") || len(m.Embeds[0].Fields) != 0 {
		t.Errorf("array data: %+v", m.Embeds[0])
	}
}

func TestRenderTemplates(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{
		"webhook_url": hookURL,
		"title":       "💰 {{.data.kind | upper}} for {{.subject}}",
		"description": "CaptchaAI balance is **${{.data.balance}}** ({{.attributes.region}}) {{.data.missing}}at {{.time}}",
		"fields": []any{
			map[string]any{"name": "Threshold", "value": "${{.data.threshold}}", "inline": true},
			map[string]any{"name": "Errors", "value": "{{range $k, $v := .data.errors}}• `{{$k}}`: {{$v}}\n{{end}}"},
			map[string]any{"name": "Absent", "value": "{{.data.absent}}"},
			map[string]any{"name": "Tags", "value": "{{join \", \" .data.tags}} {{json .data.tags}} {{.delivery_id}} {{.id}}"},
		},
	}))
	data := `{"kind":"balance","balance":8.42,"threshold":10,"errors":{"ERROR_CAPTCHA_UNSOLVABLE":30,"TIMEOUT":15},"tags":["a","b"]}`
	m := message(t, cfg, event("balance.low", data, map[string]string{"region": "eu"}))
	e := m.Embeds[0]
	if e.Title != "💰 BALANCE for task-42" {
		t.Errorf("title = %q", e.Title)
	}
	if e.Description != "CaptchaAI balance is **$8.42** (eu) at 2025-03-04T05:06:07Z" {
		t.Errorf("description = %q", e.Description)
	}
	if len(e.Fields) != 3 {
		t.Fatalf("fields = %+v (a field rendering empty is left out)", e.Fields)
	}
	if e.Fields[1].Value != "• `ERROR_CAPTCHA_UNSOLVABLE`: 30\n• `TIMEOUT`: 15" {
		t.Errorf("errors field = %q", e.Fields[1].Value)
	}
	if e.Fields[2].Value != `a, b ["a","b"] dlv_1 evt_1` {
		t.Errorf("tags field = %q", e.Fields[2].Value)
	}
}

func TestRenderTemplateRuntimeError(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "description": "n={{index .data.list 5}}"}))
	m := message(t, cfg, event("x.y", `{"list":[1]}`, nil))
	if !strings.Contains(m.Embeds[0].Description, "template error") {
		t.Fatalf("description = %q", m.Embeds[0].Description)
	}
	// A Config built by hand with a broken template still renders.
	m = message(t, Config{WebhookURL: hookURL, Title: "{{"}, event("x.y", `{}`, nil))
	if !strings.Contains(m.Embeds[0].Description, "template error") || m.Embeds[0].Title != "x.y" {
		t.Fatalf("embed = %+v", m.Embeds[0])
	}
}

func TestRenderColors(t *testing.T) {
	base := map[string]any{"webhook_url": hookURL}
	custom := map[string]any{"webhook_url": hookURL, "colors": map[string]any{"Task.Solved": 0x111111, "critical": "#222222", "default": 0x333333}, "severity_attribute": "level"}
	cases := []struct {
		name     string
		settings map[string]any
		typ      string
		data     string
		attrs    map[string]string
		want     int
	}{
		{"failed outcome", base, "task.failed", `{}`, nil, ColorRed},
		{"expired outcome", base, "task.expired", `{}`, nil, ColorRed},
		{"solved outcome", base, "task.solved", `{}`, nil, ColorGreen},
		{"completed outcome", base, "job.completed", `{}`, nil, ColorGreen},
		{"critical attribute", base, "balance.low", `{}`, map[string]string{"severity": "CRITICAL"}, ColorRed},
		{"warning in data", base, "balance.low", `{"severity":"warning"}`, nil, ColorOrange},
		{"attribute wins over data", base, "balance.low", `{"severity":"warning"}`, map[string]string{"severity": "success"}, ColorGreen},
		{"severity wins over outcome", base, "task.solved", `{}`, map[string]string{"severity": "critical"}, ColorRed},
		{"other", base, "task.created", `{}`, nil, ColorBlue},
		{"custom by type", custom, "task.solved", `{}`, nil, 0x111111},
		{"custom severity attribute", custom, "x.y", `{"level":"critical"}`, nil, 0x222222},
		{"custom default", custom, "x.y", `{}`, nil, 0x333333},
		{"custom falls back to defaults", custom, "task.failed", `{}`, nil, ColorRed},
		{"default severity key ignored when renamed", custom, "x.y", `{"severity":"critical"}`, nil, 0x333333},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := message(t, mustConfig(t, settings(t, c.settings)), event(c.typ, c.data, c.attrs))
			if m.Embeds[0].Color != c.want {
				t.Fatalf("color = %#x, want %#x", m.Embeds[0].Color, c.want)
			}
		})
	}
}

func TestRenderMentions(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "mention": "<@&111> <@222> <@!333>", "mention_on": []string{"critical", "failed"}}))
	m := message(t, cfg, event("task.failed", `{}`, nil))
	if m.Content != "<@&111> <@222> <@!333>" {
		t.Fatalf("content = %q", m.Content)
	}
	am := m.AllowedMentions
	if len(am.Parse) != 0 || strings.Join(am.Roles, ",") != "111" || strings.Join(am.Users, ",") != "222,333" {
		t.Fatalf("allowed_mentions = %+v", am)
	}
	if m := message(t, cfg, event("balance.low", `{"severity":"critical"}`, nil)); m.Content == "" {
		t.Fatal("critical severity not mentioned")
	}
	if m := message(t, cfg, event("task.solved", `{"note":"@everyone look"}`, nil)); m.Content != "" || len(m.AllowedMentions.Parse) != 0 {
		t.Fatalf("solved event mentioned: %+v", m)
	}
	always := mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "mention": "@here"}))
	if m := message(t, always, event("anything", `{}`, nil)); m.Content != "@here" || strings.Join(m.AllowedMentions.Parse, ",") != "everyone" {
		t.Fatalf("@here: %+v", m)
	}
}

// checkWithinLimits asserts a rendered body passes the stand-in's validator.
func checkWithinLimits(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if errBody, bad := discordtest.Validate(m); bad {
		b, _ := json.Marshal(errBody)
		t.Fatalf("Discord would refuse: %s", b)
	}
	return m
}

func embedTotal(e Embed) int {
	t := n(e.Title) + n(e.Description)
	if e.Footer != nil {
		t += n(e.Footer.Text)
	}
	for _, f := range e.Fields {
		t += n(f.Name) + n(f.Value)
	}
	return t
}

func TestRenderOversized(t *testing.T) {
	many := func(k int, value string) []any {
		var fs []any
		for i := 0; i < k; i++ {
			fs = append(fs, map[string]any{"name": fmt.Sprintf("Field %d {{.data.name}}", i), "value": value})
		}
		return fs
	}
	huge := strings.Repeat("Ğüşİöç 日本語 🙂 ", 1000) // multi-byte, astral characters included
	cases := []struct {
		name     string
		settings map[string]any
		data     string
		check    func(t *testing.T, e Embed)
	}{
		{"huge description", map[string]any{"description": "{{.data.text}}"}, `{"text":` + quote(huge) + `}`, func(t *testing.T, e Embed) {
			if n(e.Description) != MaxDescription || !strings.HasSuffix(e.Description, "… (truncated)") {
				t.Errorf("description %d chars, ends %q", n(e.Description), tail(e.Description))
			}
		}},
		{"40 fields", map[string]any{"fields": many(40, "{{.data.v}}")}, `{"v":"short","name":"n"}`, func(t *testing.T, e Embed) {
			if len(e.Fields) != MaxFields {
				t.Fatalf("fields = %d", len(e.Fields))
			}
			last := e.Fields[MaxFields-1]
			if last.Name != "(truncated)" || last.Value != "16 more field(s) not shown" {
				t.Errorf("last field = %+v", last)
			}
		}},
		{"40 fields of 5000 chars", map[string]any{"fields": many(40, "{{.data.v}}"), "description": "{{.data.v}}"}, `{"v":` + quote(strings.Repeat("ß", 5000)) + `,"name":"n"}`, func(t *testing.T, e Embed) {
			if embedTotal(e) > MaxEmbedTotal {
				t.Errorf("total %d", embedTotal(e))
			}
			if !visiblyCut(e.Description) {
				t.Errorf("description not visibly cut: %q", tail(e.Description))
			}
			last := e.Fields[len(e.Fields)-1]
			if last.Name != "(truncated)" || !strings.Contains(last.Value, "more field(s) not shown") {
				t.Errorf("no drop note: %+v", last)
			}
			for _, f := range e.Fields[:len(e.Fields)-1] {
				if !visiblyCut(f.Value) {
					t.Errorf("field %q not visibly cut: %q", f.Name, tail(f.Value))
				}
			}
		}},
		{"long title and names", map[string]any{"title": "{{.data.v}}", "fields": []any{map[string]any{"name": "{{.data.v}}", "value": "{{.data.v}}"}}}, `{"v":` + quote(strings.Repeat("😀", 3000)) + `}`, func(t *testing.T, e Embed) {
			if n(e.Title) != MaxTitle || n(e.Fields[0].Name) != MaxFieldName || n(e.Fields[0].Value) != MaxFieldValue {
				t.Errorf("title %d name %d value %d", n(e.Title), n(e.Fields[0].Name), n(e.Fields[0].Value))
			}
			if !strings.HasSuffix(e.Title, "(truncated)") || !utf8.ValidString(e.Title) {
				t.Errorf("title = %q", tail(e.Title))
			}
		}},
		{"default fields with 5000-char values", map[string]any{}, `{"a":` + quote(strings.Repeat("Ж", 5000)) + `,"b":` + quote(strings.Repeat("ж", 5000)) + `,"c":` + quote(strings.Repeat("字", 5000)) + `,"d":` + quote(strings.Repeat("x", 5000)) + `,"e":` + quote(strings.Repeat("y", 5000)) + `,"f":` + quote(strings.Repeat("z", 5000)) + `,"g":` + quote(strings.Repeat("w", 5000)) + `}`, func(t *testing.T, e Embed) {
			if len(e.Fields) != 7 || embedTotal(e) > MaxEmbedTotal {
				t.Errorf("fields %d total %d", len(e.Fields), embedTotal(e))
			}
			for _, f := range e.Fields {
				if !strings.HasSuffix(f.Value, "… (truncated)") {
					t.Errorf("field %s ends %q", f.Name, tail(f.Value))
				}
			}
		}},
		{"long subscription and type", map[string]any{}, `{}`, func(t *testing.T, e Embed) {
			if n(e.Footer.Text) > MaxFooter || n(e.Title) > MaxTitle {
				t.Errorf("footer %d title %d", n(e.Footer.Text), n(e.Title))
			}
		}},
		{"huge template output", map[string]any{"description": "{{range .data.list}}{{$.data.v}}{{end}}"}, `{"v":` + quote(strings.Repeat("a", 1000)) + `,"list":[` + strings.TrimSuffix(strings.Repeat("1,", 500), ",") + `]}`, func(t *testing.T, e Embed) {
			if n(e.Description) > MaxDescription || n(e.Description) < 3000 || !visiblyCut(e.Description) {
				t.Errorf("description %d chars, ends %q", n(e.Description), tail(e.Description))
			}
		}},
	}
	srv := discordtest.New(t)
	sender := &Sender{Client: guardedClient()}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := map[string]any{"webhook_url": srv.URL()}
			for k, v := range c.settings {
				s[k] = v
			}
			raw := settings(t, s)
			e := event("task.failed", c.data, nil)
			j := job(raw, e)
			if c.name == "long subscription and type" {
				e.Type = strings.Repeat("t", 300)
				j = job(raw, e)
				j.Subscription.Name = strings.Repeat("s", 3000)
			}
			res := sender.Send(context.Background(), j, time.Now())
			if !res.Delivered {
				t.Fatalf("not delivered: %+v", res)
			}
			body, _ := json.Marshal(srv.LastAccepted())
			checkWithinLimits(t, body)
			var m Message
			json.Unmarshal(body, &m)
			e0 := m.Embeds[0]
			if embedTotal(e0) > MaxEmbedTotal {
				t.Fatalf("total %d", embedTotal(e0))
			}
			c.check(t, e0)
		})
	}
}

// TestRenderAlwaysWithinLimits renders random oversized events and checks
// each against the stand-in's validator.
func TestRenderAlwaysWithinLimits(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	alphabet := []rune("aZ ç日🙂\n*`é_ß")
	text := func(max int) string {
		k := rng.Intn(max + 1)
		rs := make([]rune, k)
		for i := range rs {
			rs[i] = alphabet[rng.Intn(len(alphabet))]
		}
		return string(rs)
	}
	for i := 0; i < 60; i++ {
		nf := rng.Intn(45)
		var fs []any
		for j := 0; j < nf; j++ {
			fs = append(fs, map[string]any{"name": "n" + text(300), "value": fmt.Sprintf("{{index .data.v %d}}", j)})
		}
		vals := make([]string, nf)
		for j := range vals {
			vals[j] = text(1500)
		}
		dataB, _ := json.Marshal(map[string]any{"v": vals, "d": text(6000), "t": text(400)})
		s := map[string]any{"webhook_url": hookURL, "title": "{{.data.t}}", "description": "{{.data.d}}", "mention": "<@&1>"}
		if nf > 0 {
			s["fields"] = fs
		}
		cfg := mustConfig(t, settings(t, s))
		cfg.Subscription = text(2500)
		body := Render(cfg, event(text(100), string(dataB), nil), "d")
		checkWithinLimits(t, body)
	}
}

func visiblyCut(s string) bool {
	return strings.HasSuffix(s, "…") || strings.HasSuffix(s, "… (truncated)")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func tail(s string) string {
	r := []rune(s)
	if len(r) > 20 {
		r = r[len(r)-20:]
	}
	return string(r)
}

func TestSendDelivers(t *testing.T) {
	srv := discordtest.New(t)
	raw := settings(t, map[string]any{"webhook_url": srv.URL() + "?wait=true", "username": "Carrier", "mention": "<@&42>", "mention_on": []string{"critical"}})
	sender := &Sender{Client: guardedClient()}
	res := sender.Send(context.Background(), job(raw, event("balance.low", `{"balance":1.5}`, map[string]string{"severity": "critical"})), time.Now())
	if !res.Delivered || res.StatusCode != 200 || res.Retryable || res.Disable {
		t.Fatalf("result = %+v", res)
	}
	m := srv.LastAccepted()
	if m["content"] != "<@&42>" || m["username"] != "Carrier" {
		t.Fatalf("message = %v", m)
	}
	embed := m["embeds"].([]any)[0].(map[string]any)
	if embed["color"] != float64(ColorRed) || embed["footer"].(map[string]any)["text"] != "Carrier · captcha-alerts · balance.low" {
		t.Fatalf("embed = %v", embed)
	}
	// Without ?wait=true Discord answers 204.
	raw = settings(t, map[string]any{"webhook_url": srv.URL()})
	res = sender.Send(context.Background(), job(raw, event("task.solved", `{}`, nil)), time.Now())
	if !res.Delivered || res.StatusCode != 204 {
		t.Fatalf("result = %+v", res)
	}
}

func TestSendRateLimited(t *testing.T) {
	srv := discordtest.New(t)
	sender := &Sender{Client: guardedClient()}
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	send := func() dispatch.Result {
		return sender.Send(context.Background(), job(raw, event("task.failed", `{}`, nil)), time.Now())
	}

	// The bucket: five executions per ten seconds, then 429.
	srv.SetRateLimit(5, 10*time.Second)
	for i := 0; i < 5; i++ {
		if r := send(); !r.Delivered {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	r := send()
	if r.Delivered || !r.Throttled || !r.Retryable || r.StatusCode != 429 || r.ErrorCode != "rate_limited" {
		t.Fatalf("sixth send = %+v", r)
	}
	if r.RetryAfter <= 5*time.Second || r.RetryAfter > 10*time.Second {
		t.Fatalf("RetryAfter = %s", r.RetryAfter)
	}
	srv.SetRateLimit(0, 0)

	cases := []struct {
		name    string
		headers map[string]string
		body    string
		want    time.Duration
	}{
		{"body seconds", nil, `{"message":"You are being rate limited.","retry_after":2.5,"global":false}`, 2500 * time.Millisecond},
		{"global", nil, `{"message":"You are being rate limited.","retry_after":0.064,"global":true}`, 64 * time.Millisecond},
		{"reset-after header", map[string]string{"X-RateLimit-Reset-After": "1.234"}, `{}`, 1234 * time.Millisecond},
		{"headers win over body", map[string]string{"Retry-After": "3", "X-RateLimit-Reset-After": "2.100"}, `{"retry_after":2100}`, 3 * time.Second},
		{"capped", map[string]string{"Retry-After": "86400"}, `{"retry_after":86400}`, MaxRetryAfter},
		{"cloudflare html", map[string]string{"Retry-After": "30"}, `<html>banned</html>`, 30 * time.Second},
		{"nothing", nil, ``, DefaultRetryAfter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Then(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.headers {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(429)
				w.Write([]byte(c.body))
			})
			r := send()
			if !r.Throttled || !r.Retryable || r.RetryAfter != c.want {
				t.Fatalf("result = %+v, want RetryAfter %s", r, c.want)
			}
			if c.name == "global" && !strings.Contains(r.ErrorMessage, "globally") {
				t.Errorf("message = %q", r.ErrorMessage)
			}
		})
	}
}

func TestSendStatuses(t *testing.T) {
	srv := discordtest.New(t)
	sender := &Sender{Client: guardedClient()}
	answer := func(status int, body string, headers ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(headers); i += 2 {
				w.Header().Set(headers[i], headers[i+1])
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	send := func(raw json.RawMessage) dispatch.Result {
		return sender.Send(context.Background(), job(raw, event("task.failed", `{}`, nil)), time.Now())
	}

	// A deleted webhook: the stand-in's real 404.
	gone := settings(t, map[string]any{"webhook_url": srv.BaseURL() + "/api/webhooks/999/whatever"})
	r := send(gone)
	if !r.Disable || r.Retryable || r.StatusCode != 404 || r.ErrorCode != "webhook_deleted" || !strings.Contains(r.ErrorMessage, "Unknown Webhook (10015)") {
		t.Fatalf("404: %+v", r)
	}
	// A wrong token: 401, failed, not disabled, not retried.
	bad := settings(t, map[string]any{"webhook_url": srv.BaseURL() + "/api/webhooks/123456789012345678/wrong"})
	r = send(bad)
	if r.Disable || r.Retryable || r.Delivered || r.StatusCode != 401 || !strings.Contains(r.ResponseBody, "Invalid Webhook Token") {
		t.Fatalf("401: %+v", r)
	}
	if strings.Contains(r.ErrorMessage, "wrong") {
		t.Fatalf("token in message: %q", r.ErrorMessage)
	}

	srv.Then(answer(410, ""))
	if r := send(raw); !r.Disable || r.Retryable {
		t.Fatalf("410: %+v", r)
	}
	srv.Then(answer(502, "bad gateway", "Retry-After", "7"))
	if r := send(raw); !r.Retryable || r.Throttled || r.Disable || r.RetryAfter != 7*time.Second || r.ResponseBody != "bad gateway" {
		t.Fatalf("502: %+v", r)
	}
	srv.Then(answer(500, `{"message":"500: Internal Server Error","code":0}`))
	if r := send(raw); !r.Retryable || r.ErrorCode != "http_500" {
		t.Fatalf("500: %+v", r)
	}
	srv.Then(answer(408, ""))
	if r := send(raw); !r.Retryable {
		t.Fatalf("408: %+v", r)
	}
	srv.Then(answer(302, "", "Location", "https://elsewhere.example/"))
	if r := send(raw); r.Retryable || r.Delivered || r.ErrorCode != "redirect_not_followed" {
		t.Fatalf("302: %+v", r)
	}
	errBody := `{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"description":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 4096 or fewer in length."}]}}}}}`
	srv.Then(answer(400, errBody, "Content-Type", "application/json"))
	r = send(raw)
	if r.Retryable || r.Disable || r.Delivered || r.ErrorCode != "http_400" || r.ResponseBody != errBody {
		t.Fatalf("400: %+v", r)
	}
	if !strings.Contains(r.ErrorMessage, "Invalid Form Body (50035): embeds.0.description: Must be 4096 or fewer in length.") {
		t.Fatalf("400 message: %q", r.ErrorMessage)
	}
	big := strings.Repeat("x", 10000) + "\x00"
	srv.Then(answer(403, big))
	if r := send(raw); r.Retryable || len(r.ResponseBody) != ResponseLimit {
		t.Fatalf("403: retryable %v, body %d bytes", r.Retryable, len(r.ResponseBody))
	}
}

func TestSendNetworkFailures(t *testing.T) {
	sender := &Sender{Client: guardedClient()}

	// Timeout: the stand-in stalls past the attempt's deadline.
	srv := discordtest.New(t)
	release := make(chan struct{})
	defer close(release)
	srv.Then(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	r := sender.Send(ctx, job(raw, event("x", `{}`, nil)), time.Now())
	cancel()
	if !r.Retryable || r.ErrorCode != "timeout" || r.Delivered {
		t.Fatalf("timeout: %+v", r)
	}

	// Connection refused: retryable, and the token is not in the message.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raw = settings(t, map[string]any{"webhook_url": "http://" + addr + "/api/webhooks/1/SeCrEt-token"})
	r = sender.Send(context.Background(), job(raw, event("x", `{}`, nil)), time.Now())
	if !r.Retryable || r.Delivered || r.ErrorCode != "connection_refused" || strings.Contains(r.ErrorMessage, "SeCrEt") {
		t.Fatalf("refused: %+v", r)
	}

	// The SSRF guard refuses loopback in production: not retryable.
	strict := &Sender{Client: (&netguard.Guard{}).Client(0)}
	r = strict.Send(context.Background(), job(settings(t, map[string]any{"webhook_url": srv.URL()}), event("x", `{}`, nil)), time.Now())
	if r.Retryable || r.ErrorCode != "ssrf_blocked" || strings.Contains(r.ErrorMessage, "secret") {
		t.Fatalf("ssrf: %+v", r)
	}
}

func TestSendInvalidSettings(t *testing.T) {
	sender := &Sender{Client: guardedClient()}
	r := sender.Send(context.Background(), job(json.RawMessage(`{"webhook_url":"https://discord.com/api/webhooks/1/t","title":"{{"}`), event("x", `{}`, nil)), time.Now())
	if r.Retryable || r.Delivered || r.ErrorCode != "invalid_destination" || !strings.Contains(r.ErrorMessage, "title") {
		t.Fatalf("result = %+v", r)
	}
}
