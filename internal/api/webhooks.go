package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// hiddenSecret is what the API shows in place of a secret.
const hiddenSecret = dest.Hidden

// webhookRequest is the body of POST and PUT /v1/webhooks. Pointers tell a
// field that was sent from one that was not, for partial updates.
type webhookRequest struct {
	Name                   *string            `json:"name"`
	Description            *string            `json:"description"`
	WebhookURL             *string            `json:"webhook_url"`
	EventTypes             *[]string          `json:"event_types"`
	Scope                  *string            `json:"scope"`
	SpecificTaskIDs        *[]string          `json:"specific_task_ids"`
	TimeoutSeconds         *float64           `json:"timeout_seconds"`
	MaxRetries             *float64           `json:"max_retries"`
	RetryBackoffMultiplier *float64           `json:"retry_backoff_multiplier"`
	CustomHeaders          *map[string]string `json:"custom_headers"`
	Tags                   *[]string          `json:"tags"`
	Metadata               json.RawMessage    `json:"metadata"`
	Ordering               *string            `json:"ordering"`
	// Secret fields are refused with a clear message rather than as unknown.
	Secret        *string `json:"secret"`
	WebhookSecret *string `json:"webhook_secret"`
}

// input maps the body onto the subscription service's input.
func (req webhookRequest) input() subscription.Input {
	in := subscription.Input{API: subscription.Webhooks, Name: req.Name, Description: req.Description, URL: req.WebhookURL,
		EventTypes: req.EventTypes, Scope: req.Scope, SubjectIDs: req.SpecificTaskIDs, TimeoutSeconds: req.TimeoutSeconds,
		MaxRetries: req.MaxRetries, BackoffMultiplier: req.RetryBackoffMultiplier, Headers: req.CustomHeaders, Tags: req.Tags,
		Metadata: req.Metadata, Ordering: req.Ordering}
	switch {
	case req.WebhookSecret != nil:
		in.SecretField = "webhook_secret"
	case req.Secret != nil:
		in.SecretField = "secret"
	}
	return in
}

type webhookJSON struct {
	UUID                   string            `json:"uuid"`
	Name                   string            `json:"name"`
	Description            string            `json:"description"`
	WebhookURL             string            `json:"webhook_url"`
	WebhookSecret          string            `json:"webhook_secret"`
	EventTypes             []string          `json:"event_types"`
	Scope                  string            `json:"scope"`
	SpecificTaskIDs        []string          `json:"specific_task_ids"`
	TimeoutSeconds         int               `json:"timeout_seconds"`
	MaxRetries             int               `json:"max_retries"`
	RetryBackoffMultiplier float64           `json:"retry_backoff_multiplier"`
	CustomHeaders          map[string]string `json:"custom_headers"`
	Tags                   []string          `json:"tags"`
	Metadata               json.RawMessage   `json:"metadata"`
	Ordering               string            `json:"ordering"`
	IsActive               bool              `json:"is_active"`
	DisabledReason         string            `json:"disabled_reason,omitempty"`
	ConsecutiveFailures    int               `json:"consecutive_failures"`
	TotalDeliveries        int64             `json:"total_deliveries"`
	SuccessfulDeliveries   int64             `json:"successful_deliveries"`
	FailedDeliveries       int64             `json:"failed_deliveries"`
	LastSuccessAt          *string           `json:"last_success_at"`
	LastFailureAt          *string           `json:"last_failure_at"`
	SecretRotatedUntil     *string           `json:"previous_secret_expires_at,omitempty"`
	CreatedAt              string            `json:"created_at"`
	UpdatedAt              string            `json:"updated_at"`
}

func webhookView(sub store.Subscription) webhookJSON {
	v := webhookJSON{
		UUID: sub.ID, Name: sub.Name, Description: sub.Description, WebhookURL: sub.URL, WebhookSecret: hiddenSecret,
		EventTypes: nonNil(sub.EventTypes), Scope: sub.Scope, SpecificTaskIDs: nonNil(sub.SubjectIDs),
		TimeoutSeconds: sub.TimeoutSeconds, MaxRetries: sub.MaxRetries, RetryBackoffMultiplier: sub.BackoffMultiplier,
		CustomHeaders: hiddenHeaders(sub.Headers), Tags: nonNil(sub.Tags), Metadata: sub.Metadata, Ordering: sub.Ordering,
		IsActive: sub.Active, DisabledReason: sub.DisabledReason, ConsecutiveFailures: sub.ConsecutiveFailures,
		TotalDeliveries: sub.TotalDeliveries, SuccessfulDeliveries: sub.SuccessfulDeliveries, FailedDeliveries: sub.FailedDeliveries,
		LastSuccessAt: formatTimePtr(sub.LastSuccessAt), LastFailureAt: formatTimePtr(sub.LastFailureAt),
		CreatedAt: formatTime(sub.CreatedAt), UpdatedAt: formatTime(sub.UpdatedAt),
	}
	if len(v.Metadata) == 0 {
		v.Metadata = json.RawMessage("{}")
	}
	if sub.PreviousSecretUntil != nil && time.Now().Before(*sub.PreviousSecretUntil) {
		v.SecretRotatedUntil = formatTimePtr(sub.PreviousSecretUntil)
	}
	return v
}

