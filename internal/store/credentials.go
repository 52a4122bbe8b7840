package store

import (
	"context"
	"time"
)

// SQSCredential is an access key for Carrier's SQS protocol endpoint. AWS
// Signature Version 4 needs the secret itself to verify a request, so the
// secret is stored in plaintext (as AWS stores its own secret access keys);
// the API shows it once, when the credential is created.
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
}
