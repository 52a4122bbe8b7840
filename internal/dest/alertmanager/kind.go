package alertmanager

import (
	"encoding/json"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var (
	_ dest.Kind           = (*Sender)(nil)
	_ dest.HiddenSettings = (*Sender)(nil)
	_ dest.Target         = (*Sender)(nil)
)

// Name is Kind; the Sender is the alertmanager destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings)
	return err
}

// Redact shows the settings with the bearer token and the headers hidden.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is "alertmanager:" and the URL: attempts record where they were
// posted.
func (s *Sender) Summary(settings json.RawMessage) string {
	c, _ := ParseConfig(settings)
	return Kind + ":" + c.URL
}

// SecretSettings: the bearer token and the headers, kept while the URL they
// are sent to stays the same (as a webhook's hidden header values are).
func (s *Sender) SecretSettings() (secrets, recipient []string) {
	return []string{"bearer_token", "headers"}, []string{"url"}
}

// Target is the URL, checked against the SSRF rules when the subscription
// is saved (and by the client on every dial).
func (s *Sender) Target(settings json.RawMessage) (field, url string) {
	c, _ := ParseConfig(settings)
	return "url", c.URL
}
