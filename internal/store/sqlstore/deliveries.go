package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"carrier/internal/store"
)

const deliveryColumns = `id, project_id, subscription_id, event_id, event_type, ordering_key, state, attempts, budget_start, next_attempt_at,
	last_status, last_error, last_error_code, last_duration_ms, url, created_at, updated_at, delivered_at`

// deliveryRow holds the raw columns of a delivery while it is scanned.
type deliveryRow struct {
	d                                 store.Delivery
	next, created, updated, delivered int64
}

func (r *deliveryRow) dest() []any {
	d := &r.d
	return []any{&d.ID, &d.ProjectID, &d.SubscriptionID, &d.EventID, &d.EventType, &d.OrderingKey, &d.State, &d.Attempts, &d.BudgetStart, &r.next,
		&d.LastStatus, &d.LastError, &d.LastErrorCode, &d.LastDurationMS, &d.URL, &r.created, &r.updated, &r.delivered}
}

func (r *deliveryRow) finish() store.Delivery {
	d := r.d
	d.NextAttemptAt = fromMS(r.next)
	d.CreatedAt = fromMS(r.created)
	d.UpdatedAt = fromMS(r.updated)
	d.DeliveredAt = fromMSPtr(r.delivered)
	return d
}

func scanDelivery(row scanner) (store.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(r.dest()...); err != nil {
		return store.Delivery{}, err
	}
	return r.finish(), nil
}

