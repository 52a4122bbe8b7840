package slack

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

// Name is Kind; the Sender is the slack destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will, with the same compatible hosts.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings, s.Compatible)
	return err
}

// Redact shows the settings with the webhook URL's secret hidden.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is "slack:" and the redacted webhook URL.
func (s *Sender) Summary(settings json.RawMessage) string {
	return Kind + ":" + dest.SettingString(Redact(settings), "webhook_url")
}

// SecretSettings: the URL holds the secret; kept whole, it still points where
// it did, so no other setting needs to stay the same.
func (s *Sender) SecretSettings() (secrets, recipient []string) {
	return []string{"webhook_url"}, nil
}

// Target is the webhook URL.
func (s *Sender) Target(settings json.RawMessage) (field, url string) {
	return "webhook_url", dest.SettingString(settings, "webhook_url")
}
