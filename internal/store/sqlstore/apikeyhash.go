package sqlstore

import (
	"context"
	"fmt"

	"carrier/internal/store"
)

// SetAPIKeyHash replaces the stored hash of a key (found by id), for the
// at-rest layer to move a key to the current server secret once it is used.
func (s *Store) SetAPIKeyHash(ctx context.Context, keyID, hash string) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE api_keys SET hash = $1 WHERE id = $2`, hash, keyID)
	if err != nil {
		return fmt.Errorf("set api key hash: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set api key hash: %w", store.ErrNotFound)
	}
	return nil
}
