package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carrier/internal/alert"
	"carrier/internal/dest"
	"carrier/internal/dest/alertmanager"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

// request is what the receiver got.
type request struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on loopback that answers every request
// with answer (200 when nil) and hands what it got to the test.
func receiver(t *testing.T, answer func(w http.ResponseWriter)) (string, <-chan request) {
	t.Helper()
	got := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- request{method: r.Method, header: r.Header.Clone(), body: b}
		if answer != nil {
			answer(w)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

// next waits for the receiver's next request; the deadline only bounds a hang.
func next(t *testing.T, got <-chan request) request {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the receiver")
		return request{}
	}
}

// loopbackClient is Carrier's guarded client as it runs with
// CARRIER_ALLOW_PRIVATE_NETWORKS, so tests can reach 127.0.0.1.
func loopbackClient() *http.Client { return (&netguard.Guard{AllowPrivate: true}).Client(0) }

const externalURL = "https://carrier.example.com"

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func f(v float64) *float64 { return &v }

// alertJob is a delivery of an alert notification as internal/alert writes it.
func alertJob(t *testing.T, typ string, d alert.EventData, created time.Time, settings string) store.Job {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return store.Job{
		Delivery: store.Delivery{ID: "dlv-1"},
		Event: store.Event{ID: "evt-1", ProjectID: "p1", Type: typ, Subject: d.AlertID, Data: data, CreatedAt: created,
			Attributes: map[string]string{"severity": d.Severity, "rule": d.Rule, "status": d.Status, "metric": d.Metric}},
		Subscription: store.Subscription{ID: "sub-1", ProjectID: "p1", Name: "ops-pager", Kind: alertmanager.Kind,
			Destination: json.RawMessage(settings), TimeoutSeconds: 5},
	}
}

func settingsFor(url string, extra string) string {
	return `{"url": "` + url + `"` + extra + `}`
}

// golden compacts an indented golden body and adds the newline json.Encoder
// ends it with: what must arrive byte for byte.
func golden(t *testing.T, indented string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(indented)); err != nil {
		t.Fatalf("golden is not JSON: %v", err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func sendAndCapture(t *testing.T, job store.Job, got <-chan request) request {
	t.Helper()
	s := &alertmanager.Sender{Client: loopbackClient(), RetryAfterCap: time.Hour, ExternalURL: externalURL}
	res := s.Send(context.Background(), job, job.Event.CreatedAt)
	if !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	return next(t, got)
}

func checkBody(t *testing.T, got []byte, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("body\n got: %s\nwant: %s", got, want)
	}
}

// The firing alert of a project-wide rule: the exact body, and the request
// around it.
func TestFiringAlertBody(t *testing.T) {
	url, got := receiver(t, nil)
	job := alertJob(t, alert.EventFiring, alert.EventData{
		AlertID: "alert-1", RuleID: "rule-1", Rule: "Low balance", Kind: "threshold", Metric: "provider.balance",
		Status: "firing", Severity: "warning", Value: f(4.5), Threshold: f(10),
		FirstValue: f(4.5), WorstValue: f(4.5), LastValue: f(4.5), StartsAt: at("2026-03-01T10:00:00Z"),
		Notice: alert.Notice{Title: "💰 Balance Alert", Description: "Balance is **$4.50** (< $10.00)", Color: alert.ColorWarning,
			Fields: []alert.NoticeField{{Name: "Threshold", Value: "$10.00"}}},
	}, at("2026-03-01T10:00:00Z"), settingsFor(url, `, "bearer_token": "s3cret-token", "headers": {"X-Scope-OrgID": "tenant-7"}`))

	r := sendAndCapture(t, job, got)
	checkBody(t, r.body, golden(t, `{
		"receiver": "ops-pager",
		"status": "firing",
		"alerts": [{
			"status": "firing",
			"labels": {"alertname": "Low balance", "metric": "provider.balance", "project": "p1", "rule_id": "rule-1", "severity": "warning"},
			"annotations": {"description": "Balance is $4.50 (\u003c $10.00)", "summary": "💰 Balance Alert", "threshold": "10", "value": "4.5"},
			"startsAt": "2026-03-01T10:00:00Z",
			"endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "https://carrier.example.com/v1/alerts/alert-1",
			"fingerprint": "97e2e97ceb6eb78e"
		}],
		"groupLabels": {"alertname": "Low balance", "project": "p1"},
		"commonLabels": {"alertname": "Low balance", "metric": "provider.balance", "project": "p1", "rule_id": "rule-1", "severity": "warning"},
		"commonAnnotations": {"description": "Balance is $4.50 (\u003c $10.00)", "summary": "💰 Balance Alert", "threshold": "10", "value": "4.5"},
		"externalURL": "https://carrier.example.com",
		"version": "4",
		"groupKey": "{}:{alertname=\"Low balance\", project=\"p1\"}",
		"truncatedAlerts": 0
	}`))
	if r.method != http.MethodPost {
		t.Errorf("method %s, want POST", r.method)
	}
	for name, want := range map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            dest.UserAgent,
		"Authorization":         "Bearer s3cret-token",
		"X-Scope-Orgid":         "tenant-7",
		"X-Webhook-Delivery-Id": "dlv-1",
	} {
		if v := r.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	for _, name := range []string{"Webhook-Signature", "X-Carrier-Signature"} {
		if v := r.header.Get(name); v != "" {
			t.Errorf("header %s = %q: Alertmanager webhooks are not signed", name, v)
		}
	}
}

// An escalation of an item-scoped alert carries the new severity firing and
// the previous one resolved, in Alertmanager's order (by labels: critical
// before warning), so the consumer does not keep the warning firing.
func TestEscalatedAlertBody(t *testing.T) {
	url, got := receiver(t, nil)
	job := alertJob(t, alert.EventFiring, alert.EventData{
		AlertID: "alert-2", RuleID: "rule-2", Rule: "Solve rate", Kind: "ratio", Metric: "tasks.solve_rate", Item: "sub_42",
		Status: "firing", Severity: "critical", PreviousSeverity: "warning", Value: f(0.42), Threshold: f(0.5),
		StartsAt: at("2026-03-01T10:00:00Z"),
		Notice:   alert.Notice{Title: "🚨 Critical: Solve rate", Description: "Solve rate is **42%**", Color: alert.ColorError},
	}, at("2026-03-01T10:30:00Z"), settingsFor(url, `, "receiver": "team.ops"`))

	r := sendAndCapture(t, job, got)
	checkBody(t, r.body, golden(t, `{
		"receiver": "team\\.ops",
		"status": "firing",
		"alerts": [{
			"status": "firing",
			"labels": {"alertname": "Solve rate", "item": "sub_42", "metric": "tasks.solve_rate", "project": "p1", "rule_id": "rule-2", "severity": "critical"},
			"annotations": {"description": "Solve rate is 42%", "summary": "🚨 Critical: Solve rate", "threshold": "0.5", "value": "0.42"},
			"startsAt": "2026-03-01T10:00:00Z",
			"endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "https://carrier.example.com/v1/alerts/alert-2",
			"fingerprint": "f6f973cd10d765d0"
		}, {
			"status": "resolved",
			"labels": {"alertname": "Solve rate", "item": "sub_42", "metric": "tasks.solve_rate", "project": "p1", "rule_id": "rule-2", "severity": "warning"},
			"annotations": {"description": "Solve rate is 42%", "summary": "🚨 Critical: Solve rate", "threshold": "0.5", "value": "0.42"},
			"startsAt": "2026-03-01T10:00:00Z",
			"endsAt": "2026-03-01T10:30:00Z",
			"generatorURL": "https://carrier.example.com/v1/alerts/alert-2",
			"fingerprint": "a7d365e40dc6c673"
		}],
		"groupLabels": {"alertname": "Solve rate", "item": "sub_42", "project": "p1"},
		"commonLabels": {"alertname": "Solve rate", "item": "sub_42", "metric": "tasks.solve_rate", "project": "p1", "rule_id": "rule-2"},
		"commonAnnotations": {"description": "Solve rate is 42%", "summary": "🚨 Critical: Solve rate", "threshold": "0.5", "value": "0.42"},
		"externalURL": "https://carrier.example.com",
		"version": "4",
		"groupKey": "{}:{alertname=\"Solve rate\", item=\"sub_42\", project=\"p1\"}",
		"truncatedAlerts": 0
	}`))
}

// The resolution has the same labels, so the same fingerprint, as the
// firing alert it ends, and Carrier's ends_at.
func TestResolvedAlertBody(t *testing.T) {
	url, got := receiver(t, nil)
	ends := at("2026-03-01T11:00:00Z")
	job := alertJob(t, alert.EventResolved, alert.EventData{
		AlertID: "alert-1", RuleID: "rule-1", Rule: "Low balance", Kind: "threshold", Metric: "provider.balance",
		Status: "resolved", Severity: "warning", Value: f(25), Threshold: f(10),
		StartsAt: at("2026-03-01T10:00:00Z"), EndsAt: &ends, DurationSeconds: 3600,
		Notice: alert.Notice{Title: "✅ Resolved: Low balance", Description: "Resolved after **1h**.\nWorst: **$4.50**", Color: alert.ColorSuccess},
	}, ends, settingsFor(url, ""))

	r := sendAndCapture(t, job, got)
	checkBody(t, r.body, golden(t, `{
		"receiver": "ops-pager",
		"status": "resolved",
		"alerts": [{
			"status": "resolved",
			"labels": {"alertname": "Low balance", "metric": "provider.balance", "project": "p1", "rule_id": "rule-1", "severity": "warning"},
			"annotations": {"description": "Resolved after 1h.\nWorst: $4.50", "summary": "✅ Resolved: Low balance", "threshold": "10", "value": "25"},
			"startsAt": "2026-03-01T10:00:00Z",
			"endsAt": "2026-03-01T11:00:00Z",
			"generatorURL": "https://carrier.example.com/v1/alerts/alert-1",
			"fingerprint": "97e2e97ceb6eb78e"
		}],
		"groupLabels": {"alertname": "Low balance", "project": "p1"},
		"commonLabels": {"alertname": "Low balance", "metric": "provider.balance", "project": "p1", "rule_id": "rule-1", "severity": "warning"},
		"commonAnnotations": {"description": "Resolved after 1h.\nWorst: $4.50", "summary": "✅ Resolved: Low balance", "threshold": "10", "value": "25"},
		"externalURL": "https://carrier.example.com",
		"version": "4",
		"groupKey": "{}:{alertname=\"Low balance\", project=\"p1\"}",
		"truncatedAlerts": 0
	}`))
	if r.header.Get("Authorization") != "" {
		t.Errorf("Authorization %q sent without a bearer token", r.header.Get("Authorization"))
	}
}

// A report.daily (any event that is not an alert notification) is one
// firing alert named after its type, with its notice as annotations.
func TestOtherEventBody(t *testing.T) {
	url, got := receiver(t, nil)
	data, _ := json.Marshal(alert.DailyReport{RuleID: "rule-9", Rule: "Daily summary", Day: "2026-03-01", Total: 120, Severity: "info",
		Notice: alert.Notice{Title: "📈 Daily CAPTCHA Summary", Description: "**120** tasks processed", Color: alert.ColorInfo}})
	job := store.Job{
		Delivery: store.Delivery{ID: "dlv-9"},
		Event: store.Event{ID: "evt-9", ProjectID: "p1", Type: alert.EventDailyReport, Subject: "rule-9", Data: data,
			Attributes: map[string]string{"rule": "Daily summary", "severity": "info"}, CreatedAt: at("2026-03-02T00:00:05Z")},
		Subscription: store.Subscription{ID: "sub-1", ProjectID: "p1", Kind: alertmanager.Kind, Destination: json.RawMessage(settingsFor(url, "")), TimeoutSeconds: 5},
	}
	r := sendAndCapture(t, job, got)
	checkBody(t, r.body, golden(t, `{
		"receiver": "carrier",
		"status": "firing",
		"alerts": [{
			"status": "firing",
			"labels": {"alertname": "report.daily", "project": "p1", "severity": "info", "subject": "rule-9"},
			"annotations": {"description": "120 tasks processed", "summary": "📈 Daily CAPTCHA Summary"},
			"startsAt": "2026-03-02T00:00:05Z",
			"endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "https://carrier.example.com/v1/events/evt-9",
			"fingerprint": "d748a34f3b6c4260"
		}],
		"groupLabels": {"alertname": "report.daily", "project": "p1", "subject": "rule-9"},
		"commonLabels": {"alertname": "report.daily", "project": "p1", "severity": "info", "subject": "rule-9"},
		"commonAnnotations": {"description": "120 tasks processed", "summary": "📈 Daily CAPTCHA Summary"},
		"externalURL": "https://carrier.example.com",
		"version": "4",
		"groupKey": "{}:{alertname=\"report.daily\", project=\"p1\", subject=\"rule-9\"}",
		"truncatedAlerts": 0
	}`))

	// Without a notice, a subject or a public URL: no annotations, and no links.
	plain := job
	plain.Event = store.Event{ID: "evt-10", ProjectID: "p1", Type: "task.failed", Data: json.RawMessage(`{"task_id":"t1"}`), CreatedAt: at("2026-03-02T00:00:05Z")}
	m := alertmanager.NewMessage(plain, alertmanager.Sources{Receiver: "carrier"})
	if len(m.Alerts) != 1 || len(m.Alerts[0].Annotations) != 0 || m.Alerts[0].GeneratorURL != "" || m.ExternalURL != "" ||
		m.GroupKey != `{}:{alertname="task.failed", project="p1"}` || m.Alerts[0].Status != alertmanager.StatusFiring {
		t.Errorf("plain event message: %+v", m)
	}
}

// An alert.flapping is firing (Alertmanager has no flapping state) with the
// alert's own labels; an alert.* event without a rule is any other event.
func TestFlappingAndMalformedAlertEvents(t *testing.T) {
	job := alertJob(t, alert.EventFlapping, alert.EventData{AlertID: "alert-1", RuleID: "rule-1", Rule: "Low balance",
		Metric: "provider.balance", Status: "flapping", Severity: "warning", StartsAt: at("2026-03-01T10:00:00Z"),
		Notice: alert.Notice{Title: "🔁 Flapping: Low balance"}}, at("2026-03-01T10:40:00Z"), `{}`)
	m := alertmanager.NewMessage(job, alertmanager.Sources{Receiver: "r"})
	if m.Status != alertmanager.StatusFiring || len(m.Alerts) != 1 || m.Alerts[0].Fingerprint != "97e2e97ceb6eb78e" ||
		!m.Alerts[0].EndsAt.IsZero() || m.Alerts[0].Annotations["value"] != "" {
		t.Errorf("flapping message: %+v", m)
	}
	job.Event.Data = json.RawMessage(`{"status":"firing"}`)
	m = alertmanager.NewMessage(job, alertmanager.Sources{Receiver: "r"})
	if m.Alerts[0].Labels["alertname"] != alert.EventFlapping {
		t.Errorf("alert event without a rule: labels %v, want alertname %s", m.Alerts[0].Labels, alert.EventFlapping)
	}
}

// The fingerprint against vectors computed with prometheus/common's
// model.LabelSet.Fingerprint (v0.72.0); the goldens' fingerprints were
// computed the same way, and TestOfficialTypes compares with the real code.
func TestFingerprintVectors(t *testing.T) {
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{}, "cbf29ce484222325"},
		{map[string]string{"alertname": "Low balance", "severity": "warning", "metric": "provider.balance", "rule_id": "rule-1", "project": "p1"}, "97e2e97ceb6eb78e"},
		{map[string]string{"alertname": "Low balance", "severity": "critical", "metric": "provider.balance", "rule_id": "rule-1", "project": "p1"}, "c17d00b519269737"},
		{map[string]string{"alertname": "Test", "dc": "eu-west-1", "instance": "localhost:9090", "job": "prometheus24"}, "4ca62d040e78b6d8"},
		{map[string]string{"alertname": "Solve rate", "item": "sub_42", "metric": "tasks.solve_rate", "project": "p1", "rule_id": "rule-2", "severity": "critical"}, "f6f973cd10d765d0"},
		{map[string]string{"alertname": "report.daily", "project": "p1", "severity": "info", "subject": "rule-9"}, "d748a34f3b6c4260"},
	} {
		if got := alertmanager.Fingerprint(c.labels); got != c.want {
			t.Errorf("Fingerprint(%v) = %s, want %s", c.labels, got, c.want)
		}
	}
}

