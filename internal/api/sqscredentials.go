package api

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"net/http"

	"carrier/internal/store"
)

// SQS credentials (/v1/sqs-credentials): access keys for the SQS protocol
// endpoint, for the caller's project. Signature Version 4 needs the secret
// itself, so it is stored (as AWS stores its own) and shown only at creation.

type sqsCredentialJSON struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	ProjectID       string `json:"project_id"`
	CreatedAt       string `json:"created_at"`
}

func newSQSCredential(projectID string) store.SQSCredential {
	id := make([]byte, 10)
	rand.Read(id)
	secret := make([]byte, 30)
	rand.Read(secret)
	return store.SQSCredential{AccessKeyID: "AKCR" + base32.StdEncoding.EncodeToString(id), ProjectID: projectID,
		Secret: base64.StdEncoding.EncodeToString(secret), CreatedAt: now()}
}

func (s *Server) createSQSCredential(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	c := newSQSCredential(k.ProjectID)
	if err := s.Store.CreateSQSCredential(r.Context(), c); err != nil {
		return err
	}
	ok(w, http.StatusCreated, sqsCredentialJSON{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.Secret, ProjectID: c.ProjectID, CreatedAt: formatTime(c.CreatedAt)},
		"message", "SQS credential created. Save the secret access key - it won't be shown again.")
	return nil
}

func (s *Server) listSQSCredentials(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	cs, err := s.Store.ListSQSCredentials(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	out := make([]sqsCredentialJSON, len(cs))
	for i, c := range cs {
		out[i] = sqsCredentialJSON{AccessKeyID: c.AccessKeyID, ProjectID: c.ProjectID, CreatedAt: formatTime(c.CreatedAt)}
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) revokeSQSCredential(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.Store.RevokeSQSCredential(r.Context(), k.ProjectID, r.PathValue("id"), now()); err != nil {
		if isNotFound(err) {
			return notFound("SQS credential")
		}
		return err
	}
	ok(w, http.StatusOK, map[string]any{"access_key_id": r.PathValue("id"), "revoked": true})
	return nil
}
