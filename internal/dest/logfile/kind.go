package logfile

import (
	"encoding/json"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var _ dest.Kind = (*Sender)(nil)

// Kind is the name of the log destination kind.
const Kind = "log"

// Name is Kind; the Sender is the log destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings)
	return err
}

// Redact shows the settings; a log destination has no secrets.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is "log:" and the file name.
func (s *Sender) Summary(settings json.RawMessage) string {
	return Kind + ":" + dest.SettingString(settings, "file")
}
