package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"carrier/internal/store"
)

const deadLetterColumns = `id, project_id, task_id, source, reason, message, method, query_string, body, content_type,
	status, redrives, last_error, created_at, updated_at, redriven_at`

func scanDeadLetter(row scanner) (store.DeadLetter, error) {
	var d store.DeadLetter
	var created, updated, redriven int64
	err := row.Scan(&d.ID, &d.ProjectID, &d.TaskID, &d.Source, &d.Reason, &d.Message, &d.Method, &d.Query, &d.Body, &d.ContentType,
		&d.Status, &d.Redrives, &d.LastError, &created, &updated, &redriven)
	if err != nil {
		return store.DeadLetter{}, err
	}
	d.CreatedAt = fromMS(created)
	d.UpdatedAt = fromMS(updated)
	d.RedrivenAt = fromMSPtr(redriven)
	return d, nil
}

// CreateDeadLetter inserts a dead letter. An id already in use is store.ErrConflict.
func (s *Store) CreateDeadLetter(ctx context.Context, d store.DeadLetter) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO dead_letters (`+deadLetterColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		d.ID, d.ProjectID, d.TaskID, d.Source, d.Reason, d.Message, d.Method, d.Query, d.Body, d.ContentType,
		d.Status, d.Redrives, d.LastError, ms(d.CreatedAt), ms(d.UpdatedAt), msPtr(d.RedrivenAt))
	if err != nil {
		return fmt.Errorf("insert dead letter: %w", conflict(err))
	}
	return nil
}

// GetDeadLetter reads one dead letter of a project.
func (s *Store) GetDeadLetter(ctx context.Context, projectID, id string) (store.DeadLetter, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE id = $1 AND project_id = $2`, id, projectID)
	d, err := scanDeadLetter(row)
	if err != nil {
		return d, fmt.Errorf("get dead letter: %w", notFound(err))
	}
	return d, nil
}

// ListDeadLetters lists a project's dead letters matching f, newest first (at
// most 100 when f.Limit is 0).
func (s *Store) ListDeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	l := newListing(f.ProjectID)
	l.eq("status", f.Status)
	l.eq("reason", f.Reason)
	l.eq("task_id", f.TaskID)
	l.eq("source", f.Source)
	l.created(f.From, f.To)
	q, args := l.query("dead_letters", deadLetterColumns, f.Limit, f.Offset)
	rows, err := s.reader.QueryContext(ctx, q, args...)
	out := []store.DeadLetter{}
	var b budget
	err = scanUpTo(rows, err)(func(r *sql.Rows) error {
		d, err := scanDeadLetter(r)
		if err != nil {
			return err
		}
		out = append(out, d)
		if b.full(d.Size()) {
			return errListFull
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// UpdateDeadLetter writes a project's dead letter's Status, Redrives,
// LastError, UpdatedAt and RedrivenAt.
func (s *Store) UpdateDeadLetter(ctx context.Context, d store.DeadLetter) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE dead_letters SET status = $1, redrives = $2, last_error = $3, updated_at = $4, redriven_at = $5
		WHERE id = $6 AND project_id = $7`,
		d.Status, d.Redrives, d.LastError, ms(d.UpdatedAt), msPtr(d.RedrivenAt), d.ID, d.ProjectID)
	if err != nil {
		return fmt.Errorf("update dead letter: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update dead letter: %w", store.ErrNotFound)
	}
	return nil
}

// CountDeadLetters counts dead letters by status across projects.
func (s *Store) CountDeadLetters(ctx context.Context) (store.Counts, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT status, COUNT(*) FROM dead_letters GROUP BY status`)
	c := store.Counts{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var status string
		var n int64
		if err := r.Scan(&status, &n); err != nil {
			return err
		}
		c[status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	return c, nil
}

// pruneDeadLetters deletes up to limit dead letters that were redriven and
// last updated before cutoff, and returns how many it deleted.
func pruneDeadLetters(ctx context.Context, tx *sql.Tx, cutoff time.Time, limit int) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id IN (
		SELECT id FROM dead_letters WHERE status = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3)`,
		store.DeadLetterRedriven, ms(cutoff), limit)
	if err != nil {
		return 0, fmt.Errorf("prune dead letters: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
