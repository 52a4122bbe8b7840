package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"carrier/internal/backoff"
	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

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
	// Compatible are the hosts of Slack-compatible servers, whose webhook URLs
	// need not have Slack's shape (CARRIER_CHAT_COMPATIBLE_HOSTS). Settings
	// are checked again when sent, so this must be what the API checks with.
	Compatible dest.CompatibleHosts
	// Renders is each project's share of template rendering time (nil: no limit).
	Renders *dest.RenderShare

	once    sync.Once
	service *dest.ChatService[Config]
}

// cacheSize is how many parsed settings a Sender keeps.
const cacheSize = 512

// chat is how the Sender talks to Slack, made on first use (it parses
// settings with the Sender's compatible hosts).
func (s *Sender) chat() *dest.ChatService[Config] {
	s.once.Do(func() {
		s.service = &dest.ChatService[Config]{
			Name:        Kind,
			ContentType: "application/json; charset=utf-8",
			Configs: dest.NewConfigCache(cacheSize, func(raw json.RawMessage) (Config, error) {
				return ParseConfig(raw, s.Compatible)
			}),
			Prepare:  prepare,
			Classify: classify,
			Renders:  s.Renders,
		}
	})
	return s.service
}

// Send makes one attempt: it renders the event (Render) and posts it to the
// subscription's webhook URL, then classifies Slack's answer.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	return s.chat().Send(ctx, s.Client, job, at)
}

// prepare renders job's event for the webhook URL of cfg.
func prepare(budget *dest.Budget, cfg Config, job store.Job) (url, secret string, body []byte) {
	cfg.Subscription = job.Subscription.Name
	return cfg.WebhookURL, cfg.secret, renderIn(budget, cfg, job.Event, job.Delivery.ID)
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
	}
	return dest.ClassifyAnswer(resp, now, Kind, said, MaxRetryAfter)
}