// GetDelivery reads one delivery of a project.
func (s *Store) GetDelivery(ctx context.Context, projectID, id string) (store.Delivery, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = $1 AND project_id = $2`, id, projectID)
	d, err := scanDelivery(row)
	if err != nil {
		return d, fmt.Errorf("get delivery: %w", notFound(err))
	}
	return d, nil
}

// ListDeliveries lists deliveries matching f, newest first.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	l := newListing(f.ProjectID)
	l.eq("subscription_id", f.SubscriptionID)
	l.eq("event_id", f.EventID)
	l.eq("state", f.State)
	l.created(f.From, f.To)
	q, args := l.query("deliveries", deliveryColumns, f.Limit, f.Offset)
	return s.queryDeliveries(ctx, "list deliveries", q, args)
}

// queryDeliveries runs a query of deliveryColumns and scans its rows.
func (s *Store) queryDeliveries(ctx context.Context, what, q string, args []any) ([]store.Delivery, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []store.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// ListAttempts lists a delivery's attempts in order, none when the delivery
// is gone: on PostgreSQL a pruned delivery's attempts stay until their
// partition is dropped.
func (s *Store) ListAttempts(ctx context.Context, projectID, deliveryID string) ([]store.Attempt, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, delivery_id, project_id, number, url, status_code, duration_ms, error_code, error_message, response_body, response_headers, created_at
		FROM attempts WHERE delivery_id = $1 AND project_id = $2 AND EXISTS (SELECT 1 FROM deliveries WHERE id = $1) ORDER BY number`, deliveryID, projectID)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	out := []store.Attempt{}
	for rows.Next() {
		var a store.Attempt
		var created int64
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.ProjectID, &a.Number, &a.URL, &a.StatusCode, &a.DurationMS, &a.ErrorCode, &a.ErrorMessage, &a.ResponseBody, &a.ResponseHeaders, &created); err != nil {
			return nil, fmt.Errorf("list attempts: %w", err)
		}
		a.CreatedAt = fromMS(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// isHead is true for a delivery (alias d) that has no ordering key, or that is
// the head of its (subscription, ordering key): no other delivery of that key
// waiting (pending or retrying) comes before it in publish order, created_at
// then id. Ids are UUIDv7 made in publish order within a process, so they
// break created_at ties of one group commit in publish order. The subquery is
// served by the partial index deliveries_fifo_head, and deliveries without an
// ordering key never reach it.
func isHead(d string) string {
	return `(` + d + `.ordering_key = '' OR NOT EXISTS (SELECT 1 FROM deliveries h
		WHERE h.subscription_id = ` + d + `.subscription_id AND h.ordering_key = ` + d + `.ordering_key
		AND h.state IN ('pending', 'retrying') AND h.ordering_key <> ''
		AND (h.created_at < ` + d + `.created_at OR (h.created_at = ` + d + `.created_at AND h.id < ` + d + `.id))))`
}

// claimWindow is how many due rows a claim considers per row it may take, so
// one subscription's backlog cannot hide the others' deliveries.
const claimWindow = 4

// ClaimDeliveries leases due deliveries to opts.Owner and returns them with
// their events and subscriptions.
func (s *Store) ClaimDeliveries(ctx context.Context, opts store.ClaimOptions) ([]store.Job, error) {
	now := ms(opts.Now)
	until := ms(opts.Now.Add(opts.Lease))
	per := opts.PerSubscription
	if per <= 0 {
		per = opts.Limit
	}
	perProject := opts.PerProject
	if perProject <= 0 {
		perProject = opts.Limit
	}
	// picked chooses due deliveries, oldest first, at most $5 per subscription,
	// looking at a window of $7 candidates; held deliveries (of inactive
	// subscriptions) are not in the due index at all. A FIFO delivery that is
	// not its key's head is not a candidate, so blocked followers neither take
	// the window's places nor get claimed; since a key has one head, one claim
	// never takes two deliveries of a key. Under concurrent claims the head's
	// lease (and, on PostgreSQL, its row lock) keeps it to one claimer, and a
	// follower becomes head only once the head is delivered or failed.
	//
	// Fairness between tenants: deliveries of the projects in $8 (at their
	// share of this process's budget) are not candidates, and one claim takes
	// at most $9 of any one project, so a project whose endpoints hang can
	// hold only its share, never the whole budget.
	//
	// The window: the earliest $7 due rows, read from deliveries_due in
	// order. With projects left out, walking that index would pass every due
	// row of theirs (a hanging project's whole backlog) on each claim, on
	// SQLite while holding the one writer every publish needs; so the window
	// is read per other project instead, from deliveries_due_project: at most
	// $7 rows of each, the earliest $7 of those (the same rows). That costs
	// one index probe per project, which is cheap next to a backlog.
	due := func(d string) string {
		return `SELECT ` + d + `.id, ` + d + `.project_id, ` + d + `.subscription_id, ` + d + `.next_attempt_at
			FROM deliveries ` + d + ` JOIN subscriptions s ON s.id = ` + d + `.subscription_id
			WHERE ` + d + `.state IN ('pending', 'retrying') AND NOT ` + d + `.held AND ` + d + `.next_attempt_at <= $3 AND ` + d + `.lease_until < $3 AND s.active
			AND ` + d + `.subscription_id NOT IN (` + s.inList(4) + `) AND ` + isHead(d)
	}
	// The limits are written "$n + 0", not "$n": the SQLite that
	// modernc.org/sqlite embeds reads a bare bound LIMIT while planning, and
	// then re-prepares the statement every time that parameter is bound.
	// Every claim binds them, so the claim, one of the largest statements,
	// was parsed and planned anew on each call: a third of Carrier's CPU at
	// a paced 100 events/s (carrier bench, phase "paced").
	window := due("d") + ` AND d.project_id NOT IN (` + s.inList(8) + `) ORDER BY d.next_attempt_at LIMIT $7 + 0`
	if len(opts.ExcludeProjects) > 0 {
		perProject := due("d") + ` AND d.project_id = p.id ORDER BY d.next_attempt_at LIMIT $7 + 0`
		if s.dialect == Postgres {
			window = `SELECT w.id, w.project_id, w.subscription_id, w.next_attempt_at FROM projects p CROSS JOIN LATERAL (` + perProject + `) w
				WHERE p.id NOT IN (` + s.inList(8) + `) ORDER BY w.next_attempt_at LIMIT $7 + 0`
		} else {
			// No LATERAL in SQLite: CROSS JOIN keeps projects the outer loop,
			// so the correlated window is read once per project.
			window = `SELECT w.id, w.project_id, w.subscription_id, w.next_attempt_at FROM projects p CROSS JOIN deliveries w
				WHERE p.id NOT IN (` + s.inList(8) + `) AND w.id IN (SELECT id FROM (` + perProject + `))
				ORDER BY w.next_attempt_at LIMIT $7 + 0`
		}
	}
	picked := `SELECT id FROM (
			SELECT id, next_attempt_at, rn, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY next_attempt_at) AS pn FROM (
				SELECT id, project_id, next_attempt_at, ROW_NUMBER() OVER (PARTITION BY subscription_id ORDER BY next_attempt_at) AS rn FROM (
					` + window + `
				) c
			) x WHERE rn <= $5
		) y WHERE pn <= $9 ORDER BY next_attempt_at LIMIT $6 + 0`
	claim := `UPDATE deliveries SET lease_owner = $1, lease_until = $2, lease_token = lease_token + 1 WHERE id IN (` + picked + `) RETURNING id, lease_token`
	if s.dialect == Postgres {
		// Lock only the rows picked, skipping any another node is claiming now;
		// the lease condition is checked again under the lock.
		claim = `WITH picked AS (` + picked + `), locked AS (
				SELECT id FROM deliveries WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND lease_until < $3
				AND state IN ('pending', 'retrying') FOR UPDATE SKIP LOCKED
			)
			UPDATE deliveries SET lease_owner = $1, lease_until = $2, lease_token = lease_token + 1 WHERE id = ANY(ARRAY(SELECT id FROM locked)) RETURNING id, lease_token`
	}
	var jobs []store.Job
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var ids []string
		tokens := map[string]int64{}
		err := scanAll(s.query(ctx, tx, claim, opts.Owner, until, now, jsonList(opts.Exclude), per, opts.Limit, opts.Limit*claimWindow,
			jsonList(opts.ExcludeProjects), perProject))(func(r *sql.Rows) error {
			var id string
			var token int64
			if err := r.Scan(&id, &token); err != nil {
				return err
			}
			ids = append(ids, id)
			tokens[id] = token
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		q := `SELECT ` + prefixColumns(deliveryColumns, "d") + `, ` + prefixColumns(eventColumns, "e") + `, ` + subscriptionColumnsAs("s") + `
			FROM deliveries d JOIN events e ON e.id = d.event_id JOIN subscriptions s ON s.id = d.subscription_id
			WHERE ` + s.idIn("d.id", 1) + ` ORDER BY d.next_attempt_at`
		jrows, err := s.query(ctx, tx, q, jsonList(ids))
		if err != nil {
			return err
		}
		defer jrows.Close()
		for jrows.Next() {
			var dr deliveryRow
			var er eventRow
			var sr subscriptionRow
			dest := append(append(dr.dest(), er.dest()...), sr.dest()...)
			if err := jrows.Scan(dest...); err != nil {
				return err
			}
			d := dr.finish()
			jobs = append(jobs, store.Job{Delivery: d, Event: er.finish(), Subscription: sr.finish(), LeaseOwner: opts.Owner, LeaseToken: tokens[d.ID]})
		}
		return jrows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return jobs, nil
}

// CompleteAttempts records attempts and advances their deliveries, and
// reports the subscriptions deactivated as a result (see
// CompleteAttemptsWithSignals).
func (s *Store) CompleteAttempts(ctx context.Context, outcomes []store.Outcome, now time.Time) ([]store.Disabled, error) {
	signals, err := s.CompleteAttemptsWithSignals(ctx, outcomes, now)
	if err != nil {
		return nil, err
	}
	return store.DisabledBy(signals), nil
}

// CompleteAttemptsWithSignals records attempts and advances their
// deliveries, in one transaction and a handful of statements however large
// the batch: one read of the counters of the subscriptions concerned, one
// UPDATE per chunk of deliveries, one multi-row INSERT of attempts, and one
// counter UPDATE per subscription (more for one that is disabled).
func (s *Store) CompleteAttemptsWithSignals(ctx context.Context, outcomes []store.Outcome, now time.Time) ([]store.HealthSignal, error) {
	var signals []store.HealthSignal
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		signals = nil
		if len(outcomes) == 0 {
			return nil
		}
		counters, err := s.readCounters(ctx, tx, outcomes)
		if err != nil {
			return err
		}
		numbers := map[string]int{}  // delivery id -> attempt number, for the outcomes whose lease held
		tokens := map[string]int64{} // delivery id -> the token of the claim whose outcome was applied
		if err := s.updateDeliveries(ctx, tx, outcomes, now, numbers, tokens); err != nil {
			return err
		}
		recorded := make([]store.Outcome, 0, len(numbers))
		for _, o := range outcomes {
			// One batch can hold two outcomes of one delivery (a node paused
			// past its lease claimed it again): only the current claim's is
			// recorded, so the attempt count and rows agree.
			if t, ok := tokens[o.DeliveryID]; ok && t == o.LeaseToken {
				recorded = append(recorded, o)
				delete(tokens, o.DeliveryID)
			}
		}
		if err := s.insertAttempts(ctx, tx, recorded, numbers); err != nil {
			return err
		}
		signals, err = s.applyHealth(ctx, tx, recorded, counters, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("complete attempts: %w", err)
	}
	return signals, nil
}

// completeDeliveries moves deliveries to their new states where the outcome's
// claim (owner and token) still holds the lease, and returns each one's
// attempt number.
var completeDeliveries = &bulk{
	name: "complete deliveries", cols: 13,
	head: `WITH v (id, owner, state, next_at, status, err, code, dur, url, delivered, updated, spare, token) AS (VALUES `,
	row: func(b *strings.Builder, n int) {
		fmt.Fprintf(b, "(CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS BIGINT), CAST($%d AS INTEGER), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS INTEGER), CAST($%d AS BIGINT))",
			n, n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12)
	},
	tail: `) UPDATE deliveries SET state = v.state, attempts = deliveries.attempts + 1, budget_start = deliveries.budget_start + v.spare, next_attempt_at = v.next_at,
		lease_owner = '', lease_until = 0, last_status = v.status, last_error = v.err, last_error_code = v.code,
		last_duration_ms = v.dur, url = v.url, updated_at = v.updated, delivered_at = v.delivered
		FROM v WHERE deliveries.id = v.id AND deliveries.lease_owner = v.owner AND v.owner <> '' AND deliveries.lease_token = v.token
		RETURNING deliveries.id, deliveries.attempts, deliveries.lease_token`,
}

func (s *Store) updateDeliveries(ctx context.Context, tx *sql.Tx, outcomes []store.Outcome, now time.Time, numbers map[string]int, tokens map[string]int64) error {
	rows := make([][]any, 0, len(outcomes))
	for _, o := range outcomes {
		a := o.Attempt
		delivered := int64(0)
		if o.State == store.StateDelivered {
			delivered = ms(a.CreatedAt)
		}
		spare := 0
		if o.SpareRetry {
			spare = 1
		}
		rows = append(rows, []any{o.DeliveryID, o.LeaseOwner, o.State, ms(o.NextAttemptAt), a.StatusCode, a.ErrorMessage, a.ErrorCode, a.DurationMS, a.URL, delivered, ms(now), spare, o.LeaseToken})
	}
	return s.run(ctx, tx, completeDeliveries, rows, func(r *sql.Rows) error {
		var id string
		var n int
		var token int64
		if err := r.Scan(&id, &n, &token); err != nil {
			return err
		}
		numbers[id], tokens[id] = n, token
		return nil
	})
}

var insertAttempts = &bulk{
	name: "insert attempts", cols: 12, row: placeholders(12),
	head: `INSERT INTO attempts (id, delivery_id, project_id, number, url, status_code, duration_ms, error_code, error_message, response_body, response_headers, created_at) VALUES `,
}

func (s *Store) insertAttempts(ctx context.Context, tx *sql.Tx, recorded []store.Outcome, numbers map[string]int) error {
	rows := make([][]any, 0, len(recorded))
	for _, o := range recorded {
		a := o.Attempt
		rows = append(rows, []any{a.ID, o.DeliveryID, o.ProjectID, numbers[o.DeliveryID], a.URL, a.StatusCode, a.DurationMS, a.ErrorCode, a.ErrorMessage, a.ResponseBody, a.ResponseHeaders, ms(a.CreatedAt)})
	}
	return s.run(ctx, tx, insertAttempts, rows, nil)
}

// renewLeases extends the leases whose claim (owner and token) still holds.
var renewLeases = &bulk{
	name: "renew leases", cols: 4,
	head: `WITH v (id, token, owner, until) AS (VALUES `,
	row:  renewRow,
	tail: `) UPDATE deliveries SET lease_until = v.until FROM v
		WHERE deliveries.id = v.id AND deliveries.lease_owner = v.owner AND deliveries.lease_token = v.token
		AND deliveries.lease_until > 0 AND deliveries.lease_until < v.until`,
}

// renewLeasesPostgres skips the rows another transaction holds: the node's
// own completion of them, which clears the lease anyway. Waiting for it
// instead deadlocked, the two locking one node's rows in different orders.
var renewLeasesPostgres = &bulk{
	name: "renew leases", cols: 4,
	head: `WITH v (id, token, owner, until) AS (VALUES `,
	row:  renewRow,
	tail: `), locked AS (SELECT d.id, v.until FROM deliveries d JOIN v ON d.id = v.id
			WHERE d.lease_owner = v.owner AND d.lease_token = v.token AND d.lease_until > 0 AND d.lease_until < v.until
			FOR UPDATE OF d SKIP LOCKED)
		UPDATE deliveries SET lease_until = locked.until FROM locked WHERE deliveries.id = locked.id`,
}

func renewRow(b *strings.Builder, n int) {
	fmt.Fprintf(b, "(CAST($%d AS TEXT), CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS BIGINT))", n, n+1, n+2, n+3)
}

// RenewLeases extends the leases owner holds, claim by claim: a lease given
// back by the rescuer or claimed again since (a process paused past it) is
// not extended.
func (s *Store) RenewLeases(ctx context.Context, owner string, leases []store.Lease, until time.Time) error {
	if len(leases) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(leases))
	for _, l := range leases {
		rows = append(rows, []any{l.DeliveryID, l.Token, owner, ms(until)})
	}
	q := renewLeases
	if s.dialect == Postgres {
		q = renewLeasesPostgres
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.run(ctx, tx, q, rows, nil) }); err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	return nil
}

// ReleaseLeases gives back every lease held by owner.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	if _, err := s.writer.ExecContext(ctx, `UPDATE deliveries SET lease_owner = '', lease_until = 0 WHERE lease_owner = $1`, owner); err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return nil
}