// hiddenHeaders returns the names of custom headers with their values
// hidden, as secrets are: values are often the endpoint's credentials, and
// every key of the project may read the webhook.
func hiddenHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for name := range h {
		out[name] = hiddenSecret
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sub, err := s.Subscriptions.Create(r.Context(), k.ProjectID, req.input())
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, map[string]any{
		"webhook_id": sub.ID,
		"secret":     sub.Secret,
		"message":    "Webhook created successfully. Save the secret - it won't be shown again.",
	})
	return nil
}

// apiOf is the API the request's path is under: the handlers below are
// shared by /v1/webhooks and /v1/subscriptions, and each API's answers speak
// its own terms.
func apiOf(r *http.Request) subscription.API {
	if strings.HasPrefix(r.URL.Path, "/v1/webhooks/") {
		return subscription.Webhooks
	}
	return subscription.Subscriptions
}

// loadSubscription reads the subscription named in the path. Under
// /v1/webhooks only HTTP destinations exist; /v1/subscriptions shows every kind.
func (s *Server) loadSubscription(r *http.Request, k store.APIKey) (store.Subscription, error) {
	return s.Subscriptions.Get(r.Context(), k.ProjectID, r.PathValue("id"), apiOf(r))
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	subs, err := s.Subscriptions.List(r.Context(), k.ProjectID, subscription.Webhooks)
	if err != nil {
		return err
	}
	out := make([]webhookJSON, len(subs))
	for i, sub := range subs {
		out[i] = webhookView(sub)
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, webhookView(sub))
	return nil
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sub, err := s.Subscriptions.Update(r.Context(), k.ProjectID, r.PathValue("id"), req.input())
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, webhookView(sub), "message", "Webhook updated successfully")
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	api := apiOf(r)
	if err := s.Subscriptions.Delete(r.Context(), k.ProjectID, r.PathValue("id"), api); err != nil {
		return err
	}
	// webhook_id and "Webhook deleted successfully" under /v1/webhooks,
	// subscription_id and "Subscription deleted successfully" under
	// /v1/subscriptions (as its create answer names subscription_id).
	what := api.Resource()
	ok(w, http.StatusOK, map[string]any{what + "_id": r.PathValue("id"), "deleted": true},
		"message", strings.ToUpper(what[:1])+what[1:]+" deleted successfully")
	return nil
}

func (s *Server) setActive(w http.ResponseWriter, r *http.Request, k store.APIKey, active bool) error {
	api := apiOf(r)
	sub, err := s.Subscriptions.SetActive(r.Context(), k.ProjectID, r.PathValue("id"), api, active)
	if err != nil {
		return err
	}
	what, state := "Webhook", "activated"
	if !active {
		state = "deactivated"
	}
	var view any = webhookView(sub)
	if api == subscription.Subscriptions {
		what, view = "Subscription", s.subscriptionView(sub)
	}
	ok(w, http.StatusOK, view, "message", what+" "+state+" successfully")
	return nil
}

func (s *Server) activateWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	return s.setActive(w, r, k, true)
}

func (s *Server) deactivateWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	return s.setActive(w, r, k, false)
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	res, sub, err := s.Subscriptions.SendTest(r.Context(), k.ProjectID, r.PathValue("id"), apiOf(r))
	if err != nil {
		return err
	}
	msg := "Test webhook queued"
	if !sub.Active {
		msg = "Test webhook queued; it is sent when the webhook is activated"
	}
	ok(w, http.StatusAccepted, map[string]any{"event_id": res.EventID, "deliveries": res.Deliveries}, "message", msg)
	return nil
}

