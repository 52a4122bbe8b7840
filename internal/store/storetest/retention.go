package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// testPruneFanoutBatches checks that one Prune call deletes a bounded number
// of rows however wide the fan-out: with limit 2 a batch takes at most 20
// deliveries, so events that each went to 20 subscriptions are pruned one per
// call, each call that left one out reporting limit so the caller goes on,
// and what has not
// expired or has not finished is kept whole.
func testPruneFanoutBatches(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	const fanout = 20
	var subs []string
	for range fanout {
		subs = append(subs, f.subscription(p.ID).ID)
	}
	old := f.at(-48 * time.Hour)
	var expired []store.NewEvent
	for i := range 6 {
		ne := newEvent(p.ID, "t", old.Add(time.Duration(i)*time.Millisecond), subs...)
		f.insert(ne)
		expired = append(expired, ne)
	}
	stuck := newEvent(p.ID, "t", old.Add(10*time.Millisecond), subs...) // one delivery left pending
	recent := newEvent(p.ID, "t", f.at(-time.Minute), subs...)
	f.insert(stuck, recent)

	var outs []store.Outcome
	for _, j := range f.claim("w", f.base, 1000) {
		if j.Delivery.ID != stuck.DeliveryIDs[0] {
			outs = append(outs, outcome(j, store.StateDelivered, f.base))
		}
	}
	check(t, "outcomes", len(outs), 8*fanout-1)
	f.complete(f.base, outs...)
	f.must(f.s.ReleaseLeases(f.ctx, "w"))

	cutoff := f.at(-24 * time.Hour)
	for i := range len(expired) {
		n, err := f.s.Prune(f.ctx, cutoff, 2)
		f.must(err)
		want := 2 // one event taken, the next left out for the bound
		if i == len(expired)-1 {
			want = 1 // the last expired event: nothing was left out
		}
		check(t, fmt.Sprintf("batch %d result", i), n, want)
		counts, err := f.s.CountDeliveries(f.ctx)
		f.must(err)
		wantCounts := store.Counts{store.StateDelivered: int64(8*fanout - 1 - (i+1)*fanout), store.StatePending: 1}
		check(t, fmt.Sprintf("deliveries after batch %d", i), counts, wantCounts)
	}
	n, err := f.s.Prune(f.ctx, cutoff, 2)
	f.must(err)
	check(t, "last batch", n, 0)

	for _, ne := range expired {
		_, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID)
		wantErr(t, "GetEvent(pruned)", err, store.ErrNotFound)
		for _, id := range ne.DeliveryIDs {
			attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
			f.must(err)
			check(t, "attempts of pruned delivery", len(attempts), 0)
		}
	}
	for _, ne := range []store.NewEvent{stuck, recent} {
		if _, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID); err != nil {
			t.Errorf("kept event %s: %v", ne.Event.ID, err)
		}
		for i, id := range ne.DeliveryIDs {
			f.getDelivery(p.ID, id)
			attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
			f.must(err)
			want := 1
			if ne.Event.ID == stuck.Event.ID && i == 0 {
				want = 0
			}
			check(t, "attempts of kept delivery", len(attempts), want)
		}
	}
}

// testPruneKeys checks that expired idempotency keys are pruned in batches of
// limit too (the result counts them: their events still have a pending
// delivery, so they are kept), and that a key still in its window keeps
// deduplicating.
func testPruneKeys(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	old := f.at(-48 * time.Hour)
	for i := range 5 {
		ne := newEvent(p.ID, "t", old.Add(time.Duration(i)*time.Millisecond), sub.ID)
		ne.Event.IdempotencyKey = fmt.Sprintf("old-%d", i)
		f.insert(ne)
	}
	fresh := newEvent(p.ID, "t", f.at(-time.Minute))
	fresh.Event.IdempotencyKey = "fresh"
	f.insert(fresh)

	cutoff := f.at(-24 * time.Hour)
	// 5 keys to go: 2, 2, then the last one.
	for i, want := range []int{2, 2, 1, 0} {
		n, err := f.s.Prune(f.ctx, cutoff, 2)
		f.must(err)
		check(t, fmt.Sprintf("batch %d result", i), n, want)
	}
	again := newEvent(p.ID, "t", f.base)
	again.Event.IdempotencyKey = "fresh"
	res, err := f.s.InsertEvents(f.ctx, []store.NewEvent{again}, f.at(-24*time.Hour))
	f.must(err)
	check(t, "duplicate of the kept key", res[0].Duplicate, true)
	check(t, "original event", res[0].EventID, fresh.Event.ID)
}

