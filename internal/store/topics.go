package store

import (
	"context"
	"time"
)

// Topic is an SNS topic of a project (internal/topic gives it meaning).
type Topic struct {
	ID        string
	ProjectID string
	Name      string // unique per project; FIFO topics end in ".fifo"
	FIFO      bool
	// ContentDedup (FIFO only) makes the SHA-256 of the message the
	// deduplication id of a publish sent without one.
	ContentDedup bool
	// Attributes are the other settable attributes (DisplayName, Policy, …)
	// by their SNS names.
	Attributes map[string]string
	Tags       map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TopicStore keeps topics.
type TopicStore interface {
	// CreateTopic inserts a topic; a name already used in the project is
	// ErrConflict.
	CreateTopic(ctx context.Context, t Topic) error
	TopicByName(ctx context.Context, projectID, name string) (Topic, error)
	// ListTopics lists a project's topics by name.
	ListTopics(ctx context.Context, projectID string) ([]Topic, error)
	// UpdateTopic writes a topic's content dedup flag, attributes, tags and
	// updated time.
	UpdateTopic(ctx context.Context, t Topic) error
	// DeleteTopic removes a topic and, in the same transaction, the
	// subscriptions named (with their deliveries); a missing topic is
	// ErrNotFound and deletes nothing.
	DeleteTopic(ctx context.Context, projectID, name string, subscriptionIDs []string) error
}

// SigningKey is a key Carrier signs with, shared by every node: a private
// key and its certificate, both PEM.
type SigningKey struct {
	Name        string
	PrivateKey  string
	Certificate string
	CreatedAt   time.Time
}

// SigningKeyStore keeps signing keys.
type SigningKeyStore interface {
	// SigningKey reads the key named name (ErrNotFound when there is none).
	SigningKey(ctx context.Context, name string) (SigningKey, error)
	// CreateSigningKey stores k unless a key of its name exists, and returns
	// the stored key: k, or the one another node stored first.
	CreateSigningKey(ctx context.Context, k SigningKey) (SigningKey, error)
	// AllSigningKeys lists every signing key.
	AllSigningKeys(ctx context.Context) ([]SigningKey, error)
	// ReplaceSigningKeyPrivate writes private as key name's private key
	// where it is still old (ErrConflict otherwise, ErrNotFound when gone).
	ReplaceSigningKeyPrivate(ctx context.Context, name, old, private string) error
}
