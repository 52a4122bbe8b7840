package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

const taskColumns = `id, project_id, method, params, metadata, status, provider_id, solution, via, error_code, error_message, cost,
	callback_token_hash, submit_attempts, next_submit_at, next_poll_at, polls, lease_owner, lease_until, version,
	created_at, updated_at, submitted_at, completed_at, expires_at, pingback_url`

// taskRow holds the raw columns of a task while it is scanned.
type taskRow struct {
	t                                                 store.Task
	params, metadata                                  string
	nextSubmit, nextPoll, leaseUntil                  int64
	created, updated, submitted, completed, expiresAt int64
}

func (r *taskRow) dest() []any {
	t := &r.t
	return []any{&t.ID, &t.ProjectID, &t.Method, &r.params, &r.metadata, &t.Status, &t.ProviderID, &t.Solution, &t.Via, &t.ErrorCode, &t.ErrorMessage, &t.Cost,
		&t.CallbackTokenHash, &t.SubmitAttempts, &r.nextSubmit, &r.nextPoll, &t.Polls, &t.LeaseOwner, &r.leaseUntil, &t.Version,
		&r.created, &r.updated, &r.submitted, &r.completed, &r.expiresAt, &t.PingbackURL}
}

func (r *taskRow) finish() store.Task {
	t := r.t
	t.Params = map[string]string{}
	json.Unmarshal([]byte(r.params), &t.Params)
	if r.metadata != "" && r.metadata != "null" {
		t.Metadata = json.RawMessage(r.metadata)
	}
	t.NextSubmitAt = fromMS(r.nextSubmit)
	t.NextPollAt = fromMS(r.nextPoll)
	t.LeaseUntil = fromMS(r.leaseUntil)
	t.CreatedAt = fromMS(r.created)
	t.UpdatedAt = fromMS(r.updated)
	t.SubmittedAt = fromMSPtr(r.submitted)
	t.CompletedAt = fromMSPtr(r.completed)
	t.ExpiresAt = fromMS(r.expiresAt)
	return t
}

func scanTask(row scanner) (store.Task, error) {
	var r taskRow
	if err := row.Scan(r.dest()...); err != nil {
		return store.Task{}, err
	}
	return r.finish(), nil
}

// scanTasks reads every task of rows.
func scanTasks(rows *sql.Rows, err error) ([]store.Task, error) {
	out := []store.Task{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		t, err := scanTask(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

// CreateTask inserts a task (with its Version as given) and its "created"
// history entry in one transaction. A task id or callback token hash already
// in use is store.ErrConflict.
func (s *Store) CreateTask(ctx context.Context, t store.Task) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO tasks (`+taskColumns+`) VALUES
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
			t.ID, t.ProjectID, t.Method, jsonText(nonNilMap(t.Params)), metadataText(t.Metadata), t.Status, t.ProviderID, t.Solution, t.Via,
			t.ErrorCode, t.ErrorMessage, t.Cost, t.CallbackTokenHash, t.SubmitAttempts, ms(t.NextSubmitAt), ms(t.NextPollAt), t.Polls,
			t.LeaseOwner, ms(t.LeaseUntil), t.Version,
			ms(t.CreatedAt), ms(t.UpdatedAt), msPtr(t.SubmittedAt), msPtr(t.CompletedAt), ms(t.ExpiresAt), t.PingbackURL)
		if err != nil {
			return conflict(err)
		}
		return s.insertHistory(ctx, tx, []store.TaskEntry{{TaskID: t.ID, ProjectID: t.ProjectID, Kind: store.TaskCreated, Message: "accepted by Carrier", At: t.CreatedAt}})
	})
	if err != nil {
		return fmt.Errorf("insert task: %w", err)
	}
	return nil
}

