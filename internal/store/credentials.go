package store

import (
	"context"
	"time"
)

// SQSCredential is an access key for Carrier's SQS protocol endpoint. AWS
// Signature Version 4 needs the secret itself to verify a request, so the
// secret is stored so that it can be read back: sealed with
// CARRIER_SECRET_KEY when one is set (package secret), else in plain text (as
// AWS stores its own secret access keys). The API shows it once, when the
// credential is created.
type SQSCredential struct {
	AccessKeyID string // "AKCR…", unique across projects
	ProjectID   string
	Secret      string
	CreatedAt   time.Time
	RevokedAt   *time.Time
}

// CredentialStore is the part of Store that keeps SQS credentials.
type CredentialStore interface {
	// CreateSQSCredential inserts a credential; an access key id already used is ErrConflict.
	CreateSQSCredential(ctx context.Context, c SQSCredential) error
	// SQSCredential finds an unrevoked credential by access key id, across projects.
	SQSCredential(ctx context.Context, accessKeyID string) (SQSCredential, error)
	// ListSQSCredentials lists a project's unrevoked credentials, oldest first.
	ListSQSCredentials(ctx context.Context, projectID string) ([]SQSCredential, error)
	// RevokeSQSCredential revokes a project's credential; an unknown,
	// revoked or other project's one is ErrNotFound.
	RevokeSQSCredential(ctx context.Context, projectID, accessKeyID string, at time.Time) error
	// AllSQSCredentials lists every credential of every project, revoked or
	// not (to seal their secrets again after a key rotation).
	AllSQSCredentials(ctx context.Context) ([]SQSCredential, error)
	// ReplaceSQSCredentialSecret writes secret as the credential's stored
	// secret where it still is old (the same secret, sealed again), and
	// answers ErrConflict where it no longer is, ErrNotFound for an unknown id.
	ReplaceSQSCredentialSecret(ctx context.Context, accessKeyID, old, secret string) error
}