func TestGroupKey(t *testing.T) {
	for _, c := range []struct {
		group map[string]string
		want  string
	}{
		{map[string]string{}, "{}:{}"},
		{map[string]string{"alertname": "Test", "job": "prometheus24"}, `{}:{alertname="Test", job="prometheus24"}`},
		{map[string]string{"alertname": `say "hi"` + "\n"}, `{}:{alertname="say \"hi\"\n"}`},
	} {
		if got := alertmanager.GroupKey("{}", c.group); got != c.want {
			t.Errorf("GroupKey(%v) = %s, want %s", c.group, got, c.want)
		}
	}
}

// Every wrong setting is a *dest.FieldError naming it.
func TestConfigValidation(t *testing.T) {
	long := strings.Repeat("a", 2100)
	for _, c := range []struct {
		settings, field, message string
	}{
		{`{}`, "url", "is required"},
		{`{"url": "  "}`, "url", "is required"},
		{`{"url": 7}`, "url", "must be a string"},
		{`{"url": "ftp://alerts.example.com/hook"}`, "url", "must be an absolute http or https URL"},
		{`{"url": "alerts.example.com/hook"}`, "url", "must be an absolute http or https URL"},
		{`{"url": "https:///hook"}`, "url", "must be an absolute http or https URL"},
		{`{"url": "https://user:pw@alerts.example.com/"}`, "url", "must not contain credentials"},
		{`{"url": "https://alerts.example.com/` + long + `"}`, "url", "must be at most 2048 characters"},
		{`{"type": "webhook", "url": "https://alerts.example.com/"}`, "type", `must be "alertmanager"`},
		{`{"url": "https://alerts.example.com/", "secret": "x"}`, "secret", "is not a known setting"},
		{`{"url": "https://alerts.example.com/", "receiver": " "}`, "receiver", "must not be blank"},
		{`{"url": "https://alerts.example.com/", "receiver": "a\u0007b"}`, "receiver", "control characters"},
		{`{"url": "https://alerts.example.com/", "bearer_token": "a\nb"}`, "bearer_token", "control characters"},
		{`{"url": "https://alerts.example.com/", "headers": ["X-A"]}`, "headers", "must be an object"},
		{`{"url": "https://alerts.example.com/", "headers": {"X-A": 1}}`, "headers", "must be an object"},
		{`{"url": "https://alerts.example.com/", "headers": {"Bad Name": "v"}}`, "headers.Bad Name", "not a valid HTTP header name"},
		{`{"url": "https://alerts.example.com/", "headers": {"content-type": "text/plain"}}`, "headers.content-type", "set by Carrier"},
		{`{"url": "https://alerts.example.com/", "headers": {"X-Webhook-Delivery-Id": "x"}}`, "headers.X-Webhook-Delivery-Id", "set by Carrier"},
		{`{"url": "https://alerts.example.com/", "headers": {"Expect": "100-continue"}}`, "headers.Expect", "hop-by-hop"},
		{`{"url": "https://alerts.example.com/", "headers": {"X-A": "a\rb"}}`, "headers.X-A", "control characters"},
		{`{"url": "https://alerts.example.com/", "bearer_token": "t", "headers": {"authorization": "Basic x"}}`, "headers.authorization", "bearer_token"},
	} {
		_, err := alertmanager.ParseConfig(json.RawMessage(c.settings))
		var ferr *dest.FieldError
		if !errors.As(err, &ferr) || ferr.Field != c.field || !strings.Contains(ferr.Message, c.message) {
			t.Errorf("ParseConfig(%s) = %v; want a field error on %s containing %q", c.settings, err, c.field, c.message)
		}
	}
	for _, ok := range []string{
		`{"url": "https://alerts.example.com/hook"}`,
		`{"type": "alertmanager", "url": "http://10.0.0.5:5001/", "receiver": "ops", "bearer_token": "t", "headers": {"X-Scope-OrgID": "7"}}`,
		`{"url": "https://alerts.example.com/", "headers": {"Authorization": "Basic dTpw"}}`,
		`{"url": "https://alerts.example.com/", "headers": null, "bearer_token": "", "receiver": null}`,
	} {
		if _, err := alertmanager.ParseConfig(json.RawMessage(ok)); err != nil {
			t.Errorf("ParseConfig(%s): %v", ok, err)
		}
	}
}

