package discord

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"carrier/internal/alert"
	"carrier/internal/dest/discord/discordtest"
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
			// color 15965202 is 0xF39C12, the warning color.
			want: `{"embeds":[{"title":"💰 Balance Alert","description":"CaptchaAI balance is **$8.42**","color":15965202,` +
				`"fields":[{"name":"Threshold","value":"$10.00","inline":true},{"name":"Severity","value":"WARNING","inline":true},` +
				`{"name":"Action","value":"Top up your balance at captchaai.com"}],` +
				`"timestamp":"2025-03-04T05:06:07.890Z","footer":{"text":"CaptchaAI Pipeline Monitor"}}],"allowed_mentions":{"parse":[]}}`,
		},
		{
			name: "error spike",
			event: alertEvent(t, alert.EventFiring, alert.SeverityCritical, alert.ErrorSpikeNotice(45.0/200, 45, 200,
				[]alert.CodeCount{{Code: "ERROR_CAPTCHA_UNSOLVABLE", Count: 30}, {Code: "TIMEOUT", Count: 15}}, 5*time.Minute)),
			// color 15158332 is 0xE74C3C, the error color.
			want: "{\"embeds\":[{\"title\":\"⚠️ Error Rate Spike\",\"description\":\"Error rate: **22.5%** (45/200)\",\"color\":15158332," +
				"\"fields\":[{\"name\":\"Error Breakdown\",\"value\":\"• `ERROR_CAPTCHA_UNSOLVABLE`: 30\\n• `TIMEOUT`: 15\"}," +
				"{\"name\":\"Window\",\"value\":\"Last 5 minutes\",\"inline\":true}]," +
				"\"timestamp\":\"2025-03-04T05:06:07.890Z\",\"footer\":{\"text\":\"CaptchaAI Pipeline Monitor\"}}],\"allowed_mentions\":{\"parse\":[]}}",
		},
		{
			name: "daily summary",
			event: alertEvent(t, alert.EventDailyReport, "", alert.DailySummaryNotice(alert.DailyStats{
				Total: 12450, SuccessRate: 0.952, AvgLatency: 22400 * time.Millisecond, Cost: 37.35, CostKnown: true,
				Errors: 598, Balance: 142.30, BalanceKnown: true, PeakQueue: 87,
			}, "")),
			// color 3066993 is 0x2ECC71, the success color.
			want: `{"embeds":[{"title":"📈 Daily CAPTCHA Summary","description":"**12450** tasks processed","color":3066993,` +
				`"fields":[{"name":"Success Rate","value":"95.2%","inline":true},{"name":"Avg Latency","value":"22.4s","inline":true},` +
				`{"name":"Total Cost","value":"$37.35","inline":true},{"name":"Errors","value":"598","inline":true},` +
				`{"name":"Balance","value":"$142.30","inline":true},{"name":"Peak Queue","value":"87","inline":true}],` +
				`"timestamp":"2025-03-04T05:06:07.890Z","footer":{"text":"CaptchaAI Pipeline Monitor"}}],"allowed_mentions":{"parse":[]}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := Render(cfg, c.event, "dlv_1")
			if got, want := string(body), c.want; got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			checkWithinLimits(t, body)
		})
	}
}

// A resolution is green although the resolved alert's severity (still in
// its data) is critical: the notice's color wins over the defaults.
func TestRenderNoticeColor(t *testing.T) {
	resolved := alertEvent(t, alert.EventResolved, alert.SeverityCritical,
		alert.ResolvedNotice("High error rate", "task.error_rate", 0.225, 0.31, 0.09, 12*time.Minute, "%"))
	cases := []struct {
		name   string
		colors map[string]any
		want   int
	}{
		{"notice color over the defaults", nil, ColorGreen},
		{"notice color over the configured default", map[string]any{"default": 0x111111, "warning": 0x222222}, ColorGreen},
		{"configured color for the severity wins", map[string]any{"Critical": 0x333333}, 0x333333},
		{"configured color for the outcome wins", map[string]any{"resolved": "#444444"}, 0x444444},
		{"configured color for the type wins", map[string]any{"alert.resolved": 0x555555}, 0x555555},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := map[string]any{"webhook_url": hookURL}
			if c.colors != nil {
				s["colors"] = c.colors
			}
			m := message(t, mustConfig(t, settings(t, s)), resolved)
			if got, want := m.Embeds[0].Color, c.want; got != want {
				t.Fatalf("got %#x, want %#x", got, want)
			}
		})
	}
	// An unknown color key falls back to the colors of the event.
	n := alert.FlappingNotice("x", 5, time.Hour)
	n.Color = "purple"
	m := message(t, mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL})), alertEvent(t, alert.EventFlapping, alert.SeverityWarning, n))
	if got, want := m.Embeds[0].Color, ColorOrange; got != want {
		t.Fatalf("unknown key: got %#x, want %#x", got, want)
	}
}

// The subscription's own templates win over the notice, part by part.
func TestRenderNoticeTemplatesWin(t *testing.T) {
	n := alert.BalanceNotice("CaptchaAI", 8.42, 10, alert.SeverityWarning, "")
	n.Footer = "-" // none
	e := alertEvent(t, alert.EventFiring, alert.SeverityWarning, n)

	m := message(t, mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "title": "Low: {{.data.rule}}"})), e)
	emb := m.Embeds[0]
	if got, want := emb.Title, "Low: rule"; got != want {
		t.Errorf("title: got %q, want %q", got, want)
	}
	if got, want := emb.Description, "CaptchaAI balance is **$8.42**"; got != want {
		t.Errorf("description: got %q, want %q", got, want)
	}
	if got, want := len(emb.Fields), 2; got != want {
		t.Errorf("fields: got %d, want %d", got, want)
	}
	// Without a notice footer the footer is Carrier's.
	if got, want := emb.Footer.Text, "Carrier · alert.firing"; got != want {
		t.Errorf("footer: got %q, want %q", got, want)
	}

	m = message(t, mustConfig(t, settings(t, map[string]any{
		"webhook_url": hookURL,
		"description": "Balance {{.data.notice.fields}}",
		"fields":      []any{map[string]any{"name": "Alert", "value": "{{.data.alert_id}}", "inline": true}},
	})), e)
	emb = m.Embeds[0]
	if got, want := emb.Title, "💰 Balance Alert"; got != want {
		t.Errorf("title: got %q, want %q", got, want)
	}
	if got, want := emb.Fields, []EmbedField{{Name: "Alert", Value: "alr_1", Inline: true}}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("fields: got %+v, want %+v", got, want)
	}
	if emb.Description == "CaptchaAI balance is **$8.42**" {
		t.Errorf("description: the template was not used")
	}
}

// Data whose notice is missing, untitled or of the wrong shape renders as
// any other event.
func TestRenderWithoutNotice(t *testing.T) {
	cfg := mustConfig(t, json.RawMessage(`{"webhook_url":"`+hookURL+`"}`))
	for _, data := range []string{`{"notice":{"title":" ","description":"d"}}`, `{"notice":"text"}`, `{"notice":{"title":5}}`, `[1]`} {
		m := message(t, cfg, event("alert.firing", data, nil))
		if got, want := m.Embeds[0].Title, "alert.firing"; got != want {
			t.Errorf("%s: got title %q, want %q", data, got, want)
		}
	}
}

// mention_on ["critical"] pings the role on critical alerts only, and
// allowed_mentions lets exactly that role be pinged.
func TestRenderNoticeMentions(t *testing.T) {
	cfg := mustConfig(t, settings(t, map[string]any{"webhook_url": hookURL, "mention": "<@&123456789>", "mention_on": []string{"critical"}}))
	critical := alertEvent(t, alert.EventFiring, alert.SeverityCritical, alert.BalanceNotice("CaptchaAI", 1.5, 2, alert.SeverityCritical, "captchaai.com"))
	warning := alertEvent(t, alert.EventFiring, alert.SeverityWarning, alert.BalanceNotice("CaptchaAI", 8.42, 10, alert.SeverityWarning, "captchaai.com"))
	daily := alertEvent(t, alert.EventDailyReport, "", alert.DailySummaryNotice(alert.DailyStats{Total: 1, SuccessRate: 1}, "2026-03-29"))

	body := string(Render(cfg, critical, "dlv_1"))
	wantHead := `{"content":"<@&123456789>","embeds":[{"title":"💰 Balance Alert","description":"CaptchaAI balance is **$1.50**","color":15158332,`
	wantTail := `"allowed_mentions":{"parse":[],"roles":["123456789"]}}`
	if len(body) < len(wantHead)+len(wantTail) || body[:len(wantHead)] != wantHead || body[len(body)-len(wantTail):] != wantTail {
		t.Fatalf("critical: got\n%s\nwant it to start with\n%s\nand end with\n%s", body, wantHead, wantTail)
	}
	for name, e := range map[string]store.Event{"warning": warning, "daily report": daily} {
		m := message(t, cfg, e)
		if m.Content != "" || len(m.AllowedMentions.Parse) != 0 || len(m.AllowedMentions.Roles) != 0 || len(m.AllowedMentions.Users) != 0 {
			t.Errorf("%s: got content %q, allowed_mentions %+v; want no mention", name, m.Content, m.AllowedMentions)
		}
	}
}

// A notice goes through Send to the Discord stand-in, which checks every
// limit, with the notice's footer and the event's timestamp.
func TestSendNotice(t *testing.T) {
	srv := discordtest.New(t)
	sender := &Sender{Client: guardedClient()}
	raw := settings(t, map[string]any{"webhook_url": srv.URL()})
	e := alertEvent(t, alert.EventFiring, alert.SeverityWarning, alert.QueueBackupNotice("deliveries", 5000, 0, -1))
	res := sender.Send(context.Background(), job(raw, e), time.Now())
	if !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	got, _ := json.Marshal(srv.LastAccepted())
	want := `{"allowed_mentions":{"parse":[]},"embeds":[{"color":15965202,"description":"Queue depth: **5000** pending tasks",` +
		`"fields":[{"inline":true,"name":"Queue","value":"deliveries"},{"inline":true,"name":"Drain Rate","value":"0/s"},` +
		`{"inline":true,"name":"Est. Drain Time","value":"not draining"}],"footer":{"text":"CaptchaAI Pipeline Monitor"},` +
		`"timestamp":"2025-03-04T05:06:07.890Z","title":"📊 Queue Backup"}]}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
