package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"carrier/internal/auth"
	"carrier/internal/store"
)

// AdminKeyCommand is the command that mints an admin key on the store
// directly, for when every admin key is lost or revoked.
const AdminKeyCommand = "carrier admin-key create"

// BootstrapKeyID is the id of the key stored for a CARRIER_API_KEY value.
func BootstrapKeyID(configured string) string {
	return "bootstrap-" + auth.HashKey(configured)[:12]
}

// bootstrap makes sure the default project and an admin key exist. It returns
// the generated key on first start, when CARRIER_API_KEY is not set.
//
// CARRIER_API_KEY is stored the first time it is seen. A value whose key was
// revoked stays revoked: Carrier starts, and warns that the key does not
// work and how to get a new one, rather than re-enabling a key someone
// revoked on purpose (perhaps because it leaked) just because the variable
// still holds it. A new value (a rotated key) is stored next to the old one,
// which keeps working until it is revoked through the API.
func bootstrap(ctx context.Context, st store.Store, configured string, log *slog.Logger) (string, error) {
	if err := ensureDefaultProject(ctx, st); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if configured != "" {
		hash := auth.HashKey(configured)
		// Any key with this hash, revoked or not: the hash is unique, so
		// inserting it again can only fail.
		existing, err := st.LookupAPIKey(ctx, hash)
		switch {
		case err == nil && existing.RevokedAt != nil:
			log.Warn("CARRIER_API_KEY is a revoked API key and stays revoked: requests with it are refused. "+
				"Set CARRIER_API_KEY to a new value (at least 16 characters) to add a new admin key, "+
				"or mint one with `"+AdminKeyCommand+"`",
				"key_id", existing.ID, "revoked_at", existing.RevokedAt.UTC().Format(time.RFC3339))
			return "", nil
		case err == nil:
			return "", nil
		case !errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("bootstrap: look up CARRIER_API_KEY: %w", err)
		}
		k := store.APIKey{ID: BootstrapKeyID(configured), ProjectID: DefaultProjectID, Name: "bootstrap (CARRIER_API_KEY)",
			Prefix: configured[:min(10, len(configured))], Hash: hash, Admin: true, CreatedAt: time.Now().UTC()}
		if err := st.CreateAPIKey(ctx, k); err != nil {
			return "", fmt.Errorf("bootstrap: store CARRIER_API_KEY: %w", err)
		}
		return "", nil
	}
	n, err := st.CountAPIKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	_, key, err := auth.Issue(ctx, st, DefaultProjectID, "bootstrap", true)
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	return key, nil
}

// ensureDefaultProject creates the default project unless it exists.
func ensureDefaultProject(ctx context.Context, st store.Store) error {
	_, err := st.GetProject(ctx, DefaultProjectID)
	if errors.Is(err, store.ErrNotFound) {
		err = st.CreateProject(ctx, store.Project{ID: DefaultProjectID, Name: "default", CreatedAt: time.Now().UTC()})
	}
	return err
}

// CreateAdminKey mints a new admin key of the default project on the store
// (creating the project on a fresh store) and returns it with its plaintext,
// which is shown once and never stored. It is the way back in when every
// admin key is lost or revoked; it works on the store directly, so it needs
// no key.
func CreateAdminKey(ctx context.Context, st store.Store, name string) (store.APIKey, string, error) {
	if err := ensureDefaultProject(ctx, st); err != nil {
		return store.APIKey{}, "", fmt.Errorf("create admin key: %w", err)
	}
	k, key, err := auth.Issue(ctx, st, DefaultProjectID, name, true)
	if err != nil {
		return store.APIKey{}, "", fmt.Errorf("create admin key: %w", err)
	}
	return k, key, nil
}
