package alertmanager

import (
	"context"
	"net/http"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// Sender posts Alertmanager webhook messages.
type Sender struct {
	// Client is Carrier's SSRF-guarded client (netguard), which checks every
	// address it dials and does not follow redirects.
	Client *http.Client
	// RetryAfterCap bounds the pause a Retry-After header may ask for.
	RetryAfterCap time.Duration
	// ExternalURL is Carrier's public URL (CARRIER_PUBLIC_URL), the
	// messages' externalURL and the base of their generatorURL; "" for none.
	ExternalURL string
}

// Send makes one attempt: it renders the event as an Alertmanager message
// and posts it to the subscription's URL.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	cfg, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: Kind + " destination: " + err.Error()}
	}
	body, err := Body(job, Sources{Receiver: receiver(cfg, job.Subscription), ExternalURL: strings.TrimRight(s.ExternalURL, "/")})
	if err != nil {
		return dispatch.Result{ErrorCode: "payload_error", ErrorMessage: err.Error()}
	}
	header := http.Header{}
	for k, v := range cfg.Headers {
		header.Set(k, v)
	}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", dest.UserAgent)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	if cfg.BearerToken != "" {
		header.Set("Authorization", "Bearer "+cfg.BearerToken)
	}
	res := dest.Attempt(ctx, s.Client, dest.Post{
		URL:     cfg.URL,
		Body:    body,
		Header:  header,
		Timeout: time.Duration(job.Subscription.TimeoutSeconds) * time.Second,
		Secret:  cfg.BearerToken,
	}, func(resp *http.Response, _ []byte) dispatch.Result {
		return s.classify(resp, at)
	})
	if res.ErrorCode == dest.CodeCancelled {
		// As for a webhook: an attempt is cancelled only when Carrier shuts down.
		res.ErrorMessage = "attempt cancelled by shutdown"
	}
	return res
}

// classify is the webhook's classification: 410 Gone deactivates the
// subscription, the rest is dest.ClassifyAnswer.
func (s *Sender) classify(resp *http.Response, at time.Time) dispatch.Result {
	if resp.StatusCode == http.StatusGone {
		return dispatch.Result{StatusCode: resp.StatusCode, Disable: true, ErrorCode: "endpoint_gone",
			ErrorMessage: "receiver answered 410 Gone; the subscription is deactivated"}
	}
	return dest.ClassifyAnswer(resp, at, "receiver", "", s.RetryAfterCap)
}

// receiver is the payload's receiver name for sub.
func receiver(cfg Config, sub store.Subscription) string {
	switch {
	case cfg.Receiver != "":
		return cfg.Receiver
	case sub.Name != "":
		return sub.Name
	}
	return DefaultReceiver
}
