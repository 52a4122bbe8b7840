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

// MaxLogPage is the largest page of the delivery log.
const MaxLogPage = 500

// DeliveryLog returns one page of a project's delivery log by keyset.
//
// Every page is ORDER BY created_at, id with a LIMIT, under an index whose
// order that is. Without a state filter it is one range of deliveries_log
// (project) or deliveries_subscription; with states, one range of
// deliveries_log_state or deliveries_subscription_state per state, merged:
// each branch reads at most a page, and the outer query keeps the first page
// of their union. The other filters (event type, answer class, time range,
// search) are checked on the rows the ranges yield.
func (s *Store) DeliveryLog(ctx context.Context, q store.DeliveryQuery) ([]store.Delivery, error) {
	query, args := DeliveryLogSQL(q)
	return s.queryDeliveries(ctx, "delivery log", query, args)
}

// DeliveryLogSQL is the statement and arguments DeliveryLog runs for q
// (the benchmark explains it).
func DeliveryLogSQL(q store.DeliveryQuery) (string, []any) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxLogPage)
	dir, cmp := "DESC", "<"
	if q.Oldest {
		dir, cmp = "ASC", ">"
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var where []string
	if q.SubscriptionID != "" {
		where = append(where, "subscription_id = "+arg(q.SubscriptionID), "project_id = "+arg(q.ProjectID))
	} else {
		where = append(where, "project_id = "+arg(q.ProjectID))
	}
	if q.EventType != "" {
		where = append(where, "event_type = "+arg(q.EventType))
	}
	switch {
	case q.StatusClass >= 2 && q.StatusClass <= 5:
		where = append(where, "last_status >= "+arg(q.StatusClass*100), "last_status < "+arg(q.StatusClass*100+100))
	case q.StatusClass == -1:
		where = append(where, "last_status = 0")
	}
	if q.From != nil {
		where = append(where, "created_at >= "+arg(ms(*q.From)))
	}
	if q.To != nil {
		where = append(where, "created_at < "+arg(ms(*q.To)))
	}

	if q.After != nil {
		where = append(where, "(created_at, id) "+cmp+" ("+arg(ms(q.After.CreatedAt))+", "+arg(q.After.ID)+")")
	}
	order := " ORDER BY created_at " + dir + ", id " + dir + " LIMIT " + arg(limit)
	base := "SELECT " + deliveryColumns + " FROM deliveries WHERE " + strings.Join(where, " AND ")
	if q.Search != "" {
		// A delivery id, an event id or a subject: each is one lookup of its
		// own index (an OR of them would be a filter over the whole range);
		// the few rows found are filtered and ordered here.
		v, p := arg(q.Search), arg(q.ProjectID)
		if len(q.States) > 0 {
			marks := make([]string, len(q.States))
			for i, st := range q.States {
				marks[i] = arg(st)
			}
			base += " AND state IN (" + strings.Join(marks, ", ") + ")"
		}
		branches := []string{
			base + " AND id = " + v,
			base + " AND event_id = " + v,
			base + " AND event_id IN (SELECT e.id FROM events e WHERE e.project_id = " + p + " AND e.subject = " + v + " AND e.subject <> '')",
		}
		return "SELECT * FROM (" + strings.Join(branches, " UNION ") + ") found" + order, args
	}
	states := q.States
	if len(states) == 0 {
		return base + order, args
	}
	if len(states) == 1 {
		return base + " AND state = " + arg(states[0]) + order, args
	}
	branches := make([]string, len(states))
	for i, st := range states {
		branches[i] = "SELECT * FROM (" + base + " AND state = " + arg(st) + order + ") b" + fmt.Sprint(i)
	}
	return "SELECT * FROM (" + strings.Join(branches, " UNION ALL ") + ") page" + order, args
}

// allStates are the states a delivery can be in.
var allStates = []string{store.StatePending, store.StateRetrying, store.StateDelivered, store.StateFailed}

// DeliveryMinutes counts a project's deliveries created since since by
// minute and state, over the deliveries_log range of that time.
func (s *Store) DeliveryMinutes(ctx context.Context, projectID string, since time.Time) ([]store.MinuteStat, error) {
	var out []store.MinuteStat
	// One range of deliveries_log_state per state.
	for _, state := range allStates {
		rows, err := s.reader.QueryContext(ctx, `SELECT created_at / 60000, COUNT(*) FROM deliveries
			WHERE project_id = $1 AND state = $2 AND created_at >= $3 GROUP BY created_at / 60000`, projectID, state, ms(since))
		if err != nil {
			return nil, fmt.Errorf("delivery minutes: %w", err)
		}
		for rows.Next() {
			var m int64
			st := store.MinuteStat{State: state}
			if err := rows.Scan(&m, &st.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("delivery minutes: %w", err)
			}
			st.Minute = fromMS(m * 60000)
			out = append(out, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("delivery minutes: %w", err)
		}
	}
	return out, nil
}

// DeliveryStates counts a project's deliveries in each state, reading at
// most limit+1 index entries per state (deliveries_log_state).
func (s *Store) DeliveryStates(ctx context.Context, projectID string, states []string, limit int) ([]store.StateCount, error) {
	out := make([]store.StateCount, 0, len(states))
	for _, st := range states {
		c := store.StateCount{State: st}
		if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE project_id = $1 AND state = $2 LIMIT $3) capped`,
			projectID, st, limit+1).Scan(&c.Count); err != nil {
			return nil, fmt.Errorf("delivery states: %w", err)
		}
		if c.Count > int64(limit) {
			c.Count, c.Capped = int64(limit), true
		}
		var oldest int64
		err := s.reader.QueryRowContext(ctx, `SELECT created_at FROM deliveries WHERE project_id = $1 AND state = $2 ORDER BY created_at LIMIT 1`,
			projectID, st).Scan(&oldest)
		if err == nil {
			t := fromMS(oldest)
			c.Oldest = &t
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("delivery states: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}
