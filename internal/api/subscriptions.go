package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"carrier/internal/dest"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/dest/webhook"
	"carrier/internal/filter"
	"carrier/internal/netguard"
	"carrier/internal/sign"
	"carrier/internal/store"
)

// The general form behind /v1/webhooks: a subscription has event types, a
// scope, an SNS-style filter policy, delivery settings and one destination of
// any kind. A webhook is a subscription whose destination is "webhook"; it
// appears in both APIs.

// What each destination kind accepts, shows and records is its dest.Kind,
// looked up in Deps.Destinations: the registry the delivery engine sends with.

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

// webhookDestination is the destination object of kind webhook.
type webhookDestination struct {
	Type          string             `json:"type"`
	URL           *string            `json:"url"`
	CustomHeaders *map[string]string `json:"custom_headers"`
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

// destinationType reads destination.type.
func (s *Server) destinationType(raw json.RawMessage) (dest.Kind, error) {
	var d struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, invalid("destination", "must be an object with a type")
	}
	if d.Type == "" {
		return nil, invalid("destination.type", "is required: webhook, discord, slack, email, log or queue")
	}
	k, ok := s.Destinations.Lookup(d.Type)
	if !ok {
		return nil, invalid("destination.type", "must be webhook, discord, slack, email, log or queue")
	}
	return k, nil
}

// applySubscription validates req and writes it onto sub (all required fields
// on create, only those sent on update).
func (s *Server) applySubscription(r *http.Request, req subscriptionRequest, sub *store.Subscription, create bool) error {
	if create {
		switch {
		case req.Name == nil:
			return invalid("name", "is required")
		case req.EventTypes == nil:
			return invalid("event_types", "is required")
		case len(req.Destination) == 0 || string(req.Destination) == "null":
			return invalid("destination", "is required (an object with a type: webhook, discord, slack, email, log or queue)")
		}
	}
	wreq := webhookRequest{Name: req.Name, Description: req.Description, EventTypes: req.EventTypes, Scope: req.Scope,
		SpecificTaskIDs: req.SpecificTaskIDs, TimeoutSeconds: req.TimeoutSeconds, MaxRetries: req.MaxRetries,
		RetryBackoffMultiplier: req.RetryBackoffMultiplier, Tags: req.Tags, Metadata: req.Metadata, Ordering: req.Ordering}
	if len(req.Destination) > 0 && string(req.Destination) != "null" {
		k, err := s.destinationType(req.Destination)
		if err != nil {
			return err
		}
		kind := k.Name()
		if !create && kind != sub.Kind {
			return invalid("destination.type", "cannot be changed from %s; create a new subscription", sub.Kind)
		}
		sub.Kind = kind
		if _, columns := k.(dest.ColumnSettings); columns {
			// The webhook's settings are the subscription's URL and header
			// columns, shared with /v1/webhooks: its rules write them.
			var d webhookDestination
			if err := strictDecode(req.Destination, &d); err != nil {
				return err
			}
			if create && d.URL == nil {
				return invalid("destination.url", "is required")
			}
			wreq.WebhookURL, wreq.CustomHeaders = d.URL, d.CustomHeaders
		} else {
			kept, err := keepHidden(req.Destination, sub.Destination, k)
			if err != nil {
				return err
			}
			settings, err := s.destinationSettings(r, k, kept)
			if err != nil {
				return err
			}
			if kind == destqueue.Kind {
				if err := s.checkQueueDestination(r, sub.ProjectID, settings); err != nil {
					return err
				}
			}
			sub.Destination = settings
			sub.URL = k.Summary(settings)
		}
	}
	if err := s.apply(r, wreq, sub, false); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && (apiErr.Field == "webhook_url" || strings.HasPrefix(apiErr.Field, "custom_headers")) {
			renamed := "destination." + strings.Replace(apiErr.Field, "webhook_url", "url", 1)
			// The message starts with the field's name; speak this API's terms there too.
			if rest, ok := strings.CutPrefix(apiErr.Message, apiErr.Field); ok {
				apiErr.Message = renamed + strings.Replace(rest, "when webhook_url changes", "when destination.url changes", 1)
			}
			apiErr.Field = renamed
		}
		return err
	}
	if req.FilterPolicyScope != nil {
		if *req.FilterPolicyScope != filter.ScopeAttributes && *req.FilterPolicyScope != filter.ScopeBody {
			return invalid("filter_policy_scope", `must be "attributes" or "body"`)
		}
		sub.FilterScope = *req.FilterPolicyScope
	}
	if sub.FilterScope == "" {
		sub.FilterScope = filter.ScopeAttributes
	}
	if req.FilterPolicy != nil {
		if string(req.FilterPolicy) == "null" {
			sub.FilterPolicy = nil
		} else {
			sub.FilterPolicy = compactJSON(req.FilterPolicy)
		}
	}
	if len(sub.FilterPolicy) > 0 {
		if _, err := filter.Compile(sub.FilterPolicy, sub.FilterScope); err != nil {
			var ferr *filter.Error
			if errors.As(err, &ferr) {
				return invalid("filter_policy."+ferr.Key, "%s", ferr.Message)
			}
			return invalid("filter_policy", "%v", err)
		}
	}
	return nil
}

