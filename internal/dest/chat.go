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
	// Prepare renders job's event with the settings cfg, its templates
	// under budget. It returns the webhook URL to post to, the secret part
	// of that URL (hidden from error messages) and the message body.
	Prepare func(budget *Budget, cfg C, job store.Job) (url, secret string, body []byte)
	// Classify turns the service's answer into a result; head is the start
	// of its body, as for Classifier.
	Classify func(resp *http.Response, head []byte, at time.Time) dispatch.Result
	// Renders is each project's share of rendering time (nil: no limit).
	Renders *RenderShare
}

// Send makes one attempt of job at the time at: it parses the
// subscription's settings (invalid ones fail as "invalid_destination",
// templates that break the rules as CodeTemplateError), prepares the message
// and posts it with Attempt through client (http.DefaultClient when nil),
// with Carrier's User-Agent, the X-Webhook-Delivery-Id header and the
// subscription's timeout. The timeout starts before rendering, which runs
// under a Budget ending at the earlier of TemplateTimeLimit and that
// deadline; a render the budget stops fails the attempt as
// CodeTemplateError, without a retry, and is not posted. Rendering takes
// the project's render slot first (Renders): one render of a project at a
// time, and none, the attempt put off, while the project has used up its
// share of rendering time.
func (c *ChatService[C]) Send(ctx context.Context, client *http.Client, job store.Job, at time.Time) dispatch.Result {
	cfg, err := c.Configs.Get(job.Subscription.Destination)
	if err != nil {
		code := "invalid_destination"
		if IsTemplateError(err) {
			code = CodeTemplateError
		}
		return dispatch.Result{ErrorCode: code, ErrorMessage: c.Name + " destination: " + err.Error()}
	}
	render, putOff := c.Renders.Acquire(ctx, job.Delivery.ProjectID)
	if putOff != nil {
		return *putOff
	}
	timeout := time.Duration(job.Subscription.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	attemptCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	budget := NewBudget(attemptCtx, TemplateTimeLimit)
	url, secret, body := c.Prepare(budget, cfg, job)
	render(time.Since(start))
	if err := budget.Err(); err != nil {
		if ctx.Err() != nil {
			// Cut off by shutdown, not by the template: sent again later.
			res := ClassifyNetError(ctx.Err())
			res.Duration = time.Since(start)
			return res
		}
		return dispatch.Result{ErrorCode: CodeTemplateError, ErrorMessage: c.Name + " destination: " + err.Error(), Duration: time.Since(start)}
	}
	header := http.Header{}
	header.Set("Content-Type", c.ContentType)
	header.Set("User-Agent", UserAgent)
	header.Set("X-Webhook-Delivery-Id", job.Delivery.ID)
	if client == nil {
		client = http.DefaultClient
	}
	return Attempt(attemptCtx, client, Post{
		URL:     strings.TrimSpace(url),
		Body:    body,
		Header:  header,
		Timeout: timeout - time.Since(start), // what rendering left of it
		Secret:  secret,
	}, func(resp *http.Response, head []byte) dispatch.Result {
		return c.Classify(resp, head, at)
	})
}
