package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"carrier/internal/dest"
	"carrier/internal/dest/webhook"
	"carrier/internal/filter"
	"carrier/internal/store"
)

// Input is a subscription as a caller writes it, through either API. Nil
// fields were not sent: on create the required ones must be there, on
// update only those sent are checked and changed.
type Input struct {
	// API is the shape the input comes in; errors name its fields.
	API API
	// SecretField names a field in which the caller tried to set the
	// signing secret ("secret", "webhook_secret"); it is refused, since
	// Carrier generates every secret ("" when none was sent).
	SecretField string

	Name        *string
	Description *string
	EventTypes  *[]string
	// Scope is "all" or "specific" (only the SubjectIDs, specific_task_ids).
	Scope      *string
	SubjectIDs *[]string
	// FilterPolicy is an SNS-style filter policy (Subscriptions API only);
	// JSON null removes it.
	FilterPolicy json.RawMessage
	// FilterScope is "attributes" or "body" (Subscriptions API only).
	FilterScope *string
	// Destination is the destination object, with its "type" (Subscriptions
	// API). A webhook's url and custom_headers are read from it into URL and
	// Headers.
	Destination json.RawMessage
	// URL and Headers are a webhook's endpoint and custom headers (the
	// Webhooks API's webhook_url and custom_headers). A header value sent
	// as dest.Hidden keeps the stored value, while the URL stays the same.
	URL     *string
	Headers *map[string]string

	TimeoutSeconds    *float64
	MaxRetries        *float64
	BackoffMultiplier *float64
	Tags              *[]string
	// Metadata is a JSON object kept with the subscription; JSON null
	// leaves it as it is.
	Metadata json.RawMessage
	// Ordering is "fifo" or "" (none).
	Ordering *string
	// NoEventTypes makes the subscription want no published event: it
	// receives only deliveries addressed to it alone (an SNS http
	// subscription waiting for its confirmation gets its
	// SubscriptionConfirmation and nothing else). EventTypes is ignored.
	NoEventTypes bool
}

// Limits from the webhooks source document.
const (
	maxNameLen       = 255
	maxCustomHeaders = 20
)