// Heartbeat records that owner is alive.
func (s *Store) Heartbeat(ctx context.Context, owner string, now time.Time) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, owner, ms(now))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// RemoveNode forgets a process that is shutting down.
func (s *Store) RemoveNode(ctx context.Context, owner string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, owner); err != nil {
		return fmt.Errorf("remove node: %w", err)
	}
	return nil
}

// RescueLeases releases the leases of owners that stopped sending heartbeats.
func (s *Store) RescueLeases(ctx context.Context, self string, staleBefore time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET lease_owner = '', lease_until = 0
			WHERE lease_until > 0 AND lease_owner <> $1
			AND lease_owner NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= $2)`, self, ms(staleBefore))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		// Tasks a dead process was submitting are tried again at once.
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET lease_owner = '', lease_until = 0, version = version + 1
			WHERE lease_until > 0 AND lease_owner <> $1
			AND lease_owner NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= $2)`, self, ms(staleBefore)); err != nil {
			return err
		}
		// Outbox rows a dead relay had claimed are published by the next claim,
		// without waiting for their lease to run out.
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_owner = '', lease_until = 0
			WHERE lease_until > 0 AND lease_owner <> $1
			AND lease_owner NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= $2)`, self, ms(staleBefore)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM nodes WHERE id <> $1 AND heartbeat_at < $2`, self, ms(staleBefore))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rescue leases: %w", err)
	}
	return int(n), nil
}

