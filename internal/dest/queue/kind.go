package queue

import (
	"encoding/json"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// The Sender is this package's destination kind.
var _ dest.Kind = (*Sender)(nil)

// Kind is the name of the queue destination kind.
const Kind = "queue"

// Name is Kind; the Sender is the queue destination kind (dest.Kind).
func (s *Sender) Name() string { return Kind }

// Validate checks settings as Send will. That the queue belongs to the
// subscription's project is checked by the subscription code, which knows
// the project.
func (s *Sender) Validate(settings json.RawMessage) error {
	_, err := ParseConfig(settings)
	return err
}

// Redact shows the settings; a queue destination has no secrets.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage { return Redact(sub.Destination) }

// Summary is "queue:" and the queue.
func (s *Sender) Summary(settings json.RawMessage) string {
	c, _ := ParseConfig(settings)
	return Kind + ":" + c.Queue
}