// GetTask reads one task of a project.
func (s *Store) GetTask(ctx context.Context, projectID, id string) (store.Task, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1 AND project_id = $2`, id, projectID)
	t, err := scanTask(row)
	if err != nil {
		return t, fmt.Errorf("get task: %w", notFound(err))
	}
	return t, nil
}

// TaskByTokenHash finds a task of any project by its callback token hash. An
// empty hash matches nothing.
func (s *Store) TaskByTokenHash(ctx context.Context, hash string) (store.Task, error) {
	if hash == "" {
		return store.Task{}, fmt.Errorf("get task by token: %w", store.ErrNotFound)
	}
	row := s.reader.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE callback_token_hash = $1 AND callback_token_hash <> ''`, hash)
	t, err := scanTask(row)
	if err != nil {
		return t, fmt.Errorf("get task by token: %w", notFound(err))
	}
	return t, nil
}

// ListTasks lists a project's tasks matching f, newest first (at most 100
// when f.Limit is 0).
func (s *Store) ListTasks(ctx context.Context, f store.TaskFilter) ([]store.Task, error) {
	l := newListing(f.ProjectID)
	l.eq("status", f.Status)
	l.created(f.From, f.To)
	q, args := l.query("tasks", taskColumns, f.Limit, f.Offset)
	rows, err := s.reader.QueryContext(ctx, q, args...)
	out := []store.Task{}
	var b budget
	err = scanUpTo(rows, err)(func(r *sql.Rows) error {
		t, err := scanTask(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		if b.full(t.Size()) {
			return errListFull
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

// TaskHistory lists a project's task's entries, oldest first (by time, then
// in the order they were added). Another project's task has no entries.
func (s *Store) TaskHistory(ctx context.Context, projectID, taskID string) ([]store.TaskEntry, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, task_id, project_id, kind, message, detail, at FROM task_history
		WHERE task_id = $1 AND project_id = $2 ORDER BY at, seq, id`, taskID, projectID)
	out := []store.TaskEntry{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var e store.TaskEntry
		var detail string
		var at int64
		if err := r.Scan(&e.ID, &e.TaskID, &e.ProjectID, &e.Kind, &e.Message, &detail, &at); err != nil {
			return err
		}
		e.Detail = json.RawMessage(detail)
		e.At = fromMS(at)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("task history: %w", err)
	}
	return out, nil
}

var insertHistory = &bulk{
	name: "insert task history", cols: 8, row: placeholders(8),
	head: `INSERT INTO task_history (id, task_id, project_id, seq, kind, message, detail, at) VALUES `,
}

// insertHistory inserts entries, numbering each task's entries after the ones
// it already has. An empty ID gets a UUIDv7, an empty Detail "null".
func (s *Store) insertHistory(ctx context.Context, tx *sql.Tx, entries []store.TaskEntry) error {
	if len(entries) == 0 {
		return nil
	}
	seqs := map[string]int64{} // task id -> last seq used
	rows := make([][]any, 0, len(entries))
	for _, e := range entries {
		seq, ok := seqs[e.TaskID]
		if !ok {
			if err := s.queryRow(ctx, tx, `SELECT COALESCE(MAX(seq), 0) FROM task_history WHERE task_id = $1`, e.TaskID).Scan(&seq); err != nil {
				return fmt.Errorf("task history: %w", err)
			}
		}
		seq++
		seqs[e.TaskID] = seq
		if e.ID == "" {
			e.ID = newUUID()
		}
		rows = append(rows, []any{e.ID, e.TaskID, e.ProjectID, seq, e.Kind, e.Message, metadataText(e.Detail), ms(e.At)})
	}
	if err := s.run(ctx, tx, insertHistory, rows, nil); err != nil {
		return conflict(err)
	}
	return nil
}

// AppendTaskHistory adds entries without changing any task. An empty ID gets
// a UUIDv7 and an empty Detail is stored as "null".
func (s *Store) AppendTaskHistory(ctx context.Context, entries []store.TaskEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.insertHistory(ctx, tx, entries) }); err != nil {
		return fmt.Errorf("append task history: %w", err)
	}
	return nil
}

// UpdateTask writes every mutable field of t (all but ID, ProjectID, Method,
// Params, Metadata and CreatedAt; CallbackTokenHash changes with every
// submission try) and appends entries, in one transaction, only if the stored
// version is still version; the stored version becomes version+1 and the task
// is returned as stored. Entries with an empty ID get a UUIDv7, with an empty
// TaskID or ProjectID t's, with a zero At t.UpdatedAt. A changed version (or a
// callback token hash another task has) is store.ErrConflict and writes
// nothing; a task missing from t.ProjectID is store.ErrNotFound.
// Events are written to the outbox in the same transaction: a status change
// and the event announcing it commit together or not at all.
func (s *Store) UpdateTask(ctx context.Context, t store.Task, version int64, entries []store.TaskEntry, events ...store.OutboxEvent) (store.Task, error) {
	var out store.Task
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		row := s.queryRow(ctx, tx, `UPDATE tasks SET status = $1, provider_id = $2, solution = $3, via = $4, error_code = $5, error_message = $6,
			cost = $7, submit_attempts = $8, next_submit_at = $9, next_poll_at = $10, polls = $11,
			lease_owner = $12, lease_until = $13, updated_at = $14, submitted_at = $15, completed_at = $16, expires_at = $17,
			callback_token_hash = $21, version = version + 1
			WHERE id = $18 AND project_id = $19 AND version = $20 RETURNING `+taskColumns,
			t.Status, t.ProviderID, t.Solution, t.Via, t.ErrorCode, t.ErrorMessage,
			t.Cost, t.SubmitAttempts, ms(t.NextSubmitAt), ms(t.NextPollAt), t.Polls,
			t.LeaseOwner, ms(t.LeaseUntil), ms(t.UpdatedAt), msPtr(t.SubmittedAt), msPtr(t.CompletedAt), ms(t.ExpiresAt),
			t.ID, t.ProjectID, version, t.CallbackTokenHash)
		var err error
		out, err = scanTask(row)
		if errors.Is(err, sql.ErrNoRows) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tasks WHERE id = $1 AND project_id = $2`, t.ID, t.ProjectID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return store.ErrNotFound
			}
			return fmt.Errorf("%w: task %s is no longer at version %d", store.ErrConflict, t.ID, version)
		}
		if err != nil {
			return conflict(err)
		}
		filled := make([]store.TaskEntry, len(entries))
		for i, e := range entries {
			if e.TaskID == "" {
				e.TaskID = t.ID
			}
			if e.ProjectID == "" {
				e.ProjectID = t.ProjectID
			}
			if e.At.IsZero() {
				e.At = t.UpdatedAt
			}
			filled[i] = e
		}
		if err := s.insertHistory(ctx, tx, filled); err != nil {
			return err
		}
		for _, e := range events {
			if err := insertOutbox(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Task{}, fmt.Errorf("update task: %w", err)
	}
	return out, nil
}

// ClaimTasksToSubmit leases up to len(tokenHashes) pending tasks whose
// submission is due and whose lease, if any, has run out, to owner until
// now+lease, oldest due first; the i-th claimed task gets tokenHashes[i] and
// one more submission try. Each claim bumps the task's version; the tasks are
// returned as stored, with the new version. PostgreSQL skips rows another claimer has
// locked; SQLite's single writer serialises claims.
func (s *Store) ClaimTasksToSubmit(ctx context.Context, owner string, tokenHashes []string, lease time.Duration, now time.Time) ([]store.Task, error) {
	limit := len(tokenHashes)
	if limit == 0 {
		return []store.Task{}, nil
	}
	picked := `SELECT id FROM tasks WHERE status = 'pending' AND next_submit_at <= $3 AND lease_until < $3
		ORDER BY next_submit_at, id LIMIT $4`
	claim := `UPDATE tasks SET lease_owner = $1, lease_until = $2, version = version + 1 WHERE id IN (` + picked + `) RETURNING ` + taskColumns
	if s.dialect == Postgres {
		// Rows locked by a concurrent claim are skipped; a locked row is checked
		// against the conditions again once locked.
		claim = `WITH picked AS (` + picked + ` FOR UPDATE SKIP LOCKED)
			UPDATE tasks SET lease_owner = $1, lease_until = $2, version = version + 1
			WHERE id = ANY(ARRAY(SELECT id FROM picked)) RETURNING ` + taskColumns
	}
	var out []store.Task
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = scanTasks(s.query(ctx, tx, claim, owner, ms(now.Add(lease)), ms(now), limit)); err != nil {
			return err
		}
		slices.SortFunc(out, func(a, b store.Task) int {
			if c := a.NextSubmitAt.Compare(b.NextSubmitAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		// The submission try starts here: its token and count are durable
		// before the provider hears of it, in the claim's own commit.
		for i := range out {
			out[i].CallbackTokenHash = tokenHashes[i]
			out[i].SubmitAttempts++
			if _, err := s.exec(ctx, tx, `UPDATE tasks SET callback_token_hash = $1, submit_attempts = $2 WHERE id = $3`,
				out[i].CallbackTokenHash, out[i].SubmitAttempts, out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	return out, nil
}

// TasksToPoll lists up to limit submitted tasks whose next poll is due (at or
// before now; an unset NextPollAt is due), most overdue first.
func (s *Store) TasksToPoll(ctx context.Context, now time.Time, limit int) ([]store.Task, error) {
	out, err := scanTasks(s.reader.QueryContext(ctx, `SELECT `+taskColumns+` FROM tasks
		WHERE status = 'submitted' AND next_poll_at <= $1 ORDER BY next_poll_at, id LIMIT $2`, ms(now), limit))
	if err != nil {
		return nil, fmt.Errorf("tasks to poll: %w", err)
	}
	return out, nil
}

// TasksToExpire lists up to limit pending or submitted tasks whose ExpiresAt
// is set and before now, earliest first.
func (s *Store) TasksToExpire(ctx context.Context, now time.Time, limit int) ([]store.Task, error) {
	out, err := scanTasks(s.reader.QueryContext(ctx, `SELECT `+taskColumns+` FROM tasks
		WHERE status IN ('pending', 'submitted') AND expires_at > 0 AND expires_at < $1 ORDER BY expires_at, id LIMIT $2`, ms(now), limit))
	if err != nil {
		return nil, fmt.Errorf("tasks to expire: %w", err)
	}
	return out, nil
}

// NextTaskDueAt tells when the earliest pending task's submission is due,
// leased or not; ok is false when no task is pending.
func (s *Store) NextTaskDueAt(ctx context.Context) (time.Time, bool, error) {
	// A leased task is due when its lease runs out, not before: claiming it
	// earlier finds nothing.
	var next sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `SELECT MIN(CASE WHEN lease_until > next_submit_at THEN lease_until ELSE next_submit_at END) FROM tasks WHERE status = 'pending'`).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next task due: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(next.Int64), true, nil
}

// TryLock takes the named lock for owner until until when it is free or
// expired (its until is before now), or renews it when owner holds it. It
// reports whether owner holds the lock now. One statement does it, so of two
// owners racing for a free lock exactly one wins.
func (s *Store) TryLock(ctx context.Context, name, owner string, until, now time.Time) (bool, error) {
	var got string
	err := s.writer.QueryRowContext(ctx, `INSERT INTO locks (name, owner, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE locks.until < $4 OR locks.owner = excluded.owner RETURNING owner`, name, owner, ms(until), ms(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("try lock %s: %w", name, err)
	}
	return got == owner, nil
}

// Unlock releases the named lock if owner holds it, and does nothing otherwise.
func (s *Store) Unlock(ctx context.Context, name, owner string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("unlock %s: %w", name, err)
	}
	return nil
}

// pruneTasks deletes up to limit tasks completed before cutoff, with their
// history, and returns how many it deleted.
func (s *Store) pruneTasks(ctx context.Context, tx *sql.Tx, cutoff time.Time, limit int) (int, error) {
	ids, err := scanIDs(tx.QueryContext(ctx, `SELECT id FROM tasks WHERE completed_at > 0 AND completed_at < $1 ORDER BY completed_at LIMIT $2`, ms(cutoff), limit))
	if err != nil {
		return 0, fmt.Errorf("prune tasks: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list := jsonList(ids)
	for _, q := range []string{
		`DELETE FROM task_history WHERE task_id IN (` + s.inList(1) + `)`,
		`DELETE FROM tasks WHERE ` + s.idIn("id", 1),
	} {
		if _, err := tx.ExecContext(ctx, q, list); err != nil {
			return 0, fmt.Errorf("prune tasks: %w", err)
		}
	}
	return len(ids), nil
}