// destinationSettings validates a non-webhook destination object and returns
// its settings (without "type"), with any URL in it checked against SSRF rules.
func (s *Server) destinationSettings(r *http.Request, k dest.Kind, raw json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("destination", "must be an object")
	}
	delete(m, "type")
	settings, _ := json.Marshal(m)
	if err := k.Validate(settings); err != nil {
		var ferr *dest.FieldError
		if errors.As(err, &ferr) {
			return nil, invalid("destination."+ferr.Field, "%s", ferr.Message)
		}
		return nil, invalid("destination", "%v", err)
	}
	if t, ok := k.(dest.Target); ok {
		setting, target := t.Target(settings)
		if target == "" {
			return settings, nil
		}
		field := "destination." + setting
		if err := s.Guard.CheckURL(r.Context(), target); err != nil {
			if errors.Is(err, netguard.ErrBlocked) {
				return nil, urlNotAllowed(field, err)
			}
			return nil, invalid(field, "is not a valid destination: %v", err)
		}
	}
	return settings, nil
}

// keepHidden puts the stored value back for every secret setting of the
// kind sent as "***hidden***" (what the API shows for it), so settings read
// from the API can be sent back without knowing the secret. It refuses to
// when a recipient setting changes: the secret must then be sent again.
// "***hidden***" in any other setting is taken as it is.
func keepHidden(sent, stored json.RawMessage, k dest.Kind) (json.RawMessage, error) {
	h, ok := k.(dest.HiddenSettings)
	if !ok {
		return sent, nil
	}
	secrets, recipient := h.SecretSettings()
	var in, old map[string]json.RawMessage
	if json.Unmarshal(sent, &in) != nil {
		return sent, nil
	}
	json.Unmarshal(stored, &old)
	changed := false
	for _, k := range secrets {
		if string(in[k]) != `"`+hiddenSecret+`"` {
			continue
		}
		prev, ok := old[k]
		if !ok {
			return nil, invalid("destination."+k, "is %s but no value is stored: send the value", hiddenSecret)
		}
		for _, r := range recipient {
			if !sameJSON(in[r], old[r]) {
				return nil, invalid("destination."+k, "is required when destination.%s changes: a stored secret is only sent where it was sent before", r)
			}
		}
		in[k], changed = prev, true
	}
	if !changed {
		return sent, nil
	}
	out, _ := json.Marshal(in)
	return out, nil
}

// sameJSON reports whether two JSON values are equal as values (member order
// and spacing aside); a missing value equals only a missing or null one.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if len(a) > 0 && json.Unmarshal(a, &va) != nil {
		return false
	}
	if len(b) > 0 && json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// strictDecode decodes raw into v, refusing unknown fields by name.
func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var apiErr *Error
		if errors.As(decodeError(err), &apiErr) && apiErr.Field != "" {
			apiErr.Field = "destination." + apiErr.Field
			apiErr.Message = strings.Replace(apiErr.Message, "unknown field", "unknown destination setting", 1)
			return apiErr
		}
		return invalid("destination", "%v", err)
	}
	return nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req subscriptionRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.CheckSubscriptionQuota(r.Context(), k.ProjectID); err != nil {
		return err
	}
	t := now()
	sub := store.Subscription{
		ID: newID(), ProjectID: k.ProjectID, Scope: "all", FilterScope: filter.ScopeAttributes,
		TimeoutSeconds: defaultTimeout, MaxRetries: defaultRetries, BackoffMultiplier: defaultMultiplier,
		Active: true, CreatedAt: t, UpdatedAt: t,
	}
	if err := s.applySubscription(r, req, &sub, true); err != nil {
		return err
	}
	out := map[string]any{"subscription_id": sub.ID}
	if sub.Kind == webhook.Kind {
		// The signing secret is a column of its own, minted here and shown once.
		secret, err := sign.NewSecret()
		if err != nil {
			return err
		}
		sub.Secret = secret
		out["secret"] = secret
	}
	if err := s.Store.CreateSubscription(r.Context(), sub); err != nil {
		return err
	}
	s.subscriptionsChanged(r)
	out["subscription"] = s.subscriptionView(sub)
	ok(w, http.StatusCreated, out, "message", fmt.Sprintf("Subscription created (destination: %s).", sub.Kind))
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	subs, err := s.Store.ListSubscriptions(r.Context(), k.ProjectID)
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
	sub, err := s.loadSubscription(r, k)
	if err != nil {
		return err
	}
	if err := s.applySubscription(r, req, &sub, false); err != nil {
		return err
	}
	sub.UpdatedAt = now()
	if err := s.Store.UpdateSubscription(r.Context(), sub); err != nil {
		return err
	}
	s.subscriptionsChanged(r)
	ok(w, http.StatusOK, s.subscriptionView(sub), "message", "Subscription updated")
	return nil
}

// checkQueueDestination makes sure a queue destination names a queue of the
// subscription's project.
func (s *Server) checkQueueDestination(r *http.Request, projectID string, settings json.RawMessage) error {
	c, err := destqueue.ParseConfig(settings)
	if err != nil {
		return invalid("destination.queue", "%v", err)
	}
	if s.Queues == nil {
		return invalid("destination.type", "queue destinations need pull queues, which are not configured")
	}
	if _, err := s.Queues.Resolve(r.Context(), projectID, c.Queue); err != nil {
		if isNotFound(err) {
			return invalid("destination.queue", "names no queue of this project (create it with POST /v1/queues)")
		}
		return err
	}
	return nil
}