// The bearer token and the headers are never shown: not by Redact, not in the
// summary attempts record, not in an error message.
func TestRedaction(t *testing.T) {
	s := &alertmanager.Sender{}
	settings := json.RawMessage(`{"url": "https://alerts.example.com/hook", "receiver": "ops", "bearer_token": "s3cret-token", "headers": {"X-Api-Key": "k3y"}}`)
	shown := string(s.Redact(store.Subscription{Destination: settings}))
	var m map[string]any
	if err := json.Unmarshal([]byte(shown), &m); err != nil {
		t.Fatal(err)
	}
	if m["bearer_token"] != dest.Hidden || m["headers"] != dest.Hidden || m["url"] != "https://alerts.example.com/hook" || m["receiver"] != "ops" {
		t.Errorf("Redact = %s", shown)
	}
	for _, secret := range []string{"s3cret-token", "k3y"} {
		if strings.Contains(shown, secret) || strings.Contains(s.Summary(settings), secret) {
			t.Errorf("%q shown: Redact %s, Summary %s", secret, shown, s.Summary(settings))
		}
	}
	if got := s.Summary(settings); got != "alertmanager:https://alerts.example.com/hook" {
		t.Errorf("Summary = %s", got)
	}
	// Nothing to hide: nothing hidden.
	plain := string(s.Redact(store.Subscription{Destination: json.RawMessage(`{"url": "https://a.example/", "bearer_token": "", "headers": {}}`)}))
	if strings.Contains(plain, dest.Hidden) {
		t.Errorf("Redact without secrets = %s", plain)
	}
	if secrets, recipient := s.SecretSettings(); len(secrets) != 2 || len(recipient) != 1 || recipient[0] != "url" {
		t.Errorf("SecretSettings = %v, %v", secrets, recipient)
	}

	// A network error does not repeat the token either.
	res := (&alertmanager.Sender{Client: loopbackClient()}).Send(context.Background(), store.Job{
		Event:        store.Event{ID: "e", Type: "x.y", CreatedAt: time.Now()},
		Subscription: store.Subscription{Destination: json.RawMessage(`{"url": "http://127.0.0.1:1/s3cret-token", "bearer_token": "s3cret-token"}`), TimeoutSeconds: 5},
	}, time.Now())
	if res.Delivered || strings.Contains(res.ErrorMessage, "s3cret-token") {
		t.Errorf("unreachable receiver: %+v", res)
	}
}

