package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"carrier/internal/dest/webhook"
	"carrier/internal/ingest"
	"carrier/internal/netguard"
	"carrier/internal/sign"
	"carrier/internal/store"
)

// Limits and defaults from the webhooks source document.
const (
	maxNameLen        = 255
	defaultTimeout    = 10
	defaultRetries    = 3
	defaultMultiplier = 2.0
	maxCustomHeaders  = 20
	hiddenSecret      = "***hidden***"
)

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

// storedHeader finds a stored header value by name, as HTTP compares names
// (without regard to case).
func storedHeader(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var (
	eventTypePattern  = regexp.MustCompile(`^(\*|[A-Za-z0-9][A-Za-z0-9_.:\-/]*(\.\*)?)$`)
	headerNamePattern = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// apply validates req and writes its fields onto sub. On create every required
// field must be present; on update only the fields sent are checked and changed.
func (s *Server) apply(r *http.Request, req webhookRequest, sub *store.Subscription, create bool) error {
	oldURL, oldHeaders := sub.URL, sub.Headers
	if req.Secret != nil || req.WebhookSecret != nil {
		field := "secret"
		if req.WebhookSecret != nil {
			field = "webhook_secret"
		}
		return invalid(field, "cannot be set or changed; Carrier generates it (use POST /v1/webhooks/{id}/rotate-secret to replace it)")
	}
	if create {
		switch {
		case req.Name == nil:
			return invalid("name", "is required")
		case req.WebhookURL == nil:
			return invalid("webhook_url", "is required")
		case req.EventTypes == nil:
			return invalid("event_types", "is required")
		}
	}
	if req.Name != nil {
		if n := len([]rune(*req.Name)); n < 1 || n > maxNameLen {
			return invalid("name", "must be 1-255 characters")
		}
		sub.Name = *req.Name
	}
	if req.Description != nil {
		if len(*req.Description) > 2000 {
			return invalid("description", "must be at most 2000 characters")
		}
		sub.Description = *req.Description
	}
	if req.WebhookURL != nil {
		u := strings.TrimSpace(*req.WebhookURL)
		if u == "" {
			return invalid("webhook_url", "is required")
		}
		if len(u) > 2048 {
			return invalid("webhook_url", "must be at most 2048 characters")
		}
		if err := s.Guard.CheckURL(r.Context(), u); err != nil {
			if errors.Is(err, netguard.ErrBlocked) {
				return urlNotAllowed("webhook_url", err)
			}
			return invalid("webhook_url", "is not a valid destination: %v", err)
		}
		sub.URL = u
	}
	if req.EventTypes != nil {
		if len(*req.EventTypes) == 0 {
			return invalid("event_types", "must list at least one event type")
		}
		seen := map[string]bool{}
		var types []string
		for i, t := range *req.EventTypes {
			if len(t) > 255 || !eventTypePattern.MatchString(t) {
				return invalid(fmt.Sprintf("event_types[%d]", i), "must be an event type such as scrape.completed, a prefix pattern such as scrape.*, or *")
			}
			if !seen[t] {
				seen[t] = true
				types = append(types, t)
			}
		}
		sub.EventTypes = types
	}
	if req.Scope != nil {
		if *req.Scope != "all" && *req.Scope != "specific" {
			return invalid("scope", `must be "all" or "specific"`)
		}
		sub.Scope = *req.Scope
	}
	if req.SpecificTaskIDs != nil {
		if len(*req.SpecificTaskIDs) > 1000 {
			return invalid("specific_task_ids", "must have at most 1000 entries")
		}
		for i, id := range *req.SpecificTaskIDs {
			if id == "" || len(id) > 255 {
				return invalid(fmt.Sprintf("specific_task_ids[%d]", i), "must be 1-255 characters")
			}
		}
		sub.SubjectIDs = *req.SpecificTaskIDs
	}
	if sub.Scope == "specific" && len(sub.SubjectIDs) == 0 {
		return invalid("specific_task_ids", `is required when scope is "specific"`)
	}
	if req.TimeoutSeconds != nil {
		v := *req.TimeoutSeconds
		if v != math.Trunc(v) || v < 1 || v > 60 {
			return invalid("timeout_seconds", "must be a whole number from 1 to 60")
		}
		sub.TimeoutSeconds = int(v)
	}
	if req.MaxRetries != nil {
		v := *req.MaxRetries
		if v != math.Trunc(v) || v < 0 || v > 10 {
			return invalid("max_retries", "must be a whole number from 0 to 10")
		}
		sub.MaxRetries = int(v)
	}
	if req.RetryBackoffMultiplier != nil {
		v := *req.RetryBackoffMultiplier
		if v < 1 || v > 10 || math.IsNaN(v) {
			return invalid("retry_backoff_multiplier", "must be from 1 to 10")
		}
		sub.BackoffMultiplier = v
	}
	if req.CustomHeaders != nil {
		h := *req.CustomHeaders
		if len(h) > maxCustomHeaders {
			return invalid("custom_headers", "must have at most %d headers", maxCustomHeaders)
		}
		kept := make(map[string]string, len(h))
		for name, value := range h {
			field := "custom_headers." + name
			switch {
			case !headerNamePattern.MatchString(name):
				return invalid(field, "is not a valid HTTP header name")
			case webhook.IsReserved(name):
				return invalid(field, "is set by Carrier and cannot be overridden")
			case webhook.IsForbidden(name):
				return invalid(field, "cannot be set: it is a hop-by-hop header or changes how the request is framed, routed or answered")
			case len(value) > 4096:
				return invalid(field, "must be at most 4096 characters")
			}
			if value == hiddenSecret {
				// Header values are shown hidden (they are often the
				// endpoint's credentials); sent back hidden, the stored value
				// is kept, but only for the URL it was sent to before.
				prev, ok := storedHeader(oldHeaders, name)
				switch {
				case !ok:
					return invalid(field, "is %s but no value is stored: send the value", hiddenSecret)
				case sub.URL != oldURL:
					return invalid(field, "is required when webhook_url changes: a stored header value is only sent where it was sent before")
				}
				value = prev
			}
			if err := webhook.CheckHeaderValue(value); err != nil {
				return invalid(field, "%v", err)
			}
			kept[name] = value
		}
		sub.Headers = kept
	} else if sub.URL != oldURL && len(oldHeaders) > 0 {
		// Kept silently, the stored values would go to the new URL.
		return invalid("custom_headers", "is required when webhook_url changes: stored header values are only sent where they were sent before (send them again, or {} for none)")
	}
	if req.Tags != nil {
		if len(*req.Tags) > 50 {
			return invalid("tags", "must have at most 50 entries")
		}
		sub.Tags = *req.Tags
	}
	if len(req.Metadata) > 0 && string(req.Metadata) != "null" {
		var obj map[string]any
		if err := json.Unmarshal(req.Metadata, &obj); err != nil {
			return invalid("metadata", "must be a JSON object")
		}
		sub.Metadata = req.Metadata
	}
	if req.Ordering != nil {
		if *req.Ordering != "" && *req.Ordering != store.OrderingFIFO {
			return invalid("ordering", `must be "fifo" or "" (none)`)
		}
		sub.Ordering = *req.Ordering
	}
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.CheckSubscriptionQuota(r.Context(), k.ProjectID); err != nil {
		return err
	}
	t := now()
	sub := store.Subscription{
		ID: newID(), ProjectID: k.ProjectID, Kind: "webhook", Scope: "all",
		TimeoutSeconds: defaultTimeout, MaxRetries: defaultRetries, BackoffMultiplier: defaultMultiplier,
		Active: true, CreatedAt: t, UpdatedAt: t,
	}
	if err := s.apply(r, req, &sub, true); err != nil {
		return err
	}
	secret, err := sign.NewSecret()
	if err != nil {
		return err
	}
	sub.Secret = secret
	if err := s.Store.CreateSubscription(r.Context(), sub); err != nil {
		return err
	}
	s.subscriptionsChanged(r)
	ok(w, http.StatusCreated, map[string]any{
		"webhook_id": sub.ID,
		"secret":     secret,
		"message":    "Webhook created successfully. Save the secret - it won't be shown again.",
	})
	return nil
}

// subscriptionsChanged refreshes this node's matcher at once, so the next
// publish sees the change (other nodes follow within a second).
func (s *Server) subscriptionsChanged(r *http.Request) {
	if s.Matcher != nil {
		if err := s.Matcher.Refresh(r.Context(), true); err != nil {
			s.log.Error("refresh matcher", "err", err)
		}
	}
	s.Wake()
}

// resourceName is what the request's path calls a subscription: the handlers
// are shared by /v1/webhooks ("webhook") and /v1/subscriptions
// ("subscription"), and each API's answers speak its own terms.
func resourceName(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/v1/webhooks/") {
		return "webhook"
	}
	return "subscription"
}

// loadSubscription reads the subscription named in the path. Under
// /v1/webhooks only HTTP destinations exist; /v1/subscriptions shows every kind.
func (s *Server) loadSubscription(r *http.Request, k store.APIKey) (store.Subscription, error) {
	what := resourceName(r)
	sub, err := s.Store.GetSubscription(r.Context(), k.ProjectID, r.PathValue("id"))
	if what == "webhook" {
		if err == nil && sub.Kind != "webhook" {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		if isNotFound(err) {
			return sub, notFound(what)
		}
		return sub, err
	}
	return sub, nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	subs, err := s.Store.ListSubscriptions(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	out := []webhookJSON{}
	for _, sub := range subs {
		if sub.Kind == "webhook" {
			out = append(out, webhookView(sub))
		}
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
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	if err := s.apply(r, req, &sub, false); err != nil {
		return err
	}
	sub.UpdatedAt = now()
	if err := s.Store.UpdateSubscription(r.Context(), sub); err != nil {
		return err
	}
	s.subscriptionsChanged(r)
	ok(w, http.StatusOK, webhookView(sub), "message", "Webhook updated successfully")
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if _, err := s.loadSubscription(r, k); err != nil {
		return err
	}
	what := resourceName(r)
	if err := s.Store.DeleteSubscription(r.Context(), k.ProjectID, r.PathValue("id")); err != nil {
		if isNotFound(err) {
			return notFound(what)
		}
		return err
	}
	s.subscriptionsChanged(r)
	// webhook_id and "Webhook deleted successfully" under /v1/webhooks,
	// subscription_id and "Subscription deleted successfully" under
	// /v1/subscriptions (as its create answer names subscription_id).
	ok(w, http.StatusOK, map[string]any{what + "_id": r.PathValue("id"), "deleted": true},
		"message", strings.ToUpper(what[:1])+what[1:]+" deleted successfully")
	return nil
}

func (s *Server) setActive(w http.ResponseWriter, r *http.Request, k store.APIKey, active bool) error {
	reason := ""
	if !active {
		reason = "deactivated by API"
	}
	if _, err := s.loadSubscription(r, k); err != nil {
		return err
	}
	if err := s.Store.SetSubscriptionActive(r.Context(), k.ProjectID, r.PathValue("id"), active, reason, now()); err != nil {
		if isNotFound(err) {
			return notFound("webhook")
		}
		return err
	}
	s.subscriptionsChanged(r)
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	what, state := "Webhook", "activated"
	if !active {
		state = "deactivated"
	}
	var view any = webhookView(sub)
	if strings.HasPrefix(r.URL.Path, "/v1/subscriptions/") {
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
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]any{
		"message":    "This is a test webhook from Carrier",
		"timestamp":  formatTime(now()),
		"webhook_id": sub.ID,
	})
	res, err := s.Publisher.Publish(r.Context(), ingest.Input{ProjectID: k.ProjectID, Type: "webhook.test", Subject: sub.ID, Data: data, OnlySubscription: sub.ID})
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

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req struct {
		OverlapSeconds *float64 `json:"overlap_seconds"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	overlap := s.RotationOverlap
	if req.OverlapSeconds != nil {
		v := *req.OverlapSeconds
		if v < 0 || v > 7*24*3600 || v != math.Trunc(v) {
			return invalid("overlap_seconds", "must be a whole number from 0 to 604800")
		}
		overlap = time.Duration(v) * time.Second
	}
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	secret, err := sign.NewSecret()
	if err != nil {
		return err
	}
	t := now()
	until := t.Add(overlap)
	sub.PreviousSecret, sub.PreviousSecretUntil = sub.Secret, &until
	if overlap == 0 {
		sub.PreviousSecret, sub.PreviousSecretUntil = "", nil
	}
	sub.Secret = secret
	sub.UpdatedAt = t
	if err := s.Store.UpdateSubscription(r.Context(), sub); err != nil {
		return err
	}
	s.subscriptionsChanged(r)
	ok(w, http.StatusOK, map[string]any{
		"webhook_id":                 sub.ID,
		"secret":                     secret,
		"previous_secret_expires_at": formatTimePtr(sub.PreviousSecretUntil),
	}, "message", "Secret rotated. Save the new secret - it won't be shown again. The previous secret keeps signing until previous_secret_expires_at.")
	return nil
}

func (s *Server) recoverWebhook(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req struct {
		From       *string  `json:"from"`
		To         *string  `json:"to"`
		EventTypes []string `json:"event_types"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.From == nil {
		return invalid("from", "is required (RFC 3339 time)")
	}
	from, err := time.Parse(time.RFC3339Nano, *req.From)
	if err != nil {
		return invalid("from", "must be an RFC 3339 time such as 2026-01-27T10:00:00Z")
	}
	to := now()
	if req.To != nil {
		if to, err = time.Parse(time.RFC3339Nano, *req.To); err != nil {
			return invalid("to", "must be an RFC 3339 time such as 2026-01-27T10:00:00Z")
		}
	}
	if to.Before(from) {
		return invalid("to", "must not be before from")
	}
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	n, err := s.Store.RecoverDeliveries(r.Context(), store.RecoverFilter{ProjectID: k.ProjectID, SubscriptionID: sub.ID, From: from, To: to, EventTypes: req.EventTypes}, now())
	if err != nil {
		return err
	}
	s.Wake()
	ok(w, http.StatusAccepted, map[string]any{"webhook_id": sub.ID, "recovered": n}, "message", fmt.Sprintf("%d failed deliveries queued for replay", n))
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
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return store.Delivery{}, err
	}
	d, err := s.Store.GetDelivery(r.Context(), k.ProjectID, r.PathValue("deliveryId"))
	if err != nil || d.SubscriptionID != sub.ID {
		if err == nil || isNotFound(err) {
			return d, notFound("delivery")
		}
		return d, err
	}
	return d, nil
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
	d, err := s.loadDelivery(r, k)
	if err != nil {
		return err
	}
	d, err = s.Store.ReplayDelivery(r.Context(), k.ProjectID, d.SubscriptionID, d.ID, now())
	if err != nil {
		if isNotFound(err) {
			return notFound("delivery")
		}
		if errors.Is(err, store.ErrConflict) {
			return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "an attempt for this delivery is in flight; try again when it finishes"}
		}
		return err
	}
	s.Wake()
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
