package email

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// smtpServer is testdata/smtpserver.py running as a separate process.
type smtpServer struct {
	port int
	out  string // where it appends accepted messages
	cmd  *exec.Cmd
}

type received struct {
	MailFrom string   `json:"mailfrom"`
	RcptTos  []string `json:"rcpttos"`
	Data     string   `json:"data"`
}

func startSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the SMTP server of this test is a Python smtpd script")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "smtpserver.py"))
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{out: filepath.Join(t.TempDir(), "received.jsonl")}
	s.cmd = exec.Command(py, script, s.out)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l, "PORT %d", &s.port); err != nil {
			t.Fatalf("SMTP server said %q: %v", l, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SMTP server did not start")
	}
	// Wait until the port accepts connections.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SMTP server port %d does not accept: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *smtpServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *smtpServer) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

func (s *smtpServer) messages(t *testing.T) []received {
	t.Helper()
	b, err := os.ReadFile(s.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []received
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r received
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("received.jsonl: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func settings(t *testing.T, v map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testJob(destination json.RawMessage) store.Job {
	return store.Job{
		Delivery: store.Delivery{ID: "0190a5f2-7c1e-7d3a-9f00-0123456789ab"},
		Event: store.Event{
			ID: "evt-42", Type: "captcha.failed", Subject: "task-42",
			Data:       json.RawMessage(`{"task_id":"42","error":"ERROR_CAPTCHA_UNSOLVABLE","attempts":3}`),
			Attributes: map[string]string{"status": "failed", "provider": "captchaai"},
			CreatedAt:  time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC),
		},
		Subscription: store.Subscription{ID: "sub-7", ProjectID: "proj-1", Name: "ops alerts", Kind: "email", Destination: destination},
	}
}

func localSettings(s *smtpServer, to ...string) map[string]any {
	return map[string]any{"host": "127.0.0.1", "port": s.port, "security": "none", "from": "Carrier <carrier@example.com>", "to": to}
}

func TestEmailReachesRealSMTPServer(t *testing.T) {
	srv := startSMTPServer(t)
	sender := &Sender{AllowPrivate: true}
	job := testJob(settings(t, localSettings(srv, "ops@example.com", "Oncall <oncall@example.org>")))

	res := sender.Send(context.Background(), job, time.Now())
	if !res.Delivered || res.StatusCode != 250 || !strings.HasPrefix(res.ResponseBody, "250") {
		t.Fatalf("not delivered: %+v", res)
	}
	msgs := srv.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("server holds %d messages", len(msgs))
	}
	got := msgs[0]
	if got.MailFrom != "carrier@example.com" || strings.Join(got.RcptTos, ",") != "ops@example.com,oncall@example.org" {
		t.Fatalf("envelope from %q to %q", got.MailFrom, got.RcptTos)
	}
	m, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders := map[string]string{
		"From":                  `"Carrier" <carrier@example.com>`,
		"To":                    `<ops@example.com>, "Oncall" <oncall@example.org>`,
		"Subject":               "[Carrier] captcha.failed task-42",
		"Message-Id":            "<0190a5f2-7c1e-7d3a-9f00-0123456789ab@example.com>",
		"X-Carrier-Event-Id":    "evt-42",
		"X-Carrier-Delivery-Id": "0190a5f2-7c1e-7d3a-9f00-0123456789ab",
		"Auto-Submitted":        "auto-generated",
	}
	for k, want := range wantHeaders {
		if g := m.Header.Get(k); g != want {
			t.Errorf("header %s = %q, want %q", k, g, want)
		}
	}
	if !strings.HasPrefix(m.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", m.Header.Get("Content-Type"))
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
	for _, want := range []string{
		"captcha.failed — task-42",
		"Event type:    captcha.failed",
		"Time:          2026-01-02T03:04:05.678Z",
		"Event ID:      evt-42",
		"Subscription:  ops alerts (sub-7)",
		"  provider: captchaai\n  status: failed\n",
		"{\n  \"task_id\": \"42\",\n  \"error\": \"ERROR_CAPTCHA_UNSOLVABLE\",\n  \"attempts\": 3\n}",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}

	// A retry of the same delivery carries the same Message-ID.
	if res := sender.Send(context.Background(), job, time.Now()); !res.Delivered {
		t.Fatalf("retry: %+v", res)
	}
	msgs = srv.messages(t)
	m2, err := mail.ReadMessage(strings.NewReader(msgs[len(msgs)-1].Data))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Header.Get("Message-Id") != m.Header.Get("Message-Id") {
		t.Fatalf("retry Message-ID %q, first %q", m2.Header.Get("Message-Id"), m.Header.Get("Message-Id"))
	}

	// A custom subject template sees the event's data and attributes.
	st := localSettings(srv, "ops@example.com")
	st["subject"] = `{{.attributes.status | printf "%.4s"}}: task {{.data.task_id}} ({{.data.attempts}} tries)`
	if res := sender.Send(context.Background(), testJob(settings(t, st)), time.Now()); !res.Delivered {
		t.Fatalf("%+v", res)
	}
	msgs = srv.messages(t)
	m3, _ := mail.ReadMessage(strings.NewReader(msgs[len(msgs)-1].Data))
	if g := m3.Header.Get("Subject"); g != "fail: task 42 (3 tries)" {
		t.Fatalf("subject %q", g)
	}
}

func TestPermanentRefusalFailsWithoutRetry(t *testing.T) {
	srv := startSMTPServer(t)
	sender := &Sender{AllowPrivate: true}
	cases := []struct {
		name      string
		to        []string
		code      int
		retryable bool
		reply     string
	}{
		{"550 at RCPT", []string{"ops@example.com", "reject-me@example.com"}, 550, false, "550 5.1.1 mailbox unavailable"},
		{"451 at RCPT", []string{"tempfail@example.com"}, 451, true, "451 4.3.0 mailbox busy, try again later"},
		{"550 wins over 451", []string{"tempfail@example.com", "reject@example.com"}, 550, false, "550 5.1.1 mailbox unavailable"},
		{"554 after DATA", []string{"refuse-data@example.com"}, 554, false, "554 5.6.0 message content rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := sender.Send(context.Background(), testJob(settings(t, localSettings(srv, c.to...))), time.Now())
			if res.Delivered || res.Retryable != c.retryable || res.StatusCode != c.code ||
				res.ErrorCode != fmt.Sprintf("smtp_%d", c.code) || res.ResponseBody != c.reply {
				t.Fatalf("%+v", res)
			}
			if !strings.Contains(res.ErrorMessage, c.reply) {
				t.Fatalf("error message %q", res.ErrorMessage)
			}
		})
	}
	if n := len(srv.messages(t)); n != 0 {
		t.Fatalf("server accepted %d messages", n)
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	srv := startSMTPServer(t)
	job := testJob(settings(t, localSettings(srv, "ops@example.com")))
	srv.stop()
	res := (&Sender{AllowPrivate: true}).Send(context.Background(), job, time.Now())
	if res.Delivered || !res.Retryable || res.ErrorCode != "connection_refused" {
		t.Fatalf("%+v", res)
	}
}

// TestEndlessServerReplyIsCut: a server that greets with a line that never
// ends makes the attempt fail once it sent MaxServerBytes, instead of the
// SMTP client buffering it for the whole timeout.
func TestEndlessServerReplyIsCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sent atomic.Int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("220-"))
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for i := 0; i < 1000; i++ { // 32 MB at most, no line end
			n, err := c.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	job := testJob(settings(t, map[string]any{"host": "127.0.0.1", "port": port, "security": "none", "from": "a@example.com", "to": []string{"b@example.com"}}))
	res := (&Sender{AllowPrivate: true, Timeout: 10 * time.Second}).Send(context.Background(), job, time.Now())
	if res.Delivered || res.ErrorCode != "response_too_large" || !res.Retryable {
		t.Fatalf("%+v, want a retryable response_too_large", res)
	}
	if got := sent.Load(); got > 8<<20 {
		t.Errorf("the server could send %d bytes before the attempt ended", got)
	}
}

func TestSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, then never greet
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	job := testJob(settings(t, map[string]any{"host": "127.0.0.1", "port": port, "security": "none", "from": "a@example.com", "to": []string{"b@example.com"}}))
	start := time.Now()
	res := (&Sender{AllowPrivate: true, Timeout: 300 * time.Millisecond}).Send(context.Background(), job, time.Now())
	if res.Delivered || !res.Retryable || res.ErrorCode != "timeout" {
		t.Fatalf("%+v", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestStartTLSRequiredByDefault(t *testing.T) {
	srv := startSMTPServer(t) // offers no STARTTLS
	st := localSettings(srv, "ops@example.com")
	delete(st, "security")
	res := (&Sender{AllowPrivate: true}).Send(context.Background(), testJob(settings(t, st)), time.Now())
	if res.Delivered || res.Retryable || res.ErrorCode != "starttls_unavailable" {
		t.Fatalf("%+v", res)
	}
	if n := len(srv.messages(t)); n != 0 {
		t.Fatalf("sent in plain text: %d messages", n)
	}
}

func TestPrivateHostsRefused(t *testing.T) {
	srv := startSMTPServer(t)
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		st := localSettings(srv, "ops@example.com")
		st["host"] = host
		res := (&Sender{}).Send(context.Background(), testJob(settings(t, st)), time.Now())
		if res.Delivered || res.Retryable || res.ErrorCode != "ssrf_blocked" {
			t.Fatalf("%s: %+v", host, res)
		}
	}
	if n := len(srv.messages(t)); n != 0 {
		t.Fatalf("server accepted %d messages", n)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(json.RawMessage(`{"host":"smtp.example.com","from":"a@example.com","to":["b@example.com"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 587 || c.Security != "starttls" || c.Subject != DefaultSubject {
		t.Fatalf("%+v", c)
	}
	c, err = ParseConfig(json.RawMessage(`{"host":"smtp.example.com","security":"tls","username":"u","password":"p","from":"a@example.com","to":["b@example.com"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 465 {
		t.Fatalf("tls port %d", c.Port)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"host": "smtp.example.com", "from": "a@example.com", "to": []string{"b@example.com"}}
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@example.com", i)
	}
	cases := []struct {
		name  string
		edit  func(m map[string]any)
		field string
	}{
		{"unknown field", func(m map[string]any) { m["cc"] = "x@example.com" }, "cc"},
		{"no host", func(m map[string]any) { delete(m, "host") }, "host"},
		{"host with port", func(m map[string]any) { m["host"] = "smtp.example.com:25" }, "host"},
		{"host with scheme", func(m map[string]any) { m["host"] = "smtp://smtp.example.com" }, "host"},
		{"unix socket", func(m map[string]any) { m["host"] = "unix:///var/run/smtp" }, "host"},
		{"host not a string", func(m map[string]any) { m["host"] = 5 }, "host"},
		{"port zero", func(m map[string]any) { m["port"] = 0 }, "port"},
		{"port too big", func(m map[string]any) { m["port"] = 70000 }, "port"},
		{"port fraction", func(m map[string]any) { m["port"] = 25.5 }, "port"},
		{"port string", func(m map[string]any) { m["port"] = "25" }, "port"},
		{"security", func(m map[string]any) { m["security"] = "ssl" }, "security"},
		{"password without username", func(m map[string]any) { m["password"] = "p" }, "username"},
		{"username without password", func(m map[string]any) { m["username"] = "u" }, "password"},
		{"password in plain text", func(m map[string]any) { m["username"], m["password"], m["security"] = "u", "p", "none" }, "security"},
		{"no from", func(m map[string]any) { delete(m, "from") }, "from"},
		{"bad from", func(m map[string]any) { m["from"] = "not an address" }, "from"},
		{"no to", func(m map[string]any) { m["to"] = []string{} }, "to"},
		{"to not an array", func(m map[string]any) { m["to"] = "b@example.com" }, "to"},
		{"51 recipients", func(m map[string]any) { m["to"] = many }, "to"},
		{"bad recipient", func(m map[string]any) { m["to"] = []string{"b@example.com", "b@example.com\r\nBcc: x@evil.test"} }, "to[1]"},
		{"recipient without domain", func(m map[string]any) { m["to"] = []string{"b@"} }, "to[0]"},
		{"template syntax", func(m map[string]any) { m["subject"] = "{{.type" }, "subject"},
		{"template range", func(m map[string]any) { m["subject"] = "{{range .data}}x{{end}}" }, "subject"},
		{"template define", func(m map[string]any) { m["subject"] = `{{define "a"}}{{template "a"}}{{end}}x` }, "subject"},
		{"template in if", func(m map[string]any) { m["subject"] = `{{if .type}}{{block "b" .}}x{{end}}{{end}}` }, "subject"},
		{"template too long", func(m map[string]any) { m["subject"] = strings.Repeat("x", 1001) }, "subject"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.edit(m)
			_, err := ParseConfig(settings(t, m))
			var fe *dest.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want a FieldError, got %v", err)
			}
			if fe.Field != c.field {
				t.Fatalf("field %q (%s), want %q", fe.Field, fe.Message, c.field)
			}
		})
	}
	if _, err := ParseConfig(json.RawMessage(`[]`)); err == nil {
		t.Fatal("array accepted")
	}
	// A recipient limit of exactly 50 is fine.
	m := base()
	m["to"] = many[:50]
	if _, err := ParseConfig(settings(t, m)); err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	raw := json.RawMessage(`{"host":"smtp.example.com","username":"u","password":"s3cret","from":"a@example.com","to":["b@example.com"]}`)
	got := string(Redact(raw))
	if strings.Contains(got, "s3cret") || !strings.Contains(got, `"password":"***hidden***"`) || !strings.Contains(got, `"host":"smtp.example.com"`) {
		t.Fatalf("Redact = %s", got)
	}
	if got := string(Redact(json.RawMessage(`{"host":"h"}`))); got != `{"host":"h"}` {
		t.Fatalf("Redact without password = %s", got)
	}
	if got := string(Redact(json.RawMessage(`not json "s3cret"`))); strings.Contains(got, "s3cret") {
		t.Fatalf("Redact of garbage = %s", got)
	}
}

func TestSubjectTemplateFailureFallsBack(t *testing.T) {
	c, err := ParseConfig(json.RawMessage(`{"host":"h.example","from":"a@example.com","to":["b@example.com"],"subject":"{{index .data 5}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	job := testJob(nil)
	subj, err := renderSubject(c.subject, job, time.Now())
	if err == nil || subj != "[Carrier] captcha.failed task-42" {
		t.Fatalf("subject %q, err %v", subj, err)
	}
	if body := Body(job, time.Now(), err); !strings.Contains(body, "subject template failed") {
		t.Fatalf("body does not note the failure:\n%s", body)
	}
	// Line breaks in the data never reach the header.
	job.Event.Subject = "a\r\nBcc: x@evil.test"
	subj, _ = renderSubject(c.subject, job, time.Now())
	if strings.ContainsAny(subj, "\r\n") {
		t.Fatalf("subject %q", subj)
	}
}

func TestMessageIDValue(t *testing.T) {
	cases := map[[2]string]string{
		{"0190a5f2-7c1e", "Ops <ops@Example.com>"}: "0190a5f2-7c1e@Example.com",
		{"a b<c>", "ops@example.com"}:              "a-b-c-@example.com",
		{"", "ops@example.com"}:                    "delivery@example.com",
	}
	for in, want := range cases {
		if got := MessageIDValue(in[0], in[1]); got != want {
			t.Errorf("MessageIDValue(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
