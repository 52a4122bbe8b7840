package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"carrier/internal/alert"
	"carrier/internal/dest/slack/slacktest"
	"carrier/internal/store"
)

// alertEvent is an alert event as the evaluator publishes it: data is
// alert.EventData, the notice under "notice", its footer the source's
// unless the notice has one (or is "-": none).
func alertEvent(t *testing.T, typ, severity string, n alert.Notice) store.Event {
	t.Helper()
	switch n.Footer {
	case "":
		n.Footer = alert.MonitorFooter("CaptchaAI")
	case "-":
		n.Footer = ""
	}
	data, err := json.Marshal(alert.EventData{
		AlertID: "alr_1", RuleID: "rul_1", Rule: "rule", Status: "firing", Severity: severity,
		StartsAt: eventTime, Notice: n,
	})
	if err != nil {
		t.Fatal(err)
	}
	return store.Event{ID: "evt_1", Type: typ, Data: data, CreatedAt: eventTime}
}

// contextJSON is the context block every message below ends with.
const contextJSON = `{"type":"context","elements":[{"type":"mrkdwn","text":"<!date^1741064767^{date_short_pretty} {time_secs}|2025-03-04T05:06:07Z> · CaptchaAI Pipeline Monitor"}]}`

// The source document's three example messages, rendered from the notices
// the alert builders write.
func TestRenderNoticeSourceExamples(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	cfg.Subscription = "captcha-alerts"
	cases := []struct {
		name  string
		event store.Event
		want  string
	}{
		{
			name:  "balance alert",
			event: alertEvent(t, alert.EventFiring, alert.SeverityWarning, alert.BalanceNotice("CaptchaAI", 8.42, 10, alert.SeverityWarning, "captchaai.com")),
			want: `{"text":"💰 Balance Alert — CaptchaAI balance is $8.42","blocks":[` +
				`{"type":"header","text":{"type":"plain_text","text":"💰 Balance Alert","emoji":true}},` +
				`{"type":"section","text":{"type":"mrkdwn","text":"CaptchaAI balance is *$8.42*"},"fields":[` +
				`{"type":"mrkdwn","text":"*Threshold*\n$10.00"},{"type":"mrkdwn","text":"*Severity*\nWARNING"},` +
				`{"type":"mrkdwn","text":"*Action*\nTop up your balance at captchaai.com"}]},` + contextJSON + `]}`,
		},
		{
			name: "error spike",
			event: alertEvent(t, alert.EventFiring, alert.SeverityCritical, alert.ErrorSpikeNotice(45.0/200, 45, 200,
				[]alert.CodeCount{{Code: "ERROR_CAPTCHA_UNSOLVABLE", Count: 30}, {Code: "TIMEOUT", Count: 15}}, 5*time.Minute)),
			want: "{\"text\":\"⚠️ Error Rate Spike — Error rate: 22.5% (45/200)\",\"blocks\":[" +
				"{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":\"⚠️ Error Rate Spike\",\"emoji\":true}}," +
				"{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"Error rate: *22.5%* (45/200)\"},\"fields\":[" +
				"{\"type\":\"mrkdwn\",\"text\":\"*Error Breakdown*\\n• `ERROR_CAPTCHA_UNSOLVABLE`: 30\\n• `TIMEOUT`: 15\"}," +
				"{\"type\":\"mrkdwn\",\"text\":\"*Window*\\nLast 5 minutes\"}]}," + contextJSON + "]}",
		},
		{
			name: "daily summary",
			event: alertEvent(t, alert.EventDailyReport, "", alert.DailySummaryNotice(alert.DailyStats{
				Total: 12450, SuccessRate: 0.952, AvgLatency: 22400 * time.Millisecond, Cost: 37.35, CostKnown: true,
				Errors: 598, Balance: 142.30, BalanceKnown: true, PeakQueue: 87,
			}, "")),
			want: `{"text":"📈 Daily CAPTCHA Summary — 12450 tasks processed","blocks":[` +
				`{"type":"header","text":{"type":"plain_text","text":"📈 Daily CAPTCHA Summary","emoji":true}},` +
				`{"type":"section","text":{"type":"mrkdwn","text":"*12450* tasks processed"},"fields":[` +
				`{"type":"mrkdwn","text":"*Success Rate*\n95.2%"},{"type":"mrkdwn","text":"*Avg Latency*\n22.4s"},` +
				`{"type":"mrkdwn","text":"*Total Cost*\n$37.35"},{"type":"mrkdwn","text":"*Errors*\n598"},` +
				`{"type":"mrkdwn","text":"*Balance*\n$142.30"},{"type":"mrkdwn","text":"*Peak Queue*\n87"}]},` + contextJSON + `]}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			render(t, cfg, c.event) // within Slack's limits
			if got, want := string(Render(cfg, c.event, "dlv_1")), c.want; got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// Notice text comes from the event, so it is escaped like any event value;
// the subscription's own templates win over the notice, part by part; more
// than ten fields take more sections.
func TestRenderNoticeParts(t *testing.T) {
	n := alert.Notice{Title: "<!channel> down", Description: "a **b** & <c>", Color: alert.ColorError, Footer: "Ops <x>"}
	for i := 0; i < 12; i++ {
		n.Fields = append(n.Fields, alert.NoticeField{Name: fmt.Sprintf("F%d", i), Value: fmt.Sprintf("v%d", i)})
	}
	n.Fields = append(n.Fields, alert.NoticeField{Name: "Empty", Value: " "})
	e := alertEvent(t, alert.EventFiring, alert.SeverityCritical, n)

	m := render(t, mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`)), e)
	if got, want := m.Blocks[0].Text.Text, "<!channel> down"; got != want { // plain text: no mention possible
		t.Errorf("header: got %q, want %q", got, want)
	}
	if got, want := m.Blocks[1].Text.Text, "a *b* &amp; &lt;c&gt;"; got != want {
		t.Errorf("section: got %q, want %q", got, want)
	}
	if got, want := m.Text, "&lt;!channel&gt; down — a b &amp; &lt;c&gt;"; got != want {
		t.Errorf("text: got %q, want %q", got, want)
	}
	if got, want := len(m.Blocks), 4; got != want {
		t.Fatalf("blocks: got %d, want %d (header, two sections, context)", got, want)
	}
	if got, want := len(m.Blocks[1].Fields)+len(m.Blocks[2].Fields), 12; got != want {
		t.Errorf("fields: got %d, want %d (the empty one left out)", got, want)
	}
	if got, want := m.Blocks[3].Elements[0].Text, "<!date^1741064767^{date_short_pretty} {time_secs}|2025-03-04T05:06:07Z> · Ops &lt;x&gt;"; got != want {
		t.Errorf("context: got %q, want %q", got, want)
	}

	custom := mustConfig(t, settings(t, map[string]any{
		"webhook_url": hookURL,
		"title":       "Alert {{.data.alert_id}}",
		"text":        "*{{.data.severity}}*",
		"fields":      []any{map[string]any{"name": "Rule", "value": "{{.data.rule}}"}},
	}))
	m = render(t, custom, e)
	if got, want := m.Blocks[0].Text.Text, "Alert alr_1"; got != want {
		t.Errorf("custom header: got %q, want %q", got, want)
	}
	if got, want := m.Blocks[1].Text.Text, "*critical*"; got != want {
		t.Errorf("custom section: got %q, want %q", got, want)
	}
	if got, want := m.Text, "*critical*"; got != want {
		t.Errorf("custom text: got %q, want %q", got, want)
	}
	if got, want := strings.Join(allFields(m), "|"), "*Rule*\nrule"; got != want {
		t.Errorf("custom fields: got %q, want %q", got, want)
	}
}

