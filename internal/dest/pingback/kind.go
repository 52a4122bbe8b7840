package pingback

import (
	"encoding/json"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var (
	_ dest.Kind   = (*Sender)(nil)
	_ dest.Target = (*Sender)(nil)
)

// Name is Kind; the Sender is the pingback destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings)
	return err
}

// Redact shows the settings; the host is no secret.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is "pingback:" and the host.
func (s *Sender) Summary(settings json.RawMessage) string {
	c, _ := ParseConfig(settings)
	return Kind + ":" + c.Host
}

// Target is the host every pingback of the subscription goes to.
func (s *Sender) Target(settings json.RawMessage) (field, url string) {
	c, _ := ParseConfig(settings)
	if c.Host == "" {
		return "host", ""
	}
	return "host", "http://" + c.Host
}
