package email

import (
	"encoding/json"
	"strings"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var (
	_ dest.Kind           = (*Sender)(nil)
	_ dest.HiddenSettings = (*Sender)(nil)
)

// Kind is the name of the email destination kind.
const Kind = "email"

// Name is Kind; the Sender is the email destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings)
	return err
}

// Redact shows the settings with the password hidden.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is the SMTP host and the recipients.
func (s *Sender) Summary(settings json.RawMessage) string {
	var c struct {
		Host string   `json:"host"`
		To   []string `json:"to"`
	}
	json.Unmarshal(settings, &c)
	return "smtp://" + c.Host + " to " + strings.Join(c.To, ",")
}

// SecretSettings: the password, which is only kept while the server, the
// login and the addresses stay the same.
func (s *Sender) SecretSettings() (secrets, recipient []string) {
	return []string{"password"}, []string{"host", "port", "security", "username", "from", "to"}
}
