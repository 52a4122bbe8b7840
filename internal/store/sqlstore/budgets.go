package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SpendBudget spends n of the named budget's limit for the window starting
// at window, and reports whether it could: in one statement, so nodes
// spending at once never take more than limit between them. Rows of
// windows that ended a day ago are deleted on the way.
func (s *Store) SpendBudget(ctx context.Context, name string, window time.Time, n, limit int) (bool, error) {
	var used int
	err := s.writer.QueryRowContext(ctx, `INSERT INTO budgets (name, window_start, used) SELECT CAST($1 AS TEXT), CAST($2 AS BIGINT), CAST($3 AS INTEGER) WHERE CAST($3 AS INTEGER) <= CAST($4 AS INTEGER)
		ON CONFLICT (name, window_start) DO UPDATE SET used = budgets.used + excluded.used
		WHERE budgets.used + excluded.used <= CAST($4 AS INTEGER) RETURNING used`, name, ms(window), n, limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("spend budget %s: %w", name, err)
	}
	if used == n { // the window's first spend: forget old windows
		if _, err := s.writer.ExecContext(ctx, `DELETE FROM budgets WHERE name = $1 AND window_start < $2`, name, ms(window.Add(-24*time.Hour))); err != nil {
			return true, fmt.Errorf("forget old budget windows: %w", err)
		}
	}
	return true, nil
}

// RefundBudget gives n back to the named budget's window (a spend that
// sent no request).
func (s *Store) RefundBudget(ctx context.Context, name string, window time.Time, n int) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE budgets SET used = CASE WHEN used > CAST($3 AS INTEGER) THEN used - CAST($3 AS INTEGER) ELSE 0 END WHERE name = $1 AND window_start = $2`, name, ms(window), n); err != nil {
		return fmt.Errorf("refund budget %s: %w", name, err)
	}
	return nil
}
