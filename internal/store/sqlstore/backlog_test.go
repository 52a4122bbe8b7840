package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"carrier/internal/store"
	"carrier/internal/store/sqlstore"
	"carrier/internal/store/storetest"
)

// TestCountBacklogReadsOnlyUnfinishedDeliveries checks that the queue-depth
// query counts pending and retrying deliveries, and that each engine plans it
// on the partial index deliveries_backlog, so a /metrics scrape reads the
// backlog and never the delivered and failed history kept for retention.
func TestCountBacklogReadsOnlyUnfinishedDeliveries(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			s, ok := e.Open(t).(*sqlstore.Store)
			if !ok {
				t.Fatal("the engine's store is not a *sqlstore.Store")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			writer, reader := s.DB()
			history := map[string]int{store.StateDelivered: 500, store.StateFailed: 20}
			backlog := map[string]int{store.StatePending: 7, store.StateRetrying: 3}
			insertDeliveries(t, ctx, writer, history, backlog)

			got, err := s.CountBacklog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := store.Counts{store.StatePending: 7, store.StateRetrying: 3}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("CountBacklog = %v, want %v", got, want)
			}

			plan := queryPlan(t, ctx, e.Name, reader)
			if !strings.Contains(plan, "deliveries_backlog") {
				t.Errorf("the backlog count does not use the index deliveries_backlog; plan:\n%s", plan)
			}
		})
	}
}

// insertDeliveries writes deliveries in the given states (held ones among the
// pending, which the backlog counts too), each with its own event id.
func insertDeliveries(t *testing.T, ctx context.Context, db *sql.DB, sets ...map[string]int) {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	n := 0
	for _, set := range sets {
		for state, count := range set {
			for range count {
				n++
				_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, project_id, subscription_id, event_id, event_type, state,
					attempts, budget_start, next_attempt_at, lease_owner, lease_until, last_status, last_error, last_error_code,
					last_duration_ms, url, created_at, updated_at, delivered_at, held)
					VALUES ($1, 'p', 's', $2, 't', $3, 0, 0, $4, '', 0, 0, '', '', 0, '', $4, $4, 0, $5)`,
					fmt.Sprintf("d%06d", n), fmt.Sprintf("e%06d", n), state, int64(n), n%2 == 0)
				if err != nil {
					t.Fatalf("insert %s delivery: %v", state, err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// queryPlan returns the engine's plan for the backlog query. PostgreSQL is
// told to avoid sequential scans, since on a small test table a scan is its
// cheapest plan; an index the query cannot use would still not be chosen.
func queryPlan(t *testing.T, ctx context.Context, engine string, db *sql.DB) string {
	return planOf(t, ctx, engine, db, sqlstore.BacklogQuery)
}

// planOf returns the engine's plan for query with args, as queryPlan does.
func planOf(t *testing.T, ctx context.Context, engine string, db *sql.DB, query string, args ...any) string {
	t.Helper()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	explain := "EXPLAIN QUERY PLAN "
	if engine == storetest.Postgres {
		explain = "EXPLAIN "
		if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(context.Background(), "RESET enable_seqscan")
	}
	rows, err := conn.QueryContext(ctx, explain+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		detail := vals[len(vals)-1]
		if raw, ok := detail.([]byte); ok {
			detail = string(raw)
		}
		fmt.Fprintln(&b, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEventsAfterReadsOnlyTheRuleTypes: the read of an event alert rule (the
// events of its types since its cursor) is planned on events_type on each
// engine, so a project's many events of other types are not walked every
// round while none of the rule's types arrives (40 ms a round at 52,000
// events before the index).
func TestEventsAfterReadsOnlyTheRuleTypes(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			s, ok := e.Open(t).(*sqlstore.Store)
			if !ok {
				t.Fatal("the engine's store is not a *sqlstore.Store")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, reader := s.DB()
			plan := planOf(t, ctx, e.Name, reader, sqlstore.EventsAfterQuery(2), int64(0), "", 100, "p", "webhook.disabled", "endpoint.recovered")
			if !strings.Contains(plan, "events_type") {
				t.Errorf("the alert rules' event read does not use the index events_type; plan:\n%s", plan)
			}
		})
	}
}