// rotateRequest is the body of POST …/rotate-secret.
type rotateRequest struct {
	OverlapSeconds *float64 `json:"overlap_seconds"`
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req rotateRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	sub, err := s.Subscriptions.RotateSecret(r.Context(), k.ProjectID, r.PathValue("id"), apiOf(r),
		subscription.Rotation{OverlapSeconds: req.OverlapSeconds})
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{
		"webhook_id":                 sub.ID,
		"secret":                     sub.Secret,
		"previous_secret_expires_at": formatTimePtr(sub.PreviousSecretUntil),
	}, "message", "Secret rotated. Save the new secret - it won't be shown again. The previous secret keeps signing until previous_secret_expires_at.")
	return nil
}

// recoverRequest is the body of POST …/recover.
type recoverRequest struct {
	From       *string  `json:"from"`
	To         *string  `json:"to"`
	EventTypes []string `json:"event_types"`
}

func (s *Server) recoverWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req recoverRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	// Times are read here; the service requires from (so to is read only
	// with it, and a missing from is what a body without one is told).
	win := subscription.Window{EventTypes: req.EventTypes}
	if req.From != nil {
		from, err := time.Parse(time.RFC3339Nano, *req.From)
		if err != nil {
			return invalid("from", "must be an RFC 3339 time such as 2026-01-27T10:00:00Z")
		}
		win.From = &from
		if req.To != nil {
			to, err := time.Parse(time.RFC3339Nano, *req.To)
			if err != nil {
				return invalid("to", "must be an RFC 3339 time such as 2026-01-27T10:00:00Z")
			}
			win.To = &to
		}
	}
	id := r.PathValue("id")
	n, err := s.Subscriptions.Recover(r.Context(), k.ProjectID, id, apiOf(r), win)
	if err != nil {
		return err
	}
	ok(w, http.StatusAccepted, map[string]any{"webhook_id": id, "recovered": n}, "message", fmt.Sprintf("%d failed deliveries queued for replay", n))
	return nil
}

// --- deliveries ---

type deliveryJSON struct {
	UUID               string  `json:"uuid"`
	WebhookID          string  `json:"webhookSubscriptionUuid"`
	EventID            string  `json:"event_id"`
	EventType          string  `json:"eventType"`
	Status             string  `json:"status"`
	AttemptNumber      int     `json:"attempt_number"`
	RequestURL         string  `json:"request_url,omitempty"`
	RequestMethod      string  `json:"request_method"`
	ResponseStatus     *int    `json:"response_status"`
	ResponseDurationMS *int64  `json:"response_duration_ms"`
	ErrorMessage       string  `json:"error_message,omitempty"`
	ErrorCode          string  `json:"error_code,omitempty"`
	NextAttemptAt      *string `json:"next_attempt_at,omitempty"`
	CreatedAt          string  `json:"created_at"`
	DeliveredAt        *string `json:"delivered_at"`
}

type attemptJSON struct {
	Number       int    `json:"attempt_number"`
	URL          string `json:"request_url"`
	StatusCode   *int   `json:"response_status"`
	DurationMS   int64  `json:"response_duration_ms"`
	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	ResponseBody string `json:"response_body,omitempty"`
	CreatedAt    string `json:"created_at"`
}

func deliveryView(d store.Delivery) deliveryJSON {
	v := deliveryJSON{
		UUID: d.ID, WebhookID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType, Status: d.State,
		AttemptNumber: d.Attempts, RequestURL: d.URL, RequestMethod: "POST", ErrorMessage: d.LastError, ErrorCode: d.LastErrorCode,
		CreatedAt: formatTime(d.CreatedAt), DeliveredAt: formatTimePtr(d.DeliveredAt),
	}
	if d.Attempts > 0 {
		if d.LastStatus != 0 {
			status := d.LastStatus
			v.ResponseStatus = &status
		}
		dur := d.LastDurationMS
		v.ResponseDurationMS = &dur
	}
	if d.State == store.StatePending || d.State == store.StateRetrying {
		v.NextAttemptAt = formatTimePtr(&d.NextAttemptAt)
	}
	return v
}

var deliveryStates = map[string]bool{store.StateDelivered: true, store.StateFailed: true, store.StateRetrying: true, store.StatePending: true}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeliveryFilter{ProjectID: k.ProjectID, SubscriptionID: sub.ID, Limit: limit, Offset: offset}
	filters := map[string]any{"status": nil, "from": nil, "to": nil}
	if st := q.Get("status"); st != "" {
		if !deliveryStates[st] {
			return invalid("status", "must be one of delivered, failed, retrying, pending")
		}
		f.State = st
		filters["status"] = st
	}
	if f.From, f.To, err = timeRange(r); err != nil {
		return err
	}
	for _, name := range []string{"from", "to"} {
		if v := q.Get(name); v != "" {
			filters[name] = v
		}
	}
	ds, err := s.Store.ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = deliveryView(d)
	}
	ok(w, http.StatusOK, out, "meta", map[string]any{"limit": limit, "offset": offset, "filters": filters})
	return nil
}