// idAt is a UUIDv7 of time t: delivery ids as they were made at t.
func idAt(t time.Time) string {
	u := uuid.Must(uuid.NewV7())
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u.String()
}

// testPartitionRetention checks PostgreSQL's attempts partitions: the days
// ahead are created (once), a day that retention has passed is dropped whole
// with the attempts the pruner would delete, the attempts it keeps (a sibling
// of a delivery still pending) survive in the default partition, a later day
// is untouched, and attempts are still recorded for a dropped day. On SQLite
// there are no partitions and nothing changes.
func testPartitionRetention(t *testing.T, e Storage) {
	f := setup(t, e)
	parts, ok := f.s.(store.Partitions)
	if !ok {
		t.Fatal("the store does not implement store.Partitions")
	}
	p := f.project()
	s1, s2 := f.subscription(p.ID), f.subscription(p.ID)
	now := time.Now().UTC()
	tomorrow := now.Truncate(24 * time.Hour).Add(24 * time.Hour) // where migration 025's first partition ends

	rep, err := parts.MaintainPartitions(f.ctx, now, 72*time.Hour, 0)
	f.must(err)
	day := func(t time.Time) string { return "attempts_p" + t.Format("20060102") }
	wantCreated := []string{day(tomorrow), day(tomorrow.Add(24 * time.Hour)), day(tomorrow.Add(48 * time.Hour))}
	if e.Name == "sqlite" {
		wantCreated = nil
	}
	check(t, "created", rep.Created, wantCreated)
	rep, err = parts.MaintainPartitions(f.ctx, now, 72*time.Hour, 0)
	f.must(err)
	check(t, "created again", len(rep.Created), 0)

	// Deliveries made on the second day ahead and on the third.
	mk := func(at time.Time) store.NewEvent {
		ne := newEvent(p.ID, "t", f.base, s1.ID, s2.ID)
		for i := range ne.DeliveryIDs {
			ne.DeliveryIDs[i] = idAt(at)
		}
		f.insert(ne)
		return ne
	}
	second := tomorrow.Add(24*time.Hour + time.Hour)
	done := mk(second)
	stuck := mk(second)
	later := mk(second.Add(24 * time.Hour))
	var outs []store.Outcome
	for _, j := range f.claim("w", f.base, 100) {
		if j.Delivery.ID != stuck.DeliveryIDs[0] {
			outs = append(outs, outcome(j, store.StateDelivered, f.base))
		}
	}
	check(t, "outcomes", len(outs), 5)
	f.complete(f.base, outs...)
	f.must(f.s.ReleaseLeases(f.ctx, "w"))

	// A month after the second day: it and every day before it have expired.
	month := second.Add(31 * 24 * time.Hour)
	rep, err = parts.MaintainPartitions(f.ctx, month, 72*time.Hour, 30*24*time.Hour)
	f.must(err)
	attempts := func(id string) int {
		got, err := f.s.ListAttempts(f.ctx, p.ID, id)
		f.must(err)
		return len(got)
	}
	if e.Name == "sqlite" {
		check(t, "report", rep, store.PartitionReport{})
		check(t, "attempts of done", attempts(done.DeliveryIDs[0])+attempts(done.DeliveryIDs[1]), 2)
		return
	}
	want := []string{"attempts_legacy", day(tomorrow), day(tomorrow.Add(24 * time.Hour))}
	slices.Sort(rep.Dropped)
	slices.Sort(want)
	check(t, "dropped", rep.Dropped, want)
	check(t, "kept", rep.Kept, 1)
	check(t, "attempts of done", attempts(done.DeliveryIDs[0])+attempts(done.DeliveryIDs[1]), 0)
	check(t, "attempts of stuck's delivered sibling", attempts(stuck.DeliveryIDs[1]), 1)
	check(t, "attempts of later", attempts(later.DeliveryIDs[0])+attempts(later.DeliveryIDs[1]), 2)

	// The stuck delivery still records its attempt: its day is gone, so
	// the default partition takes it.
	jobs := f.claim("w", f.base.Add(time.Hour), 100)
	check(t, "claimed", len(jobs), 1)
	f.complete(f.base.Add(time.Hour), outcome(jobs[0], store.StateDelivered, f.base.Add(time.Hour)))
	check(t, "attempts of stuck", attempts(stuck.DeliveryIDs[0]), 1)
}
