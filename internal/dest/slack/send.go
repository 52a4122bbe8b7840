package slack

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
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"carrier/internal/backoff"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = 4 << 10

// UserAgent identifies Carrier to Slack.
const UserAgent = "Carrier-Webhooks/1.0"

// DefaultTimeout is the attempt timeout when the subscription sets none.
const DefaultTimeout = 10 * time.Second

// MaxRetryAfter caps the pause a 429 may ask for.
const MaxRetryAfter = time.Hour

// DefaultRetryAfter is the pause after a 429 without a Retry-After (Slack
// allows about one message per second per webhook).
const DefaultRetryAfter = 5 * time.Second

// disablingErrors are Slack's answers that mean the webhook will never work
// again: it was removed, its channel or workspace is gone or archived, or
// its token was revoked.
var disablingErrors = map[string]bool{
	"no_service":          true,
	"no_team":             true,
	"channel_not_found":   true,
	"channel_is_archived": true,
	"team_disabled":       true,
	"invalid_token":       true,
	"token_revoked":       true,
	"token_expired":       true,
}

// Sender delivers to Slack incoming webhooks. Client should be Carrier's
// SSRF-guarded client (netguard), which does not follow redirects.
type Sender struct {
	Client *http.Client
}

// configCache keeps parsed settings by their JSON, so templates are not
// compiled again for every attempt. It is emptied when it grows past
// cacheSize.
var configCache struct {
	sync.Mutex
	m map[string]Config
}

const cacheSize = 512

func cachedConfig(raw json.RawMessage) (Config, error) {
	key := string(raw)
	configCache.Lock()
	cfg, ok := configCache.m[key]
	configCache.Unlock()
	if ok {
		return cfg, nil
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return cfg, err
	}
	configCache.Lock()
	if configCache.m == nil || len(configCache.m) >= cacheSize {
		configCache.m = make(map[string]Config)
	}
	configCache.m[key] = cfg
	configCache.Unlock()
	return cfg, nil
}

// Send makes one attempt: it renders the event (Render) and posts it to the
// subscription's webhook URL, then classifies Slack's answer.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	sub := job.Subscription
	cfg, err := cachedConfig(sub.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: "slack destination: " + err.Error()}
	}
	cfg.Subscription = sub.Name
	body := Render(cfg, job.Event, job.Delivery.ID)
	secret := secretOf(cfg.WebhookURL)

	timeout := time.Duration(sub.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSpace(cfg.WebhookURL), bytes.NewReader(body))
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_url", ErrorMessage: hide(err.Error(), secret)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)

	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res := classifyError(err)
		res.ErrorMessage = hide(res.ErrorMessage, secret)
		res.Duration = time.Since(start)
		return res
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	res := classify(resp, head, at)
	res.Duration = time.Since(start)
	res.ResponseBody = recordable(head)
	res.ErrorMessage = hide(recordable([]byte(res.ErrorMessage)), secret)
	return res
}

func hide(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "***")
}

// slackError is the error string Slack answers with (plain text, or
// {"ok":false,"error":"…"} from some fronts).
func slackError(body []byte) string {
	b := bytes.TrimSpace(body)
	var j struct {
		Error string `json:"error"`
	}
	if len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &j) == nil {
		return j.Error
	}
	if len(b) > 100 || bytes.ContainsAny(b, " <\n") {
		return ""
	}
	return string(b)
}

func classify(resp *http.Response, body []byte, now time.Time) dispatch.Result {
	code := resp.StatusCode
	res := dispatch.Result{StatusCode: code}
	serr := slackError(body)
	said := ""
	if serr != "" {
		said = ": " + serr
	}
	switch {
	case code >= 200 && code < 300:
		res.Delivered = true
		return res
	case code == http.StatusTooManyRequests:
		res.Retryable = true
		res.Throttled = true
		res.RetryAfter = DefaultRetryAfter
		if d, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), now, MaxRetryAfter); ok {
			res.RetryAfter = d
		}
		res.ErrorCode = "rate_limited"
		res.ErrorMessage = fmt.Sprintf("slack rate limited; retry after %s", res.RetryAfter)
		return res
	case code == http.StatusNotFound || code == http.StatusGone || (code >= 400 && code < 500 && disablingErrors[serr]):
		res.Disable = true
		res.ErrorCode = "webhook_gone"
		if disablingErrors[serr] {
			res.ErrorCode = serr
		}
		res.ErrorMessage = "slack answered " + resp.Status + said + "; the webhook no longer works, so the subscription is deactivated"
		return res
	case code == http.StatusRequestTimeout || code >= 500:
		res.Retryable = true
		if d, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), now, MaxRetryAfter); ok {
			res.RetryAfter = d
		}
	case code >= 300 && code < 400:
		res.ErrorCode = "redirect_not_followed"
		res.ErrorMessage = fmt.Sprintf("slack answered %d redirect; redirects are not followed", code)
		return res
	}
	res.ErrorCode = "http_" + strconv.Itoa(code)
	res.ErrorMessage = "slack answered " + resp.Status + said
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
		return dispatch.Result{Retryable: true, ErrorCode: "cancelled", ErrorMessage: "attempt cancelled"}
	default:
		return dispatch.Result{Retryable: true, ErrorCode: "network_error", ErrorMessage: trimURLError(err)}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trimURLError drops the method and URL that *url.Error repeats (the URL
// holds the webhook secret), keeping the cause.
func trimURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\": "); i >= 0 && strings.HasPrefix(msg, "Post \"") {
		return msg[i+3:]
	}
	return msg
}

// recordable makes a response text both stores can hold: valid UTF-8
// without NUL bytes, at most ResponseLimit bytes.
func recordable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	for len(s) > ResponseLimit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