// Answers are classified as the webhook kind classifies them.
func TestRetryClassification(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		header     map[string]string
		delivered  bool
		retryable  bool
		disable    bool
		code       string
		retryAfter time.Duration
	}{
		{name: "200", status: 200, delivered: true},
		{name: "204", status: 204, delivered: true},
		{name: "500", status: 500, retryable: true, code: "http_500"},
		{name: "503 retry-after", status: 503, header: map[string]string{"Retry-After": "30"}, retryable: true, code: "http_503", retryAfter: 30 * time.Second},
		{name: "429 retry-after", status: 429, header: map[string]string{"Retry-After": "7"}, retryable: true, code: "http_429", retryAfter: 7 * time.Second},
		{name: "429 capped", status: 429, header: map[string]string{"Retry-After": "86400"}, retryable: true, code: "http_429", retryAfter: time.Minute},
		{name: "408", status: 408, retryable: true, code: "http_408"},
		{name: "400", status: 400, code: "http_400"},
		{name: "401", status: 401, code: "http_401"},
		{name: "404", status: 404, code: "http_404"},
		{name: "410", status: 410, disable: true, code: "endpoint_gone"},
		{name: "302", status: 302, header: map[string]string{"Location": "https://elsewhere.example/"}, code: "redirect_not_followed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, got := receiver(t, func(w http.ResponseWriter) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, `{"error":"answer `+c.name+`"}`)
			})
			s := &alertmanager.Sender{Client: loopbackClient(), RetryAfterCap: time.Minute}
			job := alertJob(t, alert.EventFiring, alert.EventData{AlertID: "a", Rule: "R", Severity: "warning", StartsAt: time.Now()}, time.Now(), settingsFor(url, ""))
			res := s.Send(context.Background(), job, time.Now())
			next(t, got)
			if res.Delivered != c.delivered || res.Retryable != c.retryable || res.Disable != c.disable ||
				res.ErrorCode != c.code || res.StatusCode != c.status || res.RetryAfter != c.retryAfter {
				t.Errorf("result %+v; want delivered %v retryable %v disable %v code %q retry after %s",
					res, c.delivered, c.retryable, c.disable, c.code, c.retryAfter)
			}
			if c.status != http.StatusNoContent && !strings.Contains(res.ResponseBody, "answer "+c.name) {
				t.Errorf("response body %q not recorded", res.ResponseBody)
			}
		})
	}
}

