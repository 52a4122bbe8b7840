package dest

import (
	"context"
	"net/http"
	"strings"
	"time"

	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// ChatService is what sending to a chat service's incoming webhooks (such as
// Discord's or Slack's) needs to know of that service; C is its parsed
// destination settings.
type ChatService[C any] struct {
	// Name names the service in errors, such as "discord".
	Name string
	// ContentType is the Content-Type of the posted message.
	ContentType string
	// Configs parses (and keeps) the subscriptions' destination settings.
	Configs *ConfigCache[C]
	// Prepare renders job's event with the settings cfg. It returns the
	// webhook URL to post to, the secret part of that URL (hidden from
	// error messages) and the message body.
	Prepare func(cfg C, job store.Job) (url, secret string, body []byte)
	// Classify turns the service's answer into a result; head is the start
	// of its body, as for Classifier.
	Classify func(resp *http.Response, head []byte, at time.Time) dispatch.Result
}

// Send makes one attempt of job at the time at: it parses the
// subscription's settings (invalid ones fail as "invalid_destination"),
// prepares the message and posts it with Attempt through client
// (http.DefaultClient when nil), with Carrier's User-Agent, the
// X-Webhook-Delivery-Id header and the subscription's timeout.
func (c *ChatService[C]) Send(ctx context.Context, client *http.Client, job store.Job, at time.Time) dispatch.Result {
	cfg, err := c.Configs.Get(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: c.Name + " destination: " + err.Error()}
	}
	url, secret, body := c.Prepare(cfg, job)
	header := http.Header{}
	header.Set("Content-Type", c.ContentType)
	header.Set("User-Agent", UserAgent)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	if client == nil {
		client = http.DefaultClient
	}
	return Attempt(ctx, client, Post{
		URL:     strings.TrimSpace(url),
		Body:    body,
		Header:  header,
		Timeout: time.Duration(job.Subscription.TimeoutSeconds) * time.Second,
		Secret:  secret,
	}, func(resp *http.Response, head []byte) dispatch.Result {
		return c.Classify(resp, head, at)
	})
}
