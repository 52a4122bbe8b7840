package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carrier/internal/backoff"
	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = dest.ResponseLimit

// UserAgent identifies Carrier to Slack.
const UserAgent = dest.UserAgent

// DefaultTimeout is the attempt timeout when the subscription sets none.
const DefaultTimeout = dest.DefaultTimeout

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

// configCache keeps parsed settings, so templates are not compiled again
// for every attempt.
var configCache = dest.NewConfigCache(cacheSize, ParseConfig)

const cacheSize = 512

// Send makes one attempt: it renders the event (Render) and posts it to the
// subscription's webhook URL, then classifies Slack's answer.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	sub := job.Subscription
	cfg, err := configCache.Get(sub.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: "slack destination: " + err.Error()}
	}
	cfg.Subscription = sub.Name
	header := http.Header{}
	header.Set("Content-Type", "application/json; charset=utf-8")
	header.Set("User-Agent", UserAgent)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	return dest.Attempt(ctx, client, dest.Post{
		URL:     strings.TrimSpace(cfg.WebhookURL),
		Body:    Render(cfg, job.Event, job.Delivery.ID),
		Header:  header,
		Timeout: time.Duration(sub.TimeoutSeconds) * time.Second,
		Secret:  secretOf(cfg.WebhookURL),
	}, func(resp *http.Response, head []byte) dispatch.Result {
		return classify(resp, head, at)
	})
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
