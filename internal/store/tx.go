package store

import (
	"context"
	"time"
)

// Tx is the set of writes a service may group into one transaction through
// Transactor.InTx: a state change and the system events it causes commit
// together or not at all. Each method behaves as the Store method of the same
// name, except that nothing it writes is visible to others, or kept, until
// the transaction commits. Reads inside the transaction see its own writes.
// A Tx is only valid inside the function it was handed to, and after one of
// its methods fails the function should return the error: PostgreSQL refuses
// every further statement of a transaction that had an error.
type Tx interface {
	// GetSubscription reads one subscription of a project, as the transaction sees it.
	GetSubscription(ctx context.Context, projectID, id string) (Subscription, error)
	// CreateSubscription inserts a subscription.
	CreateSubscription(ctx context.Context, s Subscription) error
	// UpdateSubscription writes a subscription's editable fields.
	UpdateSubscription(ctx context.Context, s Subscription) error
	// SetSubscriptionActive activates (resetting the failure count) or deactivates a subscription.
	SetSubscriptionActive(ctx context.Context, projectID, id string, active bool, reason string, at time.Time) error
	// InsertOutbox writes a system event to the outbox, for the relay to
	// publish once the transaction has committed.
	InsertOutbox(ctx context.Context, e OutboxEvent) error
}

// Transactor runs several writes atomically.
type Transactor interface {
	// InTx runs fn in one write transaction and commits it when fn returns
	// nil. When fn returns an error, InTx rolls every write back and returns
	// that error unchanged; when fn panics, InTx rolls back and panics again
	// with the same value. On SQLite the transaction holds the single writer
	// for as long as fn runs, so fn must not wait on anything but its own
	// writes (in particular not on another write to the same store).
	InTx(ctx context.Context, fn func(tx Tx) error) error
}
