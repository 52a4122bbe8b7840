package webhook

import (
	"encoding/json"
	"strings"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var (
	_ dest.Kind           = (*Sender)(nil)
	_ dest.ColumnSettings = (*Sender)(nil)
)

// Kind is the name of the webhook destination kind, and the kind of
// subscriptions stored without one.
const Kind = "webhook"

// settings is the webhook's destination object. Unlike the other kinds' it
// is not stored as a document: it is the subscription's URL and Headers
// columns (dest.ColumnSettings), which /v1/webhooks reads and writes as
// webhook_url and custom_headers.
type settings struct {
	URL           string            `json:"url"`
	CustomHeaders map[string]string `json:"custom_headers"`
}

// Name is Kind; the Sender is the webhook destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Settings builds the destination object from sub's columns.
func (s *Sender) Settings(sub store.Subscription) json.RawMessage {
	out, _ := json.Marshal(settings{URL: sub.URL, CustomHeaders: sub.Headers})
	return out
}

// Validate checks a destination object as Send relies on it: a URL, and
// custom headers Carrier may send. The subscription service applies the
// stricter webhook rules (SSRF, header count and size, hidden values, secret
// rotation) to the columns themselves when it writes them, shared with
// /v1/webhooks.
func (s *Sender) Validate(raw json.RawMessage) error {
	var c settings
	if err := json.Unmarshal(raw, &c); err != nil {
		return &dest.FieldError{Field: "destination", Message: "must be an object with a url and custom_headers"}
	}
	if strings.TrimSpace(c.URL) == "" {
		return &dest.FieldError{Field: "url", Message: "is required"}
	}
	for name, value := range c.CustomHeaders {
		field := "custom_headers." + name
		switch {
		case IsReserved(name):
			return &dest.FieldError{Field: field, Message: "is set by Carrier and cannot be overridden"}
		case IsForbidden(name):
			return &dest.FieldError{Field: field, Message: "cannot be set: it is a hop-by-hop header or changes how the request is framed, routed or answered"}
		}
		if err := CheckHeaderValue(value); err != nil {
			return &dest.FieldError{Field: field, Message: err.Error()}
		}
	}
	return nil
}

// Redact shows the URL, the names of the custom headers with their values
// hidden (they are often the endpoint's credentials, and every key of the
// project may read the subscription) and the signing secret hidden.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage {
	headers := make(map[string]string, len(sub.Headers))
	for name := range sub.Headers {
		headers[name] = dest.Hidden
	}
	out, _ := json.Marshal(map[string]any{"url": sub.URL, "custom_headers": headers, "secret": dest.Hidden})
	return out
}

// Summary is the URL: attempts record where they were posted.
func (s *Sender) Summary(raw json.RawMessage) string { return dest.SettingString(raw, "url") }