// parseTimeParam accepts RFC 3339 times and plain dates (midnight UTC).
func parseTimeParam(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", v)
}

func (s *Server) loadDelivery(r *http.Request, k store.APIKey) (store.Delivery, error) {
	return s.Subscriptions.Delivery(r.Context(), k.ProjectID, r.PathValue("id"), r.PathValue("deliveryId"), apiOf(r))
}

func (s *Server) getWebhookDelivery(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	d, err := s.loadDelivery(r, k)
	if err != nil {
		return err
	}
	attempts, err := s.Store.ListAttempts(r.Context(), k.ProjectID, d.ID)
	if err != nil {
		return err
	}
	list := make([]attemptJSON, len(attempts))
	for i, a := range attempts {
		list[i] = attemptJSON{Number: a.Number, URL: a.URL, DurationMS: a.DurationMS, ErrorCode: a.ErrorCode,
			ErrorMessage: a.ErrorMessage, ResponseBody: a.ResponseBody, CreatedAt: formatTime(a.CreatedAt)}
		if a.StatusCode != 0 {
			code := a.StatusCode
			list[i].StatusCode = &code
		}
	}
	ok(w, http.StatusOK, map[string]any{"delivery": deliveryView(d), "attempts": list})
	return nil
}

func (s *Server) replayDelivery(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	d, err := s.Subscriptions.Replay(r.Context(), k.ProjectID, r.PathValue("id"), r.PathValue("deliveryId"), apiOf(r))
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{"delivery_id": d.ID, "status": d.State}, "message", "Delivery replayed successfully")
	return nil
}

// webhookEvents is the catalogue of event types a webhook can subscribe to.
// Carrier accepts any type on POST /v1/events; these are the documented ones.
var webhookEvents = []struct {
	Type, Category, Description string
}{
	{"scrape.created", "job", "A scrape job was queued"},
	{"scrape.started", "job", "A scrape job started"},
	{"scrape.completed", "job", "A scrape job succeeded"},
	{"scrape.failed", "job", "A scrape job failed"},
	{"scrape.cancelled", "job", "A scrape job was cancelled"},
	{"crawl.created", "job", "A crawl job was queued"},
	{"crawl.started", "job", "A crawl job started"},
	{"crawl.completed", "job", "A crawl job succeeded"},
	{"crawl.failed", "job", "A crawl job failed"},
	{"crawl.cancelled", "job", "A crawl job was cancelled"},
	{"task.executed", "scheduled_task", "A scheduled task ran"},
	{"task.failed", "scheduled_task", "A scheduled task failed; also sent when an async task fails at the provider (error_code in data)"},
	{"task.paused", "scheduled_task", "A scheduled task was paused"},
	{"task.resumed", "scheduled_task", "A scheduled task resumed"},
	{"search.created", "search", "A search job was queued"},
	{"search.started", "search", "A search job started"},
	{"search.completed", "search", "A search job succeeded"},
	{"search.failed", "search", "A search job failed"},
	{"map.created", "map", "A map job was queued"},
	{"map.started", "map", "A map job started"},
	{"map.completed", "map", "A map job succeeded"},
	{"map.failed", "map", "A map job failed"},
	{"task.submitted", "async_task", "An async task was accepted by the upstream provider (POST /v1/tasks)"},
	{"task.solved", "async_task", "An async task's result arrived, by pingback or by the fallback poller"},
	{"task.expired", "async_task", "An async task got no result within its maximum age"},
	{"webhook.test", "system", "A test event sent by POST /v1/webhooks/{id}/test"},
	{"webhook.disabled", "system", "A webhook was deactivated after repeated failures or a 410 answer"},
}

func (s *Server) listWebhookEvents(w http.ResponseWriter, r *http.Request, _ store.APIKey) error {
	out := make([]map[string]string, len(webhookEvents))
	for i, e := range webhookEvents {
		out[i] = map[string]string{"event_type": e.Type, "category": e.Category, "description": e.Description}
	}
	ok(w, http.StatusOK, out)
	return nil
}
