package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"carrier/internal/dest"
	"carrier/internal/filter"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// The general form behind /v1/webhooks: a subscription has event types, a
// scope, an SNS-style filter policy, delivery settings and one destination of
// any kind. A webhook is a subscription whose destination is "webhook"; it
// appears in both APIs.

// The subscription service (internal/subscription) validates and writes
// them; this file maps the JSON onto its input and shows what it returns,
// each destination's settings as its dest.Kind redacts them (Deps.Destinations,
// the registry the delivery engine sends with).

// subscriptionRequest is the body of POST and PUT /v1/subscriptions.
type subscriptionRequest struct {
	Name                   *string         `json:"name"`
	Description            *string         `json:"description"`
	EventTypes             *[]string       `json:"event_types"`
	Scope                  *string         `json:"scope"`
	SpecificTaskIDs        *[]string       `json:"specific_task_ids"`
	FilterPolicy           json.RawMessage `json:"filter_policy"`
	FilterPolicyScope      *string         `json:"filter_policy_scope"`
	Destination            json.RawMessage `json:"destination"`
	TimeoutSeconds         *float64        `json:"timeout_seconds"`
	MaxRetries             *float64        `json:"max_retries"`
	RetryBackoffMultiplier *float64        `json:"retry_backoff_multiplier"`
	Tags                   *[]string       `json:"tags"`
	Metadata               json.RawMessage `json:"metadata"`
	Ordering               *string         `json:"ordering"`
}

// input maps the body onto the subscription service's input.
func (req subscriptionRequest) input() subscription.Input {
	return subscription.Input{API: subscription.Subscriptions, Name: req.Name, Description: req.Description,
		EventTypes: req.EventTypes, Scope: req.Scope, SubjectIDs: req.SpecificTaskIDs, FilterPolicy: req.FilterPolicy,
		FilterScope: req.FilterPolicyScope, Destination: req.Destination, TimeoutSeconds: req.TimeoutSeconds,
		MaxRetries: req.MaxRetries, BackoffMultiplier: req.RetryBackoffMultiplier, Tags: req.Tags, Metadata: req.Metadata,
		Ordering: req.Ordering}
}

type subscriptionJSON struct {
	ID                     string          `json:"id"`
	Name                   string          `json:"name"`
	Description            string          `json:"description"`
	EventTypes             []string        `json:"event_types"`
	Scope                  string          `json:"scope"`
	SpecificTaskIDs        []string        `json:"specific_task_ids"`
	FilterPolicy           json.RawMessage `json:"filter_policy"`
	FilterPolicyScope      string          `json:"filter_policy_scope"`
	Destination            json.RawMessage `json:"destination"`
	TimeoutSeconds         int             `json:"timeout_seconds"`
	MaxRetries             int             `json:"max_retries"`
	RetryBackoffMultiplier float64         `json:"retry_backoff_multiplier"`
	Tags                   []string        `json:"tags"`
	Metadata               json.RawMessage `json:"metadata"`
	Ordering               string          `json:"ordering"`
	IsActive               bool            `json:"is_active"`
	DisabledReason         string          `json:"disabled_reason,omitempty"`
	ConsecutiveFailures    int             `json:"consecutive_failures"`
	TotalDeliveries        int64           `json:"total_deliveries"`
	SuccessfulDeliveries   int64           `json:"successful_deliveries"`
	FailedDeliveries       int64           `json:"failed_deliveries"`
	LastSuccessAt          *string         `json:"last_success_at"`
	LastFailureAt          *string         `json:"last_failure_at"`
	CreatedAt              string          `json:"created_at"`
	UpdatedAt              string          `json:"updated_at"`
}

func (s *Server) subscriptionView(sub store.Subscription) subscriptionJSON {
	w := webhookView(sub)
	v := subscriptionJSON{ID: sub.ID, Name: w.Name, Description: w.Description, EventTypes: w.EventTypes, Scope: w.Scope,
		SpecificTaskIDs: w.SpecificTaskIDs, FilterPolicy: sub.FilterPolicy, FilterPolicyScope: sub.FilterScope,
		TimeoutSeconds: w.TimeoutSeconds, MaxRetries: w.MaxRetries, RetryBackoffMultiplier: w.RetryBackoffMultiplier,
		Tags: w.Tags, Metadata: w.Metadata, Ordering: w.Ordering, IsActive: w.IsActive, DisabledReason: w.DisabledReason,
		ConsecutiveFailures: w.ConsecutiveFailures, TotalDeliveries: w.TotalDeliveries, SuccessfulDeliveries: w.SuccessfulDeliveries,
		FailedDeliveries: w.FailedDeliveries, LastSuccessAt: w.LastSuccessAt, LastFailureAt: w.LastFailureAt,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if len(v.FilterPolicy) == 0 {
		v.FilterPolicy = json.RawMessage("null")
	}
	if v.FilterPolicyScope == "" {
		v.FilterPolicyScope = filter.ScopeAttributes
	}
	kindName, settings := sub.Kind, json.RawMessage("{}")
	if k, ok := s.Destinations.Lookup(sub.Kind); ok {
		kindName = k.Name()
		// A kind whose settings are columns has them even when the
		// Destination document is empty.
		if _, columns := k.(dest.ColumnSettings); columns || len(sub.Destination) > 0 {
			settings = k.Redact(sub)
		}
	}
	var m map[string]any
	json.Unmarshal(settings, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["type"] = kindName
	v.Destination, _ = json.Marshal(m)
	return v
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req subscriptionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sub, err := s.Subscriptions.Create(r.Context(), k.ProjectID, req.input())
	if err != nil {
		return err
	}
	out := map[string]any{"subscription_id": sub.ID, "subscription": s.subscriptionView(sub)}
	if sub.Secret != "" {
		// The webhook's signing secret, minted by the service, shown once.
		out["secret"] = sub.Secret
	}
	ok(w, http.StatusCreated, out, "message", fmt.Sprintf("Subscription created (destination: %s).", sub.Kind))
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	subs, err := s.Subscriptions.List(r.Context(), k.ProjectID, subscription.Subscriptions)
	if err != nil {
		return err
	}
	out := make([]subscriptionJSON, len(subs))
	for i, sub := range subs {
		out[i] = s.subscriptionView(sub)
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, s.subscriptionView(sub))
	return nil
}

func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req subscriptionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sub, err := s.Subscriptions.Update(r.Context(), k.ProjectID, r.PathValue("id"), req.input())
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, s.subscriptionView(sub), "message", "Subscription updated")
	return nil
}
