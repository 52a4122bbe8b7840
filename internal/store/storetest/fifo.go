package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

// fifoSub creates a FIFO subscription.
func (f *fixture) fifoSub(projectID string) store.Subscription {
	f.t.Helper()
	return f.subscription(projectID, func(s *store.Subscription) { s.Ordering = store.OrderingFIFO })
}

// keyedEvent builds an event with an ordering key (subject "" when key is "").
func keyedEvent(projectID, key string, at time.Time, subs ...string) store.NewEvent {
	ne := newEvent(projectID, "task.created", at, subs...)
	ne.OrderingKey = key
	return ne
}

func testFIFOHeadOnly(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	fifo, plain := f.fifoSub(p.ID), f.subscription(p.ID)
	check(t, "subscription ordering round trip", f.getSub(p.ID, fifo.ID).Ordering, store.OrderingFIFO)

	// Three events of key a in one group commit (same created_at), one of key b,
	// one with only a subject and one with neither (key "_").
	a1 := keyedEvent(p.ID, "a", f.at(-time.Minute), fifo.ID, plain.ID)
	a2 := keyedEvent(p.ID, "a", f.at(-time.Minute), fifo.ID, plain.ID)
	a3 := keyedEvent(p.ID, "a", f.at(-time.Minute), fifo.ID, plain.ID)
	b1 := keyedEvent(p.ID, "b", f.at(-30*time.Second), fifo.ID)
	subj := keyedEvent(p.ID, "", f.at(-20*time.Second), fifo.ID)
	none := keyedEvent(p.ID, "", f.at(-10*time.Second), fifo.ID)
	none.Event.Subject = ""
	f.insert(a1, a2, a3, b1, subj, none)
	check(t, "fifo delivery key", f.getDelivery(p.ID, a2.DeliveryIDs[0]).OrderingKey, "a")
	check(t, "plain delivery key", f.getDelivery(p.ID, a2.DeliveryIDs[1]).OrderingKey, "")
	check(t, "subject key", f.getDelivery(p.ID, subj.DeliveryIDs[0]).OrderingKey, subj.Event.Subject)
	check(t, "default key", f.getDelivery(p.ID, none.DeliveryIDs[0]).OrderingKey, store.DefaultOrderingKey)

	jobs := f.claim("n1", f.base, 100)
	got := map[string]bool{}
	for _, j := range jobs {
		got[j.Delivery.ID] = true
	}
	want := []string{a1.DeliveryIDs[0], b1.DeliveryIDs[0], subj.DeliveryIDs[0], none.DeliveryIDs[0],
		a1.DeliveryIDs[1], a2.DeliveryIDs[1], a3.DeliveryIDs[1]}
	if len(jobs) != len(want) {
		t.Fatalf("claimed %d deliveries %v, want the heads and every plain delivery %v", len(jobs), jobIDs(jobs), want)
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("delivery %s not claimed", id)
		}
	}
	if at, ok, err := f.s.NextDueAt(f.ctx); err != nil || ok {
		t.Errorf("NextDueAt with only leased heads and blocked followers: %v %v %v, want none", at, ok, err)
	}
	// Nothing more while the heads are leased.
	check(t, "claim while heads in flight", len(f.claim("n2", f.base, 100)), 0)
	// a1 delivered: a2 (and only a2) becomes claimable.
	var a1job store.Job
	for _, j := range jobs {
		if j.Delivery.ID == a1.DeliveryIDs[0] {
			a1job = j
		}
	}
	f.complete(f.base, outcome(a1job, store.StateDelivered, f.base))
	check(t, "after head delivered", jobIDs(f.claim("n2", f.base, 100)), []string{a2.DeliveryIDs[0]})
}

func testFIFORetryingHead(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.fifoSub(p.ID)
	a1 := keyedEvent(p.ID, "a", f.at(-time.Minute), sub.ID)
	a2 := keyedEvent(p.ID, "a", f.at(-time.Minute+time.Millisecond), sub.ID)
	b1 := keyedEvent(p.ID, "b", f.at(-time.Minute+2*time.Millisecond), sub.ID)
	b2 := keyedEvent(p.ID, "b", f.at(-time.Minute+3*time.Millisecond), sub.ID)
	f.insert(a1, a2, b1, b2)
	jobs := f.claim("n1", f.base, 10)
	check(t, "heads", len(jobs), 2)
	var ja, jb store.Job
	for _, j := range jobs {
		if j.Delivery.ID == a1.DeliveryIDs[0] {
			ja = j
		} else {
			jb = j
		}
	}
	check(t, "b head", jb.Delivery.ID, b1.DeliveryIDs[0])
	// a1 fails and retries in a minute; b1 is delivered.
	f.complete(f.base, outcome(ja, store.StateRetrying, f.base), outcome(jb, store.StateDelivered, f.base))
	check(t, "retrying head blocks only its key", jobIDs(f.claim("n1", f.base, 10)), []string{b2.DeliveryIDs[0]})
	at, ok, err := f.s.NextDueAt(f.ctx)
	f.must(err)
	check(t, "NextDueAt is the retrying head's", [2]any{at, ok}, [2]any{f.at(time.Minute), true})
	// When the retry falls due, a1 (not a2) is claimed; failing for good lets a2 go.
	later := f.at(time.Minute)
	jobs = f.claim("n1", later, 10)
	check(t, "retry due", jobIDs(jobs), []string{a1.DeliveryIDs[0]})
	f.complete(later, outcome(jobs[0], store.StateFailed, later))
	check(t, "failed head releases the next", jobIDs(f.claim("n1", later, 10)), []string{a2.DeliveryIDs[0]})
}

