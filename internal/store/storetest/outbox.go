package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

// disableAll publishes one event to each subscription, claims them and
// completes each with a 410 (disable), all at `at`; it returns what
// CompleteAttempts reported.
func (f *fixture) disableAll(at time.Time, subs ...store.Subscription) []store.Disabled {
	f.t.Helper()
	for _, s := range subs {
		f.publish(s.ProjectID, "t", f.at(-time.Minute), s.ID)
	}
	jobs := f.claim("w-"+newID(), at, len(subs)*2)
	if len(jobs) != len(subs) {
		f.t.Fatalf("claimed %d jobs, want %d", len(jobs), len(subs))
	}
	var outs []store.Outcome
	for _, j := range jobs {
		o := outcome(j, store.StateFailed, at)
		o.Attempt.StatusCode, o.Disable, o.DisableReason = 410, true, "endpoint returned 410 Gone"
		outs = append(outs, o)
	}
	return f.complete(at, outs...)
}

func (f *fixture) claimOutbox(owner string, now time.Time, limit int) []store.OutboxEvent {
	f.t.Helper()
	rows, err := f.s.ClaimOutbox(f.ctx, owner, time.Minute, now, limit)
	f.must(err)
	return rows
}

// testOutbox: CompleteAttempts writes webhook.disabled to the outbox with the
// deactivation (once per subscription, nothing for failures that do not
// disable); claims lease rows, which come back when the lease runs out or its
// owner is rescued; a deleted row is gone.
func testOutbox(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	check(t, "outbox before any disable", len(f.claimOutbox("n1", f.base, 10)), 0)

	// A failure that does not disable writes nothing.
	other := f.subscription(p.ID)
	f.publish(p.ID, "t", f.at(-time.Minute), other.ID)
	jobs := f.claim("w", f.base, 10)
	check(t, "claimed", len(jobs), 1)
	f.complete(f.at(time.Second), outcome(jobs[0], store.StateRetrying, f.at(time.Second)))
	check(t, "outbox after a plain failure", len(f.claimOutbox("n1", f.at(time.Second), 10)), 0)

	dis := f.disableAll(f.at(time.Second), sub)
	check(t, "disabled", len(dis), 1)
	rows := f.claimOutbox("n1", f.at(2*time.Second), 10)
	if len(rows) != 1 {
		t.Fatalf("outbox rows after a disable: %+v, want one", rows)
	}
	row := rows[0]
	if row.ID == "" {
		t.Error("outbox row without an id")
	}
	check(t, "project", row.ProjectID, p.ID)
	check(t, "type", row.Type, "webhook.disabled")
	check(t, "subject", row.Subject, sub.ID)
	check(t, "created at", row.CreatedAt, f.at(time.Second))
	var data map[string]any
	if err := json.Unmarshal(row.Data, &data); err != nil {
		t.Fatalf("data %s: %v", row.Data, err)
	}
	check(t, "data", data, map[string]any{
		"webhook_id": sub.ID, "reason": "endpoint returned 410 Gone", "consecutive_failures": float64(1),
		"disabled_at": f.at(time.Second).Format(time.RFC3339Nano),
	})

	// Leased: no one else gets it until the lease runs out, then the same row (same id) comes back.
	check(t, "claimed again while leased", len(f.claimOutbox("n2", f.at(3*time.Second), 10)), 0)
	again := f.claimOutbox("n2", f.at(2*time.Second+time.Minute+time.Millisecond), 10)
	check(t, "claimed after the lease ran out", again, rows)

	// A dead owner's lease is rescued at once.
	_, err := f.s.RescueLeases(f.ctx, "n3", f.at(time.Hour))
	f.must(err)
	check(t, "claimed after rescue", f.claimOutbox("n3", f.at(2*time.Minute), 10), rows)

	f.must(f.s.DeleteOutbox(f.ctx, row.ID))
	f.must(f.s.DeleteOutbox(f.ctx, row.ID)) // already gone: no error
	check(t, "outbox after delete", len(f.claimOutbox("n4", f.at(time.Hour), 10)), 0)
}

// testOutboxConcurrentClaimers: relays on several nodes claiming at once
// never get the same row, and together get every row.
func testOutboxConcurrentClaimers(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	const total = 24
	var subs []store.Subscription
	for range total {
		subs = append(subs, f.subscription(p.ID))
	}
	check(t, "disabled", len(f.disableAll(f.base, subs...)), total)

	const workers = 4
	// On PostgreSQL each worker is its own store (as separate processes are);
	// SQLite allows one process per data directory, so its workers share one.
	stores := []store.Store{f.s}
	for len(stores) < workers {
		if e.Shared {
			stores = append(stores, e.Open(t))
		} else {
			stores = append(stores, f.s)
		}
	}
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	claimed := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total { // bounded: each round claims at least one row or stops
				rows, err := stores[w].ClaimOutbox(ctx, newID(), time.Minute, f.at(time.Second), 3)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, r := range rows {
					claimed[r.ID]++
				}
				mu.Unlock()
				if err != nil || len(rows) == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	check(t, "rows claimed", len(claimed), total)
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("outbox row %s claimed %d times", id, n)
		}
	}
}
