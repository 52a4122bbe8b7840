// Package webhook sends deliveries to HTTP endpoints: the event as JSON,
// signed with Standard Webhooks headers and an X-Carrier-Signature, through an
// SSRF-safe client, and classifies the answer for the retry policy.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/sign"
	"carrier/internal/store"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = dest.ResponseLimit

// TimeFormat is the format of times in payloads and X-Webhook-Timestamp.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// UserAgent identifies Carrier to endpoints.
const UserAgent = dest.UserAgent

// Reserved are the headers Carrier sets itself; custom headers cannot use them.
var Reserved = []string{
	"Content-Type", "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature",
	"X-Carrier-Signature", "X-Webhook-Event", "X-Webhook-Delivery-Id", "X-Webhook-Timestamp",
}

// IsReserved reports whether a header name is one Carrier sets itself.
func IsReserved(name string) bool {
	c := http.CanonicalHeaderKey(name)
	for _, r := range Reserved {
		if c == r {
			return true
		}
	}
	return false
}

// Forbidden are header names a subscription may not set although Carrier
// does not set them: hop-by-hop headers, and headers that change how the
// request is framed, routed or answered (Expect makes the endpoint answer
// 100 Continue, Trailer and TE announce what is never sent, Upgrade and
// Connection switch protocols or drop headers, Proxy-* speak to proxies).
var Forbidden = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect", "Host", "Content-Length", "Content-Encoding",
}

// IsForbidden reports whether a header name is one of Forbidden.
func IsForbidden(name string) bool {
	c := http.CanonicalHeaderKey(name)
	for _, f := range Forbidden {
		if c == f {
			return true
		}
	}
	return false
}

// CheckHeaderValue refuses a custom header value that no request could
// carry: control characters (CR, LF, NUL and the rest of C0 but tab, and
// DEL) would otherwise be accepted when saved and fail every attempt.
func CheckHeaderValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("must not contain control characters (found %q at byte %d)", c, i)
		}
	}
	return nil
}

// Payload is the body of every webhook request (the Standard Webhooks shape).
type Payload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Subject   string          `json:"subject,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// Body renders an event as the exact bytes that are sent and signed.
func Body(e store.Event) ([]byte, error) {
	return json.Marshal(Payload{ID: e.ID, Type: e.Type, Timestamp: e.CreatedAt.UTC().Format(TimeFormat), Subject: e.Subject, Data: e.Data})
}

// SigningKeys returns the keys that sign a subscription's requests at now:
// the current secret, then the previous one while its rotation overlap lasts.
func SigningKeys(sub store.Subscription, now time.Time) ([][]byte, error) {
	cur, err := sign.DecodeSecret(sub.Secret)
	if err != nil {
		return nil, fmt.Errorf("signing secret: %w", err)
	}
	keys := [][]byte{cur}
	if sub.PreviousSecret != "" && sub.PreviousSecretUntil != nil && now.Before(*sub.PreviousSecretUntil) {
		if prev, err := sign.DecodeSecret(sub.PreviousSecret); err == nil {
			keys = append(keys, prev)
		}
	}
	return keys, nil
}

// Sender delivers over HTTP.
type Sender struct {
	Client *http.Client
	// RetryAfterCap bounds a Retry-After header.
	RetryAfterCap time.Duration
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	sub := job.Subscription
	body, err := Body(job.Event)
	if err != nil {
		return dispatch.Result{ErrorCode: "payload_error", ErrorMessage: err.Error()}
	}
	keys, err := SigningKeys(sub, at)
	if err != nil {
		return dispatch.Result{ErrorCode: "secret_error", ErrorMessage: err.Error()}
	}
	header := http.Header{}
	for k, v := range sub.Headers {
		// Checked when saved; skipped here too for rows saved before that.
		if !IsReserved(k) && !IsForbidden(k) && CheckHeaderValue(v) == nil {
			header.Set(k, v)
		}
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", UserAgent)
	sign.Apply(header, job.Delivery.ID, at, body, keys...)
	header.Set("X-Webhook-Event", job.Event.Type)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	header.Set("X-Webhook-Timestamp", at.UTC().Format(TimeFormat))

	res := dest.Attempt(ctx, s.Client, dest.Post{
		URL:     sub.URL,
		Body:    body,
		Header:  header,
		Timeout: time.Duration(sub.TimeoutSeconds) * time.Second,
	}, func(resp *http.Response, _ []byte) dispatch.Result {
		return classifyStatus(resp, at, s.RetryAfterCap)
	})
	if res.ErrorCode == dest.CodeCancelled {
		// A webhook attempt is cancelled only when Carrier shuts down.
		res.ErrorMessage = "attempt cancelled by shutdown"
	}
	return res
}

func classifyStatus(resp *http.Response, now time.Time, retryAfterCap time.Duration) dispatch.Result {
	code := resp.StatusCode
	res := dispatch.Result{StatusCode: code}
	switch {
	case code == http.StatusGone:
		res.Disable = true
		res.ErrorCode = "endpoint_gone"
		res.ErrorMessage = "endpoint answered 410 Gone; the webhook is deactivated"
		return res
	case code >= 300 && code < 400:
		res.ErrorCode = "redirect_not_followed"
		res.ErrorMessage = fmt.Sprintf("endpoint answered %d redirect to %q; redirects are not followed", code, resp.Header.Get("Location"))
		return res
	}
	return dest.ClassifyAnswer(resp, now, "endpoint", "", retryAfterCap)
}
