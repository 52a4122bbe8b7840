package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

// testIdempotentPublishRace: publishers racing with one idempotency key for
// one project (on PostgreSQL through separate stores, as separate processes
// are) store exactly one event with its deliveries, and every one of them is
// told that event's id and delivery count; a publisher of another project
// using the same key at the same time gets an event of its own. The same
// holds for a deduplication id. An upsert read as "look, then insert" lets
// two racers both insert, and this case sees two events.
func testIdempotentPublishRace(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	s1, s2, so := f.subscription(p.ID), f.subscription(p.ID), f.subscription(other.ID)
	stores := f.workerStores(4)
	const racers = 8
	window := f.at(-time.Hour)
	for round, r := range []struct {
		name string
		key  func(ne *store.NewEvent)
	}{
		{"idempotency key", func(ne *store.NewEvent) { ne.Event.IdempotencyKey = "race-key" }},
		{"deduplication id", func(ne *store.NewEvent) { ne.DeduplicationID, ne.DedupSince = "race-dedup", window }},
	} {
		events := make([]store.NewEvent, racers)
		for i := range events {
			events[i] = newEvent(p.ID, "task.created", f.at(time.Duration(round*racers+i)*time.Millisecond), s1.ID, s2.ID)
			r.key(&events[i])
		}
		outsider := newEvent(other.ID, "task.created", f.base, so.ID)
		r.key(&outsider)

		results := make([]store.InsertResult, racers+1)
		errs := make([]error, racers+1)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers + 1 {
			ne := outsider
			if i < racers {
				ne = events[i]
			}
			wg.Go(func() {
				<-start // all at once, as far as the scheduler lets them
				res, err := stores[i%len(stores)].InsertEvents(f.ctx, []store.NewEvent{ne}, window)
				switch {
				case err != nil:
					errs[i] = err
				case len(res) != 1:
					errs[i] = fmt.Errorf("%d results for one event", len(res))
				default:
					results[i], errs[i] = res[0], res[0].Err
				}
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: publisher %d: %v", r.name, i, err)
			}
		}

		winner := -1
		for i, res := range results[:racers] {
			if res.Duplicate {
				continue
			}
			if winner >= 0 {
				t.Errorf("%s: publishers %d and %d both stored their event", r.name, winner, i)
			}
			winner = i
		}
		if winner < 0 {
			t.Fatalf("%s: every publisher was told its event is a duplicate: %+v", r.name, results[:racers])
		}
		won := events[winner].Event.ID
		for i, res := range results[:racers] {
			check(t, fmt.Sprintf("%s: publisher %d's result", r.name, i), res, store.InsertResult{EventID: won, Duplicate: i != winner, Deliveries: 2})
			if i == winner {
				continue
			}
			_, err := f.s.GetEvent(f.ctx, p.ID, events[i].Event.ID)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: publisher %d's event: got error %v, want it not stored", r.name, i, err)
			}
		}
		got, err := f.s.GetEvent(f.ctx, p.ID, won)
		f.must(err)
		check(t, r.name+": the stored event", got, events[winner].Event)
		ds, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p.ID, EventID: won})
		f.must(err)
		check(t, r.name+": the stored event's deliveries", sorted(deliveryIDs(ds)), sorted(events[winner].DeliveryIDs))
		stored, err := f.s.ListEvents(f.ctx, p.ID, 100, 0)
		f.must(err)
		check(t, r.name+": events of the project", len(stored), round+1)
		check(t, r.name+": the other project's publisher", results[racers], store.InsertResult{EventID: outsider.Event.ID, Deliveries: 1})
	}
	all, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p.ID, Limit: 100})
	f.must(err)
	check(t, "deliveries of the project", len(all), 4)
}
