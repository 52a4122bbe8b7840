// Package pingback sends a task's result to the pingback URL its 2captcha
// client named in in.php, the way 2captcha does: a POST with the form fields
// id (the task id in.php answered) and code (the answer, or an error code
// such as ERROR_CAPTCHA_UNSOLVABLE), as application/x-www-form-urlencoded.
// An endpoint that answers the POST with 405 Method Not Allowed is asked
// again at once with GET and the same fields in the query, the form
// CaptchaAI uses and that GET-only handlers expect.
//
// Pingbacks travel as deliveries of one subscription per pingback host (kind
// "pingback", made by the Registry), so they are retried, SSRF-checked at
// dial time, recorded with every attempt, listed and replayable like any
// other delivery, and a failing host holds back only its own pingbacks. The
// subscription matches task events by their pingback_host attribute; the
// event's pingback attribute is the URL.
package pingback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/provider"
	"carrier/internal/store"
)

// Kind is the destination kind of pingback subscriptions.
const Kind = "pingback"

// Event attributes of task events whose task has a pingback URL.
const (
	AttrURL  = "pingback"      // the URL, as in.php was given it
	AttrHost = "pingback_host" // its host[:port], lower case: what the host's subscription matches
)

// MaxURLLength is the longest pingback URL accepted.
const MaxURLLength = 2048

// Config is the settings of a pingback subscription.
type Config struct {
	// Host is the host[:port] whose pingbacks the subscription sends.
	Host string `json:"host"`
}

// ParseConfig reads and checks a pingback subscription's settings.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	obj, err := dest.DecodeObject(raw, "", []string{"host"}, Kind)
	if err != nil {
		return c, err
	}
	if err := dest.DecodeStrings(obj, dest.StringSetting{Key: "host", Dst: &c.Host}); err != nil {
		return c, err
	}
	if c.Host == "" {
		return c, &dest.FieldError{Field: "host", Message: "is required (the host[:port] of the pingback URLs)"}
	}
	if c.Host != strings.ToLower(c.Host) || strings.ContainsAny(c.Host, "/?#@ ") {
		return c, &dest.FieldError{Field: "host", Message: "must be a lower-case host or host:port, such as mysite.com or 203.0.113.7:8080"}
	}
	return c, nil
}

// Redact shows the settings as they are: they hold no secret.
func Redact(raw json.RawMessage) json.RawMessage { return raw }

// ParseURL checks a pingback URL and returns it parsed: an absolute http or
// https URL with a host, at most MaxURLLength characters. Whether its address
// may be reached is the SSRF guard's decision, not this one.
func ParseURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("must be an absolute http or https URL without credentials, such as https://mysite.com/pingback")
	}
	return u, nil
}

// HostOf is the subscription key of a pingback URL: its host[:port] in lower case.
func HostOf(u *url.URL) string { return strings.ToLower(u.Host) }

// Payload is what a pingback carries.
type Payload struct {
	ID   string // the task id, as in.php answered it
	Code string // the answer, or an error code
}

// payloadOf reads a task event's data: the task id and the answer a 2captcha
// client expects for its status.
func payloadOf(e store.Event) (Payload, error) {
	var d struct {
		TaskID    string `json:"task_id"`
		Status    string `json:"status"`
		Solution  string `json:"solution"`
		ErrorCode string `json:"error_code"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil || d.TaskID == "" {
		return Payload{}, fmt.Errorf("event %s of type %s is not a task result", e.ID, e.Type)
	}
	code, _ := LegacyAnswer(d.Status, d.Solution, d.ErrorCode)
	if code == "" {
		return Payload{}, fmt.Errorf("task %s is %s, not decided", d.TaskID, d.Status)
	}
	return Payload{ID: d.TaskID, Code: code}, nil
}

// LegacyAnswer is what the 2captcha API says of a task in a status: the
// answer (solved true), an error code (ERROR_CAPTCHA_UNSOLVABLE unless the
// provider gave a more precise ERROR_… code), CAPCHA_NOT_READY while it is
// still being solved, or "" for a status it does not know.
func LegacyAnswer(status, solution, errorCode string) (answer string, solved bool) {
	switch status {
	case store.TaskSolved:
		return solution, true
	case store.TaskFailed:
		if strings.HasPrefix(errorCode, "ERROR_") {
			return errorCode, false
		}
		return "ERROR_CAPTCHA_UNSOLVABLE", false
	case store.TaskExpired:
		return "ERROR_CAPTCHA_UNSOLVABLE", false
	case store.TaskPending, store.TaskSubmitted:
		return provider.CodeNotReady, false
	}
	return "", false
}

// Sender sends pingbacks.
type Sender struct {
	// Client is Carrier's SSRF-guarded client.
	Client *http.Client
}

// Send makes one attempt: the POST, and the GET when the POST is refused with 405.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	raw := job.Event.Attributes[AttrURL]
	u, err := ParseURL(raw)
	if err != nil {
		return dispatch.Result{URL: raw, ErrorCode: "invalid_url", ErrorMessage: "pingback URL " + err.Error()}
	}
	cfg, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{URL: raw, ErrorCode: "invalid_settings", ErrorMessage: err.Error()}
	}
	if HostOf(u) != cfg.Host {
		// The subscription of one host never sends to another, whatever an event says.
		return dispatch.Result{URL: raw, ErrorCode: "host_mismatch",
			ErrorMessage: fmt.Sprintf("pingback URL host %s is not this subscription's host %s", HostOf(u), cfg.Host)}
	}
	p, err := payloadOf(job.Event)
	if err != nil {
		return dispatch.Result{URL: raw, ErrorCode: "payload_error", ErrorMessage: err.Error()}
	}
	form := url.Values{"id": {p.ID}, "code": {p.Code}}
	header := http.Header{}
	header.Set("User-Agent", dest.UserAgent)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	timeout := time.Duration(job.Subscription.TimeoutSeconds) * time.Second
	classify := func(resp *http.Response, _ []byte) dispatch.Result {
		return dest.ClassifyAnswer(resp, at, "pingback endpoint", "", time.Hour)
	}

	post := header.Clone()
	post.Set("Content-Type", "application/x-www-form-urlencoded")
	res := dest.Attempt(ctx, s.Client, dest.Post{URL: raw, Body: []byte(form.Encode()), Header: post, Timeout: timeout}, classify)
	res.URL = raw
	if res.StatusCode != http.StatusMethodNotAllowed {
		return res
	}
	q := u.Query()
	q.Set("id", p.ID)
	q.Set("code", p.Code)
	get := *u
	get.RawQuery = q.Encode()
	res = dest.Attempt(ctx, s.Client, dest.Post{Method: http.MethodGet, URL: get.String(), Header: header, Timeout: timeout}, classify)
	res.URL = get.String()
	return res
}