// The guarded client refuses loopback and private addresses at dial time
// unless private networks are allowed, as for a webhook; a refusal is final.
func TestPrivateAddressRefusedAtDial(t *testing.T) {
	url, got := receiver(t, nil)
	job := alertJob(t, alert.EventFiring, alert.EventData{AlertID: "a", Rule: "R", StartsAt: time.Now()}, time.Now(), settingsFor(url, ""))
	res := (&alertmanager.Sender{Client: (&netguard.Guard{}).Client(0)}).Send(context.Background(), job, time.Now())
	if res.Delivered || res.Retryable || res.ErrorCode != "ssrf_blocked" {
		t.Errorf("strict guard: %+v, want a final ssrf_blocked", res)
	}
	select {
	case <-got:
		t.Error("the strict guard let a request reach the loopback receiver")
	default:
	}
	if res := (&alertmanager.Sender{Client: loopbackClient()}).Send(context.Background(), job, time.Now()); !res.Delivered {
		t.Errorf("private networks allowed: %+v", res)
	}
	next(t, got)
}

// Settings stored before a rule changed, or never checked, fail the attempt
// without a retry rather than being sent.
func TestInvalidStoredSettings(t *testing.T) {
	res := (&alertmanager.Sender{Client: loopbackClient()}).Send(context.Background(), store.Job{
		Subscription: store.Subscription{Destination: json.RawMessage(`{"url": "gopher://x"}`)},
	}, time.Now())
	if res.Delivered || res.Retryable || res.ErrorCode != "invalid_destination" {
		t.Errorf("invalid settings: %+v", res)
	}
	var _ dispatch.Sender = (*alertmanager.Sender)(nil)
}
