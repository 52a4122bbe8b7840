package secret

import (
	"context"

	"carrier/internal/store"
)

func signingKeyAD(name string) string { return "signing_key:" + name + ":private_key" }

// SigningKey reads a signing key with its private key opened.
func (s *Store) SigningKey(ctx context.Context, name string) (store.SigningKey, error) {
	k, err := s.Store.SigningKey(ctx, name)
	if err != nil {
		return k, err
	}
	k.PrivateKey, _, err = s.keys.Open(k.PrivateKey, signingKeyAD(k.Name))
	return k, err
}

// CreateSigningKey stores k with its private key sealed and returns the
// stored key opened.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error) {
	var err error
	if k.PrivateKey, err = s.keys.Seal(k.PrivateKey, signingKeyAD(k.Name)); err != nil {
		return k, err
	}
	out, err := s.Store.CreateSigningKey(ctx, k)
	if err != nil {
		return out, err
	}
	out.PrivateKey, _, err = s.keys.Open(out.PrivateKey, signingKeyAD(out.Name))
	return out, err
}