var (
	eventTypePattern  = regexp.MustCompile(`^(\*|[A-Za-z0-9][A-Za-z0-9_.:\-/]*(\.\*)?)$`)
	headerNamePattern = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// kinds lists the registered destination kinds for messages ("webhook,
// discord, … or queue").
func (s *Service) kinds() string {
	names := s.d.Destinations.Names()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// sent reports whether a raw JSON member was sent with a value.
func sent(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// apply validates in and writes it onto sub (all required fields on
// create, only those sent on update). It changes sub even when it fails, so
// callers write sub only when it returns nil.
func (s *Service) apply(ctx context.Context, in Input, sub *store.Subscription, create bool) error {
	if in.SecretField != "" {
		return invalid(in.SecretField, "cannot be set or changed; Carrier generates it (use POST /v1/webhooks/{id}/rotate-secret to replace it)")
	}
	if create {
		switch {
		case in.Name == nil:
			return invalid("name", "is required")
		case in.API == Webhooks && in.URL == nil:
			return invalid(in.API.urlField(), "is required")
		case in.EventTypes == nil && !in.NoEventTypes:
			return invalid("event_types", "is required")
		case in.API == Subscriptions && !sent(in.Destination):
			return invalid("destination", "is required (an object with a type: %s)", s.kinds())
		}
	}
	url, headers := in.URL, in.Headers
	if in.API == Subscriptions && sent(in.Destination) {
		var err error
		if url, headers, err = s.applyDestination(ctx, in.Destination, sub, create); err != nil {
			return err
		}
	}
	if err := s.applyFields(ctx, in, url, headers, sub); err != nil {
		return err
	}
	if in.API == Subscriptions {
		return applyFilter(in, sub)
	}
	return nil
}

// applyDestination validates a destination object and writes it onto sub.
// A webhook's settings are the subscription's URL and header columns, shared
// with /v1/webhooks: they are returned for the webhook rules to check and
// write. Every other kind is checked by its dest.Kind.
func (s *Service) applyDestination(ctx context.Context, raw json.RawMessage, sub *store.Subscription, create bool) (url *string, headers *map[string]string, err error) {
	k, err := s.destinationKind(raw)
	if err != nil {
		return nil, nil, err
	}
	kind := k.Name()
	if !create && kind != sub.Kind {
		return nil, nil, invalid("destination.type", "cannot be changed from %s; create a new subscription", sub.Kind)
	}
	sub.Kind = kind
	if _, columns := k.(dest.ColumnSettings); columns {
		var d webhookDestination
		if err := d.decode(raw); err != nil {
			return nil, nil, err
		}
		if create && d.URL == nil {
			return nil, nil, invalid("destination.url", "is required")
		}
		return d.URL, d.CustomHeaders, nil
	}
	kept, err := keepHidden(raw, sub.Destination, k)
	if err != nil {
		return nil, nil, err
	}
	settings, err := s.destinationSettings(ctx, k, kept)
	if err != nil {
		return nil, nil, err
	}
	if isQueue(k) {
		if err := s.checkQueueDestination(ctx, sub.ProjectID, settings); err != nil {
			return nil, nil, err
		}
	}
	sub.Destination = settings
	sub.URL = k.Summary(settings)
	return nil, nil, nil
}

// applyFields validates and writes the fields both APIs share, and the
// webhook's URL and custom headers (url and headers, nil when not sent).
func (s *Service) applyFields(ctx context.Context, in Input, url *string, headers *map[string]string, sub *store.Subscription) error {
	oldURL, oldHeaders := sub.URL, sub.Headers
	urlField, headersField := in.API.urlField(), in.API.headersField()
	if in.Name != nil {
		if n := len([]rune(*in.Name)); n < 1 || n > maxNameLen {
			return invalid("name", "must be 1-255 characters")
		}
		sub.Name = *in.Name
	}
	if in.Description != nil {
		if len(*in.Description) > 2000 {
			return invalid("description", "must be at most 2000 characters")
		}
		sub.Description = *in.Description
	}
	if url != nil {
		u := strings.TrimSpace(*url)
		if u == "" {
			return invalid(urlField, "is required")
		}
		if len(u) > 2048 {
			return invalid(urlField, "must be at most 2048 characters")
		}
		if err := s.checkAddress(ctx, urlField, u); err != nil {
			return err
		}
		sub.URL = u
	}
	if in.NoEventTypes {
		sub.EventTypes = []string{}
	} else if in.EventTypes != nil {
		if len(*in.EventTypes) == 0 {
			return invalid("event_types", "must list at least one event type")
		}
		seen := map[string]bool{}
		var types []string
		for i, t := range *in.EventTypes {
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
	if in.Scope != nil {
		if *in.Scope != "all" && *in.Scope != "specific" {
			return invalid("scope", `must be "all" or "specific"`)
		}
		sub.Scope = *in.Scope
	}
	if in.SubjectIDs != nil {
		if len(*in.SubjectIDs) > 1000 {
			return invalid("specific_task_ids", "must have at most 1000 entries")
		}
		for i, id := range *in.SubjectIDs {
			if id == "" || len(id) > 255 {
				return invalid(fmt.Sprintf("specific_task_ids[%d]", i), "must be 1-255 characters")
			}
		}
		sub.SubjectIDs = *in.SubjectIDs
	}
	if sub.Scope == "specific" && len(sub.SubjectIDs) == 0 {
		return invalid("specific_task_ids", `is required when scope is "specific"`)
	}
	if in.TimeoutSeconds != nil {
		v := *in.TimeoutSeconds
		if v != math.Trunc(v) || v < 1 || v > 60 {
			return invalid("timeout_seconds", "must be a whole number from 1 to 60")
		}
		sub.TimeoutSeconds = int(v)
	}
	if in.MaxRetries != nil {
		v := *in.MaxRetries
		if v != math.Trunc(v) || v < 0 || v > 10 {
			return invalid("max_retries", "must be a whole number from 0 to 10")
		}
		sub.MaxRetries = int(v)
	}
	if in.BackoffMultiplier != nil {
		v := *in.BackoffMultiplier
		if v < 1 || v > 10 || math.IsNaN(v) {
			return invalid("retry_backoff_multiplier", "must be from 1 to 10")
		}
		sub.BackoffMultiplier = v
	}
	if headers != nil {
		kept, err := checkHeaders(*headers, oldHeaders, sub.URL != oldURL, urlField, headersField)
		if err != nil {
			return err
		}
		sub.Headers = kept
	} else if sub.URL != oldURL && len(oldHeaders) > 0 {
		// Kept silently, the stored values would go to the new URL.
		return invalid(headersField, "is required when %s changes: stored header values are only sent where they were sent before (send them again, or {} for none)", urlField)
	}
	if in.Tags != nil {
		if len(*in.Tags) > 50 {
			return invalid("tags", "must have at most 50 entries")
		}
		sub.Tags = *in.Tags
	}
	if sent(in.Metadata) {
		var obj map[string]any
		if err := json.Unmarshal(in.Metadata, &obj); err != nil {
			return invalid("metadata", "must be a JSON object")
		}
		sub.Metadata = in.Metadata
	}
	if in.Ordering != nil {
		if *in.Ordering != "" && *in.Ordering != store.OrderingFIFO {
			return invalid("ordering", `must be "fifo" or "" (none)`)
		}
		sub.Ordering = *in.Ordering
	}
	return nil
}

// checkHeaders validates a webhook's custom headers and returns them with
// every value sent as dest.Hidden replaced by the stored one. Header values
// are shown hidden (they are often the endpoint's credentials); sent back
// hidden, the stored value is kept, but only for the URL it was sent to
// before (urlChanged says it is not).
func checkHeaders(h, stored map[string]string, urlChanged bool, urlField, headersField string) (map[string]string, error) {
	if len(h) > maxCustomHeaders {
		return nil, invalid(headersField, "must have at most %d headers", maxCustomHeaders)
	}
	kept := make(map[string]string, len(h))
	for name, value := range h {
		field := headersField + "." + name
		switch {
		case !headerNamePattern.MatchString(name):
			return nil, invalid(field, "is not a valid HTTP header name")
		case webhook.IsReserved(name):
			return nil, invalid(field, "is set by Carrier and cannot be overridden")
		case webhook.IsForbidden(name):
			return nil, invalid(field, "cannot be set: it is a hop-by-hop header or changes how the request is framed, routed or answered")
		case len(value) > 4096:
			return nil, invalid(field, "must be at most 4096 characters")
		}
		if value == dest.Hidden {
			prev, ok := storedHeader(stored, name)
			switch {
			case !ok:
				return nil, invalid(field, "is %s but no value is stored: send the value", dest.Hidden)
			case urlChanged:
				return nil, invalid(field, "is required when %s changes: a stored header value is only sent where it was sent before", urlField)
			}
			value = prev
		}
		if err := webhook.CheckHeaderValue(value); err != nil {
			return nil, invalid(field, "%v", err)
		}
		kept[name] = value
	}
	return kept, nil
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

// applyFilter validates and writes the filter policy and its scope.
func applyFilter(in Input, sub *store.Subscription) error {
	if in.FilterScope != nil {
		if *in.FilterScope != filter.ScopeAttributes && *in.FilterScope != filter.ScopeBody {
			return invalid("filter_policy_scope", `must be "attributes" or "body"`)
		}
		sub.FilterScope = *in.FilterScope
	}
	if sub.FilterScope == "" {
		sub.FilterScope = filter.ScopeAttributes
	}
	if in.FilterPolicy != nil {
		if string(in.FilterPolicy) == "null" {
			sub.FilterPolicy = nil
		} else {
			sub.FilterPolicy = compactJSON(in.FilterPolicy)
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
