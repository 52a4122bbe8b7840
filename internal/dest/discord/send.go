package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"carrier/internal/backoff"
	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = dest.ResponseLimit

// MaxRetryAfter caps the pause a 429 may ask for.
const MaxRetryAfter = time.Hour

// DefaultRetryAfter is the pause after a 429 that names none.
const DefaultRetryAfter = 5 * time.Second

// Sender delivers to Discord webhooks. Client should be Carrier's SSRF-guarded
// client (netguard), which does not follow redirects.
type Sender struct {
	Client *http.Client
	// Compatible are the hosts of Discord-compatible servers, whose webhook URLs
	// need not have Discord's shape (CARRIER_CHAT_COMPATIBLE_HOSTS). Settings
	// are checked again when sent, so this must be what the API checks with.
	Compatible dest.CompatibleHosts
	// Renders is each project's share of template rendering time (nil: no limit).
	Renders *dest.RenderShare

	once    sync.Once
	service *dest.ChatService[Config]
}

// cacheSize is how many parsed settings a Sender keeps.
const cacheSize = 512

// chat is how the Sender talks to Discord, made on first use (it parses
// settings with the Sender's compatible hosts).
func (s *Sender) chat() *dest.ChatService[Config] {
	s.once.Do(func() {
		s.service = &dest.ChatService[Config]{
			Name:        Kind,
			ContentType: "application/json",
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
// subscription's webhook URL, then classifies Discord's answer.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	return s.chat().Send(ctx, s.Client, job, at)
}

// prepare renders job's event for the webhook URL of cfg.
func prepare(budget *dest.Budget, cfg Config, job store.Job) (url, secret string, body []byte) {
	cfg.Subscription = job.Subscription.Name
	return cfg.WebhookURL, cfg.secret, renderIn(budget, cfg, job.Event, job.Delivery.ID)
}

// apiError is Discord's error body.
type apiError struct {
	Message    string          `json:"message"`
	Code       int             `json:"code"`
	Errors     json.RawMessage `json:"errors"`
	RetryAfter *float64        `json:"retry_after"`
	Global     bool            `json:"global"`
}

func classify(resp *http.Response, body []byte, now time.Time) dispatch.Result {
	code := resp.StatusCode
	res := dispatch.Result{StatusCode: code}
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	switch {
	case code == http.StatusTooManyRequests:
		res.Retryable = true
		res.Throttled = true
		res.RetryAfter = rateLimitWait(resp.Header, ae.RetryAfter, now)
		res.ErrorCode = "rate_limited"
		scope := "rate limited"
		if ae.Global || strings.EqualFold(resp.Header.Get("X-RateLimit-Global"), "true") {
			scope = "globally rate limited"
		}
		res.ErrorMessage = fmt.Sprintf("discord %s; retry after %s", scope, res.RetryAfter)
		return res
	case code == http.StatusNotFound:
		res.Disable = true
		res.ErrorCode = "webhook_deleted"
		res.ErrorMessage = "discord answered 404" + describe(ae) + "; the webhook was deleted, so the subscription is deactivated"
		return res
	case code == http.StatusGone:
		res.Disable = true
		res.ErrorCode = "endpoint_gone"
		res.ErrorMessage = "discord answered 410 Gone; the subscription is deactivated"
		return res
	}
	return dest.ClassifyAnswer(resp, now, Kind, describe(ae), MaxRetryAfter)
}

// describe renders Discord's error body: message, code and each invalid
// field, such as ": Invalid Form Body (50035): embeds.0.description: Must
// be 4096 or fewer in length.".
func describe(ae apiError) string {
	if ae.Message == "" {
		return ""
	}
	s := ": " + ae.Message
	if ae.Code != 0 {
		s += " (" + strconv.Itoa(ae.Code) + ")"
	}
	var problems []string
	flattenErrors("", ae.Errors, &problems)
	sort.Strings(problems)
	if len(problems) > 0 {
		s += ": " + strings.Join(problems, "; ")
	}
	return s
}

// flattenErrors walks Discord's nested {"errors": {"embeds": {"0": {"title":
// {"_errors": [{"code", "message"}]}}}}} into "embeds.0.title: message".
func flattenErrors(path string, raw json.RawMessage, out *[]string) {
	if len(raw) == 0 || len(*out) >= 20 {
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return
	}
	for k, v := range obj {
		if k == "_errors" {
			var errs []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if json.Unmarshal(v, &errs) == nil {
				for _, e := range errs {
					p := path
					if p == "" {
						p = "body"
					}
					*out = append(*out, p+": "+e.Message)
				}
			}
			continue
		}
		p := k
		if path != "" {
			p = path + "." + k
		}
		flattenErrors(p, v, out)
	}
}

// rateLimitWait is the pause a 429 asks for: the larger of the Retry-After
// and X-RateLimit-Reset-After headers (both seconds, possibly fractional),
// else the body's retry_after (seconds in API v8 and later), else
// DefaultRetryAfter; capped at MaxRetryAfter. The headers win over the body
// because unversioned (v6) endpoints answered retry_after in milliseconds.
func rateLimitWait(h http.Header, bodySeconds *float64, now time.Time) time.Duration {
	var d time.Duration
	found := false
	for _, name := range []string{"Retry-After", "X-RateLimit-Reset-After"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		if secs, ok := seconds(v); ok {
			d, found = max(d, secs), true
		} else if name == "Retry-After" {
			if hd, ok := backoff.RetryAfter(v, now, MaxRetryAfter); ok {
				d, found = max(d, hd), true
			}
		}
	}
	if !found && bodySeconds != nil {
		if secs, ok := seconds(strconv.FormatFloat(*bodySeconds, 'f', -1, 64)); ok {
			d, found = secs, true
		}
	}
	if !found {
		d = DefaultRetryAfter
	}
	return min(d, MaxRetryAfter)
}

// seconds parses a non-negative number of seconds, rounding up to the
// millisecond.
func seconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return 0, false
	}
	if math.IsInf(f, 1) || f > MaxRetryAfter.Seconds() {
		return MaxRetryAfter, true
	}
	return time.Duration(math.Ceil(f*1000)) * time.Millisecond, true
}