func testFIFOConcurrentClaimers(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.fifoSub(p.ID)
	const keys, per = 5, 20
	var events []store.NewEvent
	order := map[string]int{} // delivery id -> position in its key
	keyOf := map[string]string{}
	for i := range per {
		for k := range keys {
			ne := keyedEvent(p.ID, fmt.Sprint("k", k), f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub.ID)
			events = append(events, ne)
			order[ne.DeliveryIDs[0]] = i
			keyOf[ne.DeliveryIDs[0]] = ne.OrderingKey
		}
	}
	f.insert(events...)
	const workers = 4
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
	inFlight := map[string]string{} // key -> delivery id held
	next := map[string]int{}        // key -> position expected next
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			for range 10 * keys * per {
				jobs, err := stores[w].ClaimDeliveries(ctx, store.ClaimOptions{Owner: owner, Limit: 10, Lease: 10 * time.Minute, Now: f.base})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				mu.Lock()
				done := len(next) == keys
				for _, n := range next {
					done = done && n == per
				}
				outs := make([]store.Outcome, 0, len(jobs))
				for _, j := range jobs {
					id := j.Delivery.ID
					k := keyOf[id]
					if other, ok := inFlight[k]; ok {
						errs = append(errs, fmt.Errorf("key %s: %s claimed while %s in flight", k, id, other))
					}
					if order[id] != next[k] {
						errs = append(errs, fmt.Errorf("key %s: claimed position %d, want %d", k, order[id], next[k]))
					}
					inFlight[k] = id
					outs = append(outs, outcome(j, store.StateDelivered, f.base))
				}
				mu.Unlock()
				if done {
					return
				}
				if len(jobs) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				// Clear the in-flight marks before completing: once completed, the
				// next of the key may be claimed by anyone.
				mu.Lock()
				for _, j := range jobs {
					delete(inFlight, keyOf[j.Delivery.ID])
					next[keyOf[j.Delivery.ID]]++
				}
				mu.Unlock()
				if _, err := stores[w].CompleteAttempts(ctx, outs, f.base); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for k := range keys {
		check(t, fmt.Sprint("delivered of k", k), next[fmt.Sprint("k", k)], per)
	}
}

func testFIFODedup(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	s1, s2 := f.subscription(p1.ID), f.subscription(p2.ID)
	ins := func(events ...store.NewEvent) []store.InsertResult {
		t.Helper()
		res, err := f.s.InsertEvents(f.ctx, events, f.at(-24*time.Hour))
		f.must(err)
		return res
	}
	dedup := func(projectID, id string, at time.Time, subs ...string) store.NewEvent {
		ne := newEvent(projectID, "task.created", at, subs...)
		ne.DeduplicationID = id
		ne.DedupSince = at.Add(-5 * time.Minute)
		return ne
	}
	a := dedup(p1.ID, "d1", f.at(-10*time.Minute), s1.ID)
	check(t, "first", ins(a)[0], store.InsertResult{EventID: a.Event.ID, Deliveries: 1})
	// Within 5 minutes: a duplicate of a, also within one batch.
	b := dedup(p1.ID, "d1", f.at(-6*time.Minute), s1.ID)
	c := dedup(p1.ID, "d2", f.at(-6*time.Minute), s1.ID)
	c2 := dedup(p1.ID, "d2", f.at(-6*time.Minute), s1.ID)
	res := ins(b, c, c2)
	check(t, "within window", res[0], store.InsertResult{EventID: a.Event.ID, Duplicate: true, Deliveries: 1})
	check(t, "new id", res[1], store.InsertResult{EventID: c.Event.ID, Deliveries: 1})
	check(t, "same id in batch", res[2], store.InsertResult{EventID: c.Event.ID, Duplicate: true, Deliveries: 1})
	// Another project may use the same id; an idempotency key of the same text is another namespace.
	d := dedup(p2.ID, "d1", f.at(-6*time.Minute), s2.ID)
	check(t, "other project", ins(d)[0], store.InsertResult{EventID: d.Event.ID, Deliveries: 1})
	k := newEvent(p1.ID, "task.created", f.at(-6*time.Minute), s1.ID)
	k.Event.IdempotencyKey = "d1"
	check(t, "idempotency key namespace", ins(k)[0], store.InsertResult{EventID: k.Event.ID, Deliveries: 1})
	// After 5 minutes the id is accepted again.
	g := dedup(p1.ID, "d1", f.at(-4*time.Minute), s1.ID)
	check(t, "after window", ins(g)[0], store.InsertResult{EventID: g.Event.ID, Deliveries: 1})
	// An event whose idempotency key is new but whose dedup id is taken is a
	// duplicate, and does not keep the idempotency key.
	h := dedup(p1.ID, "d1", f.at(-3*time.Minute), s1.ID)
	h.Event.IdempotencyKey = "fresh"
	check(t, "dedup hit with new key", ins(h)[0], store.InsertResult{EventID: g.Event.ID, Duplicate: true, Deliveries: 1})
	i := newEvent(p1.ID, "task.created", f.at(-3*time.Minute), s1.ID)
	i.Event.IdempotencyKey = "fresh"
	check(t, "key released", ins(i)[0], store.InsertResult{EventID: i.Event.ID, Deliveries: 1})
}
