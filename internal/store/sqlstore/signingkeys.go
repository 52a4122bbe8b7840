package sqlstore

import (
	"context"
	"fmt"

	"carrier/internal/store"
)

// SigningKey reads the signing key named name.
func (s *Store) SigningKey(ctx context.Context, name string) (store.SigningKey, error) {
	var k store.SigningKey
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT name, private_key, certificate, created_at FROM signing_keys WHERE name = $1`, name).
		Scan(&k.Name, &k.PrivateKey, &k.Certificate, &created)
	if err != nil {
		return k, fmt.Errorf("get signing key: %w", notFound(err))
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

// CreateSigningKey stores k unless its name is taken, then reads back the
// stored key, so nodes racing to create it all end up with the first one.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error) {
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO signing_keys (name, private_key, certificate, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO NOTHING`, k.Name, k.PrivateKey, k.Certificate, ms(k.CreatedAt)); err != nil {
		return k, fmt.Errorf("create signing key: %w", err)
	}
	var out store.SigningKey
	var created int64
	err := s.writer.QueryRowContext(ctx, `SELECT name, private_key, certificate, created_at FROM signing_keys WHERE name = $1`, k.Name).
		Scan(&out.Name, &out.PrivateKey, &out.Certificate, &created)
	if err != nil {
		return out, fmt.Errorf("read signing key: %w", err)
	}
	out.CreatedAt = fromMS(created)
	return out, nil
}

// ReplaceSigningKeyPrivate writes a signing key's private key where it still is old.
func (s *Store) ReplaceSigningKeyPrivate(ctx context.Context, name, old, private string) error {
	return replaceWhere(ctx, s, "replace signing key", `UPDATE signing_keys SET private_key = $3 WHERE name = $1 AND private_key = $2`,
		`SELECT 1 FROM signing_keys WHERE name = $1`, name, old, private)
}

// AllSigningKeys lists the signing keys (for resealing them).
func (s *Store) AllSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT name, private_key, certificate, created_at FROM signing_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created int64
		if err := rows.Scan(&k.Name, &k.PrivateKey, &k.Certificate, &created); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.CreatedAt = fromMS(created)
		out = append(out, k)
	}
	return out, rows.Err()
}
