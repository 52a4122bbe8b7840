// Package webhook sends deliveries to HTTP endpoints: the event as JSON,
// signed with Standard Webhooks headers and an X-Carrier-Signature, through an
// SSRF-safe client, and classifies the answer for the retry policy.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"carrier/internal/backoff"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/sign"
	"carrier/internal/store"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = 4 << 10

// TimeFormat is the format of times in payloads and X-Webhook-Timestamp.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// UserAgent identifies Carrier to endpoints.
const UserAgent = "Carrier-Webhooks/1.0"

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
	timeout := time.Duration(sub.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_url", ErrorMessage: err.Error()}
	}
	for k, v := range sub.Headers {
		if !IsReserved(k) {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	sign.Apply(req.Header, job.Delivery.ID, at, body, keys...)
	req.Header.Set("X-Webhook-Event", job.Event.Type)
	req.Header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	req.Header.Set("X-Webhook-Timestamp", at.UTC().Format(TimeFormat))

	start := time.Now()
	resp, err := s.Client.Do(req)
	if err != nil {
		res := classifyError(err)
		res.Duration = time.Since(start)
		return res
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	res := classifyStatus(resp, at, s.RetryAfterCap)
	res.Duration = time.Since(start)
	res.ResponseBody = recordable(head)
	res.ErrorMessage = recordable([]byte(res.ErrorMessage))
	return res
}

// recordable turns what an endpoint sent into text both stores can hold:
// valid UTF-8 without NUL bytes (PostgreSQL text rejects both, and one bad
// attempt would fail the whole batch it is recorded in). Invalid bytes (such
// as a rune cut by ResponseLimit) and NULs become U+FFFD, and the result is
// trimmed back to at most ResponseLimit bytes.
func recordable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	for len(s) > ResponseLimit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func classifyStatus(resp *http.Response, now time.Time, retryAfterCap time.Duration) dispatch.Result {
	code := resp.StatusCode
	res := dispatch.Result{StatusCode: code}
	switch {
	case code >= 200 && code < 300:
		res.Delivered = true
		return res
	case code == http.StatusGone:
		res.Disable = true
		res.ErrorCode = "endpoint_gone"
		res.ErrorMessage = "endpoint answered 410 Gone; the webhook is deactivated"
		return res
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		res.Retryable = true
		if d, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), now, retryAfterCap); ok {
			res.RetryAfter = d
		}
	case code >= 300 && code < 400:
		res.ErrorCode = "redirect_not_followed"
		res.ErrorMessage = fmt.Sprintf("endpoint answered %d redirect to %q; redirects are not followed", code, resp.Header.Get("Location"))
		return res
	}
	res.ErrorCode = "http_" + strconv.Itoa(code)
	res.ErrorMessage = "endpoint answered " + resp.Status
	return res
}

func classifyError(err error) dispatch.Result {
	var dnsErr *net.DNSError
	switch {
	case netguard.IsBlocked(err):
		return dispatch.Result{ErrorCode: "ssrf_blocked", ErrorMessage: trimURLError(err)}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return dispatch.Result{Retryable: true, ErrorCode: "timeout", ErrorMessage: "no answer within the timeout"}
	case errors.As(err, &dnsErr):
		return dispatch.Result{Retryable: true, ErrorCode: "dns_error", ErrorMessage: trimURLError(err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_refused", ErrorMessage: trimURLError(err)}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_reset", ErrorMessage: trimURLError(err)}
	case errors.Is(err, context.Canceled):
		return dispatch.Result{Retryable: true, ErrorCode: "cancelled", ErrorMessage: "attempt cancelled by shutdown"}
	default:
		return dispatch.Result{Retryable: true, ErrorCode: "network_error", ErrorMessage: trimURLError(err)}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trimURLError drops the method and URL that *url.Error repeats, keeping the cause.
func trimURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\": "); i >= 0 && strings.HasPrefix(msg, "Post \"") {
		return msg[i+3:]
	}
	return msg
}
