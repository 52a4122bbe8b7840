package email

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"carrier/internal/alert"
	"carrier/internal/store"
)

// alertJob is a delivery of an alert event as the evaluator publishes it:
// data is alert.EventData, the notice under "notice" with the source's
// footer.
func alertJob(t *testing.T, destination json.RawMessage, typ, severity string, n alert.Notice) store.Job {
	t.Helper()
	n.Footer = alert.MonitorFooter("CaptchaAI")
	data, err := json.Marshal(alert.EventData{AlertID: "alr_1", Rule: "rule", Status: "firing", Severity: severity, Notice: n})
	if err != nil {
		t.Fatal(err)
	}
	job := testJob(destination)
	job.Event.Type = typ
	job.Event.Subject = ""
	job.Event.Data = data
	job.Event.Attributes = nil
	return job
}

// subjectOf is a message's Subject header, decoded.
func subjectOf(t *testing.T, m *gomail.Msg) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(strings.Join(m.GetGenHeader(gomail.HeaderSubject), ","))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noticeConfig(t *testing.T, subject string) Config {
	t.Helper()
	v := map[string]any{"host": "smtp.example.com", "from": "carrier@example.com", "to": []string{"ops@example.com"}}
	if subject != "" {
		v["subject"] = subject
	}
	c, err := ParseConfig(settings(t, v))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The source document's three example messages: the notice's title is the
// subject, and the body starts with the notice in plain text.
func TestNoticeSourceExamples(t *testing.T) {
	cases := []struct {
		name      string
		typ       string
		notice    alert.Notice
		subject   string
		bodyStart string
	}{
		{
			name:    "balance alert",
			typ:     alert.EventFiring,
			notice:  alert.BalanceNotice("CaptchaAI", 8.42, 10, alert.SeverityWarning, "captchaai.com"),
			subject: "💰 Balance Alert",
			bodyStart: "💰 Balance Alert\n\n" +
				"CaptchaAI balance is $8.42\n\n" +
				"Threshold: $10.00\n" +
				"Severity: WARNING\n" +
				"Action: Top up your balance at captchaai.com\n\n" +
				"alert.firing\n\n",
		},
		{
			name: "error spike",
			typ:  alert.EventFiring,
			notice: alert.ErrorSpikeNotice(45.0/200, 45, 200,
				[]alert.CodeCount{{Code: "ERROR_CAPTCHA_UNSOLVABLE", Count: 30}, {Code: "TIMEOUT", Count: 15}}, 5*time.Minute),
			subject: "⚠️ Error Rate Spike",
			bodyStart: "⚠️ Error Rate Spike\n\n" +
				"Error rate: 22.5% (45/200)\n\n" +
				"Error Breakdown: • `ERROR_CAPTCHA_UNSOLVABLE`: 30\n" +
				"  • `TIMEOUT`: 15\n" +
				"Window: Last 5 minutes\n\n" +
				"alert.firing\n\n",
		},
		{
			name: "daily summary",
			typ:  alert.EventDailyReport,
			notice: alert.DailySummaryNotice(alert.DailyStats{
				Total: 12450, SuccessRate: 0.952, AvgLatency: 22400 * time.Millisecond, Cost: 37.35, CostKnown: true,
				Errors: 598, Balance: 142.30, BalanceKnown: true, PeakQueue: 87,
			}, "2026-03-29"),
			subject: "📈 Daily CAPTCHA Summary — 2026-03-29",
			bodyStart: "📈 Daily CAPTCHA Summary — 2026-03-29\n\n" +
				"12450 tasks processed\n\n" +
				"Success Rate: 95.2%\n" +
				"Avg Latency: 22.4s\n" +
				"Total Cost: $37.35\n" +
				"Errors: 598\n" +
				"Balance: $142.30\n" +
				"Peak Queue: 87\n\n" +
				"report.daily\n\n",
		},
	}
	cfg := noticeConfig(t, "")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := alertJob(t, nil, c.typ, "", c.notice)
			m, err := Message(cfg, job, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := subjectOf(t, m), c.subject; got != want {
				t.Errorf("subject: got %q, want %q", got, want)
			}
			body := Body(job, time.Now(), nil)
			if got, want := body[:min(len(body), len(c.bodyStart))], c.bodyStart; got != want {
				t.Errorf("body: got\n%s\nwant it to start with\n%s", body, want)
			}
			if !strings.Contains(body, "Event type:    "+c.typ+"\n") || !strings.Contains(body, `"notice": {`) {
				t.Errorf("body lacks the event's details:\n%s", body)
			}
		})
	}
}

// A subject template of the subscription's own wins over the notice's
// title; the body still starts with the notice. Events without a usable
// notice keep the default subject.
func TestNoticeSubjectTemplateWins(t *testing.T) {
	job := alertJob(t, nil, alert.EventFiring, alert.SeverityCritical, alert.BalanceNotice("CaptchaAI", 1.5, 2, alert.SeverityCritical, ""))
	m, err := Message(noticeConfig(t, "[{{.data.severity}}] {{.data.notice.title}}"), job, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subjectOf(t, m), "[critical] 💰 Balance Alert"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	if body := Body(job, time.Now(), nil); !strings.HasPrefix(body, "💰 Balance Alert\n\nCaptchaAI balance is $1.50\n\nThreshold: $2.00\nSeverity: CRITICAL\n\nalert.firing\n\n") {
		t.Errorf("body:\n%s", body)
	}

	job.Event.Data = json.RawMessage(`{"notice":{"title":"","description":"x"}}`)
	m, err = Message(noticeConfig(t, ""), job, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subjectOf(t, m), "[Carrier] alert.firing"; got != want {
		t.Errorf("subject without a notice: got %q, want %q", got, want)
	}
	if body := Body(job, time.Now(), nil); !strings.HasPrefix(body, "alert.firing\n\n") {
		t.Errorf("body without a notice:\n%s", body)
	}
}

// A notice's title with line breaks never makes a second header line.
func TestNoticeSubjectIsOneLine(t *testing.T) {
	job := alertJob(t, nil, alert.EventFiring, "", alert.Notice{Title: "Down\r\nBcc: x@evil.test", Color: alert.ColorError})
	m, err := Message(noticeConfig(t, ""), job, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subjectOf(t, m), "Down Bcc: x@evil.test"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
}

// The error spike travels through a real SMTP server: the emoji subject is
// encoded and decodes back, and the body arrives as rendered.
func TestNoticeReachesRealSMTPServer(t *testing.T) {
	srv := startSMTPServer(t)
	sender := &Sender{AllowPrivate: true}
	n := alert.ErrorSpikeNotice(45.0/200, 45, 200, []alert.CodeCount{{Code: "ERROR_CAPTCHA_UNSOLVABLE", Count: 30}, {Code: "TIMEOUT", Count: 15}}, 5*time.Minute)
	job := alertJob(t, settings(t, localSettings(srv, "ops@example.com")), alert.EventFiring, alert.SeverityCritical, n)
	if res := sender.Send(context.Background(), job, time.Now()); !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	msgs := srv.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("server holds %d messages", len(msgs))
	}
	m, err := mail.ReadMessage(strings.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subject, "⚠️ Error Rate Spike"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	var body io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(m.Body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	want := "⚠️ Error Rate Spike\n\nError rate: 22.5% (45/200)\n\nError Breakdown: • `ERROR_CAPTCHA_UNSOLVABLE`: 30\n  • `TIMEOUT`: 15\nWindow: Last 5 minutes\n\nalert.firing\n\n"
	if !strings.HasPrefix(text, want) {
		t.Errorf("body: got\n%s\nwant it to start with\n%s", text, want)
	}
}