// NextDueAt tells when the earliest waiting, unleased, unheld delivery is due.
// FIFO deliveries that are not their key's head are left out: they cannot be
// claimed, and counting them would have the dispatcher poll for nothing.
func (s *Store) NextDueAt(ctx context.Context) (time.Time, bool, error) {
	now := ms(time.Now())
	var row *sql.Row
	if st := s.nextDue(ctx); st != nil {
		row = st.QueryRowContext(ctx, now)
	} else {
		row = s.reader.QueryRowContext(ctx, nextDueQuery, now)
	}
	var next int64
	err := row.Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", err)
	}
	return fromMS(next), true, nil
}

// nextDueQuery is NextDueAt's statement.
var nextDueQuery = `SELECT d.next_attempt_at FROM deliveries d
	WHERE d.state IN ('pending', 'retrying') AND NOT d.held AND d.lease_until < $1 AND ` + isHead("d") + `
	ORDER BY d.next_attempt_at LIMIT 1`

// nextDue returns NextDueAt's statement prepared on the reader, kept in the
// statement cache under a key of its own ("reader" and the text). The engine
// asks after nearly every claim that leaves it idle (at 100 events/s, over a
// hundred times a second), and unprepared, SQLite parsed and planned it each
// time: a quarter of Carrier's CPU at that rate once the claim itself was
// prepared. database/sql prepares it once per reader connection.
func (s *Store) nextDue(ctx context.Context) *sql.Stmt {
	key := "reader\x00" + nextDueQuery
	if st, ok := s.stmts.Load(key); ok {
		return st.(*sql.Stmt)
	}
	st, err := s.reader.PrepareContext(ctx, nextDueQuery)
	if err != nil {
		return nil // run unprepared, which reports the error; prepare again next time
	}
	if prev, loaded := s.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// heldExpr is true for a delivery whose subscription is inactive.
const heldExpr = `COALESCE((SELECT NOT s.active FROM subscriptions s WHERE s.id = deliveries.subscription_id), FALSE)`

// ReplayDelivery puts a delivery back to pending with a fresh retry budget.
func (s *Store) ReplayDelivery(ctx context.Context, projectID, subscriptionID, deliveryID string, now time.Time) (store.Delivery, error) {
	// Clearing the (expired) lease owner keeps a late outcome of the previous
	// owner from being recorded against the restarted delivery.
	res, err := s.writer.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', budget_start = attempts, next_attempt_at = $1, updated_at = $1, delivered_at = 0, held = `+heldExpr+`,
		lease_owner = '', lease_until = 0
		WHERE id = $2 AND project_id = $3 AND subscription_id = $4 AND lease_until < $1`, ms(now), deliveryID, projectID, subscriptionID)
	if err != nil {
		return store.Delivery{}, fmt.Errorf("replay delivery: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		d, err := s.GetDelivery(ctx, projectID, deliveryID)
		if err != nil || d.SubscriptionID != subscriptionID {
			return store.Delivery{}, fmt.Errorf("replay delivery: %w", store.ErrNotFound)
		}
		return d, fmt.Errorf("replay delivery: %w: an attempt is in flight", store.ErrConflict)
	}
	return s.GetDelivery(ctx, projectID, deliveryID)
}

// RecoverDeliveries replays a subscription's failed deliveries in a time range.
func (s *Store) RecoverDeliveries(ctx context.Context, f store.RecoverFilter, now time.Time) (int, error) {
	q := `UPDATE deliveries SET state = 'pending', budget_start = attempts, next_attempt_at = $1, updated_at = $1, held = ` + heldExpr + `
		WHERE project_id = $2 AND subscription_id = $3 AND state = 'failed' AND created_at >= $4 AND created_at <= $5`
	args := []any{ms(now), f.ProjectID, f.SubscriptionID, ms(f.From), ms(f.To)}
	if len(f.EventTypes) > 0 {
		q += ` AND event_type IN (` + s.inList(6) + `)`
		args = append(args, jsonList(f.EventTypes))
	}
	res, err := s.writer.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("recover deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CountDeliveries counts deliveries by state.
func (s *Store) CountDeliveries(ctx context.Context) (store.Counts, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT state, COUNT(*) FROM deliveries GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	c := store.Counts{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		c[state] = n
	}
	return c, rows.Err()
}