// Data without a usable notice renders as any other event.
func TestRenderWithoutNotice(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	m := render(t, cfg, event("alert.firing", `{"notice":{"title":"","description":"x"}}`, nil))
	if got, want := m.Blocks[0].Text.Text, "alert.firing"; got != want {
		t.Errorf("header: got %q, want %q", got, want)
	}
	if got, want := m.Text, "*alert.firing* task-42"; got != want {
		t.Errorf("text: got %q, want %q", got, want)
	}
}

// A notice goes through Send to the Slack stand-in, which checks the limits.
func TestSendNotice(t *testing.T) {
	srv := slacktest.New(t)
	sender := &Sender{Client: guardedClient()}
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	e := alertEvent(t, alert.EventResolved, alert.SeverityWarning,
		alert.ResolvedNotice("High error rate", "task.error_rate", 0.225, 0.31, 0.09, 12*time.Minute, "%"))
	res := sender.Send(context.Background(), job(raw, e), time.Now())
	if !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	m := srv.LastAccepted()
	want := "✅ Resolved: High error rate — Resolved after 12 min.\n`task.error_rate`: 22.5% → 31.0% → 9.0% (first → worst → last)"
	if got := m["text"]; got != want {
		t.Fatalf("text: got %q, want %q", got, want)
	}
}
