package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"carrier/internal/store"
)

// backlogQuery counts unfinished deliveries by state. Its WHERE is the
// predicate of the partial index deliveries_backlog, spelled exactly as in
// the migration (literals, not parameters), so both engines answer it from
// that index without reading the finished history.
const backlogQuery = `SELECT state, COUNT(*) FROM deliveries WHERE state IN ('pending', 'retrying') GROUP BY state`

// CountBacklog counts pending and retrying deliveries by state.
func (s *Store) CountBacklog(ctx context.Context) (store.Counts, error) {
	rows, err := s.reader.QueryContext(ctx, backlogQuery)
	c := store.Counts{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var state string
		var n int64
		if err := r.Scan(&state, &n); err != nil {
			return err
		}
		c[state] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count delivery backlog: %w", err)
	}
	return c, nil
}
