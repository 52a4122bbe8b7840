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

	"carrier/internal/store"
)

const eventColumns = `id, project_id, type, subject, data, attributes, idempotency_key, created_at`

// prefixColumns qualifies each column of a comma-separated list with alias.
func prefixColumns(cols, alias string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// eventRow holds the raw columns of an event while it is scanned.
type eventRow struct {
	e           store.Event
	data, attrs string
	created     int64
}

func (r *eventRow) dest() []any {
	e := &r.e
	return []any{&e.ID, &e.ProjectID, &e.Type, &e.Subject, &r.data, &r.attrs, &e.IdempotencyKey, &r.created}
}

func (r *eventRow) finish() store.Event {
	e := r.e
	e.Data = json.RawMessage(r.data)
	json.Unmarshal([]byte(r.attrs), &e.Attributes)
	e.CreatedAt = fromMS(r.created)
	return e
}

func scanEvent(row scanner) (store.Event, error) {
	var r eventRow
	if err := row.Scan(r.dest()...); err != nil {
		return store.Event{}, err
	}
	return r.finish(), nil
}

// InsertEvents inserts a batch of events and their deliveries in one
// transaction. An event's idempotency key (window idemSince) and its
// deduplication id (window ne.DedupSince, stored under store.DedupKeyPrefix)
// share the idempotency_keys table; a hit on either makes it a duplicate.
func (s *Store) InsertEvents(ctx context.Context, events []store.NewEvent, idemSince time.Time) ([]store.InsertResult, error) {
	results := make([]store.InsertResult, len(events))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		fresh := make([]int, 0, len(events))
		// inBatch maps (project, key) to the event of this batch that took the key:
		// its deliveries are not inserted yet, so they cannot be counted in the table.
		inBatch := map[[2]string]int{}
	next:
		for i, ne := range events {
			e := ne.Event
			results[i] = store.InsertResult{EventID: e.ID, Deliveries: len(ne.SubscriptionIDs)}
			type window struct {
				key   string
				since time.Time
			}
			var keys []window
			if e.IdempotencyKey != "" {
				keys = append(keys, window{e.IdempotencyKey, idemSince})
			}
			if ne.DeduplicationID != "" {
				keys = append(keys, window{store.DedupKeyPrefix + ne.DeduplicationID, ne.DedupSince})
			}
			var taken []string
			for _, w := range keys {
				if j, ok := inBatch[[2]string{e.ProjectID, w.key}]; ok {
					if err := s.releaseKeys(ctx, tx, e.ProjectID, e.ID, taken); err != nil {
						return err
					}
					results[i] = store.InsertResult{EventID: events[j].Event.ID, Duplicate: true, Deliveries: len(events[j].SubscriptionIDs)}
					continue next
				}
				dup, res, err := s.takeKey(ctx, tx, e, w.key, w.since)
				if err != nil {
					return err
				}
				if dup {
					if err := s.releaseKeys(ctx, tx, e.ProjectID, e.ID, taken); err != nil {
						return err
					}
					results[i] = res
					continue next
				}
				taken = append(taken, w.key)
			}
			for _, k := range taken {
				inBatch[[2]string{e.ProjectID, k}] = i
			}
			fresh = append(fresh, i)
		}
		if err := s.insertEventRows(ctx, tx, events, fresh); err != nil {
			return err
		}
		return s.insertDeliveryRows(ctx, tx, events, fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	return results, nil
}

// takeKey records key for event e unless the project used it since since. When
// it was, takeKey reports a duplicate with the original event's result.
func (s *Store) takeKey(ctx context.Context, tx *sql.Tx, e store.Event, key string, since time.Time) (bool, store.InsertResult, error) {
	var got string
	err := s.queryRow(ctx, tx, `INSERT INTO idempotency_keys (project_id, key, event_id, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (project_id, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
		WHERE idempotency_keys.created_at < $5 RETURNING event_id`,
		e.ProjectID, key, e.ID, ms(e.CreatedAt), ms(since)).Scan(&got)
	if err == nil {
		return false, store.InsertResult{}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, store.InsertResult{}, fmt.Errorf("idempotency key: %w", err)
	}
	var original string
	if err := tx.QueryRowContext(ctx, `SELECT event_id FROM idempotency_keys WHERE project_id = $1 AND key = $2`, e.ProjectID, key).Scan(&original); err != nil {
		return false, store.InsertResult{}, fmt.Errorf("idempotency key: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE event_id = $1`, original).Scan(&n); err != nil {
		return false, store.InsertResult{}, fmt.Errorf("idempotency key: %w", err)
	}
	return true, store.InsertResult{EventID: original, Duplicate: true, Deliveries: n}, nil
}

// releaseKeys forgets the keys an event took before another of its keys made
// it a duplicate. A key it took over had expired, so forgetting it is the same.
func (s *Store) releaseKeys(ctx context.Context, tx *sql.Tx, projectID, eventID string, keys []string) error {
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE project_id = $1 AND key = $2 AND event_id = $3`, projectID, k, eventID); err != nil {
			return fmt.Errorf("idempotency key: %w", err)
		}
	}
	return nil
}

var insertEvents = &bulk{
	name: "insert events", cols: 8, row: placeholders(8),
	head: `INSERT INTO events (` + eventColumns + `) VALUES `,
}

func (s *Store) insertEventRows(ctx context.Context, tx *sql.Tx, events []store.NewEvent, idx []int) error {
	rows := make([][]any, 0, len(idx))
	for _, i := range idx {
		e := events[i].Event
		attrs := "{}"
		if len(e.Attributes) > 0 {
			attrs = jsonText(e.Attributes)
		}
		data := string(e.Data)
		if data == "" {
			data = "null"
		}
		rows = append(rows, []any{e.ID, e.ProjectID, e.Type, e.Subject, data, attrs, e.IdempotencyKey, ms(e.CreatedAt)})
	}
	return s.run(ctx, tx, insertEvents, rows, nil)
}

// insertDeliveries creates pending deliveries, held when their subscription
// is inactive; a FIFO subscription's delivery gets the event's ordering key.
var insertDeliveries = &bulk{
	name: "insert deliveries", cols: 9,
	head: `INSERT INTO deliveries (id, project_id, subscription_id, event_id, event_type, next_attempt_at, created_at, updated_at,
		state, attempts, budget_start, lease_owner, lease_until, last_status, last_error, last_error_code, last_duration_ms, url, delivered_at, held, ordering_key) VALUES `,
	row: func(b *strings.Builder, n int) {
		fmt.Fprintf(b, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, 'pending', 0, 0, '', 0, 0, '', '', 0, '', 0, COALESCE((SELECT NOT active FROM subscriptions WHERE id = $%d), FALSE), "+
			"COALESCE((SELECT CAST($%d AS TEXT) FROM subscriptions WHERE id = $%d AND ordering = 'fifo'), ''))",
			n, n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+2, n+8, n+2)
	},
}

// orderingKey is the key a FIFO subscription orders an event's delivery by.
func orderingKey(ne *store.NewEvent) string {
	switch {
	case ne.OrderingKey != "":
		return ne.OrderingKey
	case ne.Event.Subject != "":
		return ne.Event.Subject
	}
	return store.DefaultOrderingKey
}

func (s *Store) insertDeliveryRows(ctx context.Context, tx *sql.Tx, events []store.NewEvent, idx []int) error {
	var rows [][]any
	for _, i := range idx {
		e := &events[i].Event
		at := ms(e.CreatedAt)
		key := orderingKey(&events[i])
		for k, sub := range events[i].SubscriptionIDs {
			rows = append(rows, []any{events[i].DeliveryIDs[k], e.ProjectID, sub, e.ID, e.Type, at, at, at, key})
		}
	}
	return s.run(ctx, tx, insertDeliveries, rows, nil)
}

// GetEvent reads one event of a project.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (store.Event, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1 AND project_id = $2`, id, projectID)
	e, err := scanEvent(row)
	if err != nil {
		return e, fmt.Errorf("get event: %w", notFound(err))
	}
	return e, nil
}

// ListEvents lists a project's events, newest first.
func (s *Store) ListEvents(ctx context.Context, projectID string, limit, offset int) ([]store.Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, projectID, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := []store.Event{}
	var b budget
	err = scanUpTo(rows, nil)(func(r *sql.Rows) error {
		e, err := scanEvent(r)
		if err != nil {
			return err
		}
		out = append(out, e)
		if b.full(e.Size()) {
			return errListFull
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// EventTypeExamples reads the project's newest scan events through the
// events_project index (newest first, so only scan rows are read), keeps the
// newest of each type and reads those events whole.
func (s *Store) EventTypeExamples(ctx context.Context, projectID string, scan, limit int) ([]store.Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id IN (
		SELECT id FROM (
			SELECT id, ROW_NUMBER() OVER (PARTITION BY type ORDER BY created_at DESC, id DESC) AS n FROM (
				SELECT id, type, created_at FROM events WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2
			) newest
		) ranked WHERE n = 1
	) AND project_id = $1 ORDER BY type LIMIT $3`, projectID, scan, limit)
	if err != nil {
		return nil, fmt.Errorf("event type examples: %w", err)
	}
	out := []store.Event{}
	var b budget
	err = scanUpTo(rows, nil)(func(r *sql.Rows) error {
		e, err := scanEvent(r)
		if err != nil {
			return err
		}
		out = append(out, e)
		if b.full(e.Size()) {
			return errListFull
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("event type examples: %w", err)
	}
	return out, nil
}

// Prune deletes up to limit events created before cutoff whose deliveries have
// all finished, together with those deliveries and their attempts; up to limit
// tasks completed before cutoff, with their history; up to limit dead letters
// redriven and last updated before cutoff; and up to limit expired idempotency
// keys. It returns the largest of the counts, so a caller that prunes again
// while the result equals limit catches up on every kind.
//
// One call is one short transaction whatever the fan-out: the events taken
// carry at most pruneFanout×limit deliveries between them (an event's
// deliveries go with it, so the first event is always taken), and when events
// are left out for that, the result is limit so the caller goes on.
func (s *Store) Prune(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		events, err := s.pruneEvents(ctx, tx, cutoff, limit)
		if err != nil {
			return err
		}
		keys, err := pruneIdempotencyKeys(ctx, tx, cutoff, limit)
		if err != nil {
			return err
		}
		tasks, err := s.pruneTasks(ctx, tx, cutoff, limit)
		if err != nil {
			return err
		}
		dead, err := pruneDeadLetters(ctx, tx, cutoff, limit)
		if err != nil {
			return err
		}
		n = max(events, keys, tasks, dead)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return n, nil
}

// pruneFanout is how many deliveries per event a prune batch allows on
// average: enough that ordinary fan-outs never cut a batch short, few enough
// that a batch of events that each went to a thousand subscriptions still
// deletes a bounded number of rows.
const pruneFanout = 10

// pruneEvents deletes up to limit finished events created before cutoff, with
// their deliveries and attempts, and returns how many events it deleted, or
// limit when it left some out to keep to the deliveries' bound.
func (s *Store) pruneEvents(ctx context.Context, tx *sql.Tx, cutoff time.Time, limit int) (int, error) {
	ids, err := scanIDs(tx.QueryContext(ctx, `SELECT e.id FROM events e WHERE e.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'retrying'))
		ORDER BY e.created_at LIMIT $2`, ms(cutoff), limit))
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	taken, err := s.withinFanout(ctx, tx, ids, pruneFanout*limit)
	if err != nil {
		return 0, err
	}
	list := jsonList(taken)
	// On PostgreSQL the attempts of a day go when its partition is dropped
	// (MaintainPartitions), a day after their deliveries at most; until then
	// ListAttempts shows none of a delivery that is gone. Only the default
	// partition is pruned row by row.
	attempts := "attempts"
	if s.dialect == Postgres {
		attempts = "attempts_default"
	}
	stmts := []string{
		`DELETE FROM ` + attempts + ` WHERE delivery_id IN (SELECT id FROM deliveries WHERE ` + s.idIn("event_id", 1) + `)`,
		`DELETE FROM deliveries WHERE ` + s.idIn("event_id", 1),
		`DELETE FROM events WHERE ` + s.idIn("id", 1),
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q, list); err != nil {
			return 0, err
		}
	}
	if len(taken) < len(ids) {
		return limit, nil
	}
	return len(taken), nil
}

// withinFanout returns the events of ids, in event id order, whose deliveries
// add up to at most bound (the first event whatever its count). It reads at
// most bound+1 entries of deliveries_event, in event id order, so every event
// before the last one read is counted whole and the rest are left out.
func (s *Store) withinFanout(ctx context.Context, tx *sql.Tx, ids []string, bound int) ([]string, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	rows, err := tx.QueryContext(ctx, `SELECT event_id FROM deliveries WHERE `+s.idIn("event_id", 1)+` ORDER BY event_id LIMIT $2`,
		jsonList(ids), bound+1)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	var read int
	var last string
	err = scanAll(rows, nil)(func(r *sql.Rows) error {
		if err := r.Scan(&last); err != nil {
			return err
		}
		count[last]++
		read++
		return nil
	})
	if err != nil {
		return nil, err
	}
	truncated := read > bound
	sum := 0
	for i, id := range ids {
		// Past the last event read, or at it, the count may be short.
		if i > 0 && (sum+count[id] > bound || truncated && id >= last) {
			return ids[:i], nil
		}
		sum += count[id]
	}
	return ids, nil
}

// pruneIdempotencyKeys deletes up to limit idempotency keys created before
// cutoff, oldest first, through idempotency_keys_created (migration 024), so a
// batch does not read the whole table.
func pruneIdempotencyKeys(ctx context.Context, tx *sql.Tx, cutoff time.Time, limit int) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE (project_id, key) IN (
		SELECT project_id, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, ms(cutoff), limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
