package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

// --- queue helpers ---

func (f *fixture) queue(projectID, name string, mods ...func(*store.Queue)) store.Queue {
	f.t.Helper()
	q := store.Queue{ID: newID(), ProjectID: projectID, Name: name, VisibilityTimeout: 30 * time.Second,
		Retention: 4 * 24 * time.Hour, CreatedAt: f.base}
	for _, m := range mods {
		m(&q)
	}
	f.must(f.s.CreateQueue(f.ctx, q))
	return q
}

func (f *fixture) send(q store.Queue, at time.Time, bodies ...string) []store.QueueMessage {
	f.t.Helper()
	msgs := make([]store.QueueMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = store.QueueMessage{ID: newID(), Body: b, Attributes: map[string]string{"n": fmt.Sprint(i)}, SentAt: at, VisibleAt: at}
	}
	out, err := f.s.SendMessages(f.ctx, q.ProjectID, q.ID, msgs)
	f.must(err)
	return out
}

func (f *fixture) receive(q store.Queue, max int, vis time.Duration, now time.Time) []store.QueueMessage {
	f.t.Helper()
	out, err := f.s.ReceiveMessages(f.ctx, q.ProjectID, q.ID, max, vis, now)
	f.must(err)
	return out
}

func (f *fixture) counts(q store.Queue, now time.Time) store.QueueCounts {
	f.t.Helper()
	c, err := f.s.QueueCounts(f.ctx, q.ProjectID, q.ID, now)
	f.must(err)
	return c
}

func bodies(ms []store.QueueMessage) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Body)
	}
	return out
}

// --- queue cases ---

func testQueueCRUD(t *testing.T, e Engine) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	dlq := f.queue(p.ID, "orders-dlq")
	q := f.queue(p.ID, "orders", func(q *store.Queue) { q.MaxReceiveCount, q.DeadLetterQueueID, q.Delay = 3, dlq.ID, 5*time.Second })
	got, err := f.s.GetQueue(f.ctx, p.ID, q.ID)
	f.must(err)
	check(t, "round trip", got, q)
	byName, err := f.s.QueueByName(f.ctx, p.ID, "orders")
	f.must(err)
	check(t, "by name", byName.ID, q.ID)
	list, err := f.s.ListQueues(f.ctx, p.ID)
	f.must(err)
	check(t, "list", []string{list[0].Name, list[1].Name}, []string{"orders", "orders-dlq"})

	wantErr(t, "duplicate name", f.s.CreateQueue(f.ctx, store.Queue{ID: newID(), ProjectID: p.ID, Name: "orders", CreatedAt: f.base}), store.ErrConflict)
	f.queue(other.ID, "orders") // names are per project
	wantErr(t, "dead-letter queue of another project", f.s.CreateQueue(f.ctx, store.Queue{ID: newID(), ProjectID: other.ID, Name: "x",
		MaxReceiveCount: 1, DeadLetterQueueID: dlq.ID, CreatedAt: f.base}), store.ErrNotFound)

	// Isolation: another project's id behaves as missing.
	_, err = f.s.GetQueue(f.ctx, other.ID, q.ID)
	wantErr(t, "get from other project", err, store.ErrNotFound)
	_, err = f.s.SendMessages(f.ctx, other.ID, q.ID, []store.QueueMessage{{ID: newID(), Body: "x", SentAt: f.base}})
	wantErr(t, "send from other project", err, store.ErrNotFound)
	_, err = f.s.ReceiveMessages(f.ctx, other.ID, q.ID, 1, time.Second, f.base)
	wantErr(t, "receive from other project", err, store.ErrNotFound)
	wantErr(t, "delete from other project", f.s.DeleteQueue(f.ctx, other.ID, q.ID), store.ErrNotFound)

	// A dead-letter target cannot be deleted while used; deleting removes messages.
	wantErr(t, "delete a dead-letter target", f.s.DeleteQueue(f.ctx, p.ID, dlq.ID), store.ErrConflict)
	f.send(q, f.base, "a", "b")
	f.must(f.s.DeleteQueue(f.ctx, p.ID, q.ID))
	_, err = f.s.GetQueue(f.ctx, p.ID, q.ID)
	wantErr(t, "deleted", err, store.ErrNotFound)
	f.must(f.s.DeleteQueue(f.ctx, p.ID, dlq.ID))
	n, err := f.s.PruneQueueMessages(f.ctx, f.at(100*24*time.Hour), 100)
	f.must(err)
	check(t, "messages left after delete", n, 0)
}

func testQueueSendReceive(t *testing.T, e Engine) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "q")
	sent := f.send(q, f.base, "one", "two", "three")
	check(t, "seq order", sent[0].Seq < sent[1].Seq && sent[1].Seq < sent[2].Seq, true)
	check(t, "expires", sent[0].ExpiresAt, f.base.Add(q.Retention))
	_, err := f.s.SendMessages(f.ctx, p.ID, q.ID, []store.QueueMessage{{ID: newID(), Body: "later", SentAt: f.base, VisibleAt: f.at(time.Minute)}})
	f.must(err)
	check(t, "counts after send", f.counts(q, f.base), store.QueueCounts{Visible: 3, Delayed: 1})

	got := f.receive(q, 2, 10*time.Second, f.base)
	check(t, "oldest first", bodies(got), []string{"one", "two"})
	check(t, "receive count", got[0].ReceiveCount, 1)
	check(t, "attributes", got[1].Attributes["n"], "1")
	check(t, "first received", *got[0].FirstReceivedAt, f.base)
	check(t, "visible at", got[0].VisibleAt, f.at(10*time.Second))
	if got[0].ReceiptHandle == "" || got[0].ReceiptHandle == got[1].ReceiptHandle {
		t.Fatalf("receipt handles: %q %q", got[0].ReceiptHandle, got[1].ReceiptHandle)
	}
	check(t, "counts while in flight", f.counts(q, f.base), store.QueueCounts{Visible: 1, InFlight: 2, Delayed: 1})
	check(t, "the rest", bodies(f.receive(q, 10, 10*time.Second, f.base)), []string{"three"})
	check(t, "nothing visible", len(f.receive(q, 10, 10*time.Second, f.at(time.Second))), 0)

	// Visibility expires: received again with a higher count and a new handle.
	again := f.receive(q, 1, 10*time.Second, f.at(11*time.Second))
	check(t, "redelivered", bodies(again), []string{"one"})
	check(t, "higher count", again[0].ReceiveCount, 2)
	check(t, "first received kept", *again[0].FirstReceivedAt, f.base)
	if again[0].ReceiptHandle == got[0].ReceiptHandle {
		t.Fatal("receipt handle did not change")
	}
	wantErr(t, "stale handle", f.s.DeleteMessage(f.ctx, p.ID, q.ID, got[0].ReceiptHandle), store.ErrNotFound)
	wantErr(t, "unknown handle", f.s.DeleteMessage(f.ctx, p.ID, q.ID, "nope"), store.ErrNotFound)
	f.must(f.s.DeleteMessage(f.ctx, p.ID, q.ID, again[0].ReceiptHandle))
	wantErr(t, "deleted twice", f.s.DeleteMessage(f.ctx, p.ID, q.ID, again[0].ReceiptHandle), store.ErrNotFound)

	// Change visibility: "two" made visible at once is received again.
	f.must(f.s.ChangeVisibility(f.ctx, p.ID, q.ID, got[1].ReceiptHandle, f.at(12*time.Second)))
	wantErr(t, "change stale", f.s.ChangeVisibility(f.ctx, p.ID, q.ID, got[0].ReceiptHandle, f.base), store.ErrNotFound)
	check(t, "after change", bodies(f.receive(q, 10, time.Minute, f.at(12*time.Second))), []string{"two", "three"})

	n, err := f.s.PurgeQueue(f.ctx, p.ID, q.ID)
	f.must(err)
	check(t, "purged", n, 3)
	check(t, "counts after purge", f.counts(q, f.base), store.QueueCounts{})
}

func testQueueDedup(t *testing.T, e Engine) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "q")
	m := store.QueueMessage{ID: newID(), Body: "x", SentAt: f.base, DedupID: "delivery-1"}
	first, err := f.s.SendMessages(f.ctx, p.ID, q.ID, []store.QueueMessage{m})
	f.must(err)
	m.ID = newID()
	second, err := f.s.SendMessages(f.ctx, p.ID, q.ID, []store.QueueMessage{m, {ID: newID(), Body: "y", SentAt: f.base}})
	f.must(err)
	check(t, "duplicate", second[0].Duplicate, true)
	check(t, "existing id", second[0].ID, first[0].ID)
	check(t, "counts", f.counts(q, f.base).Visible, int64(2))
}

func testQueueDeadLetter(t *testing.T, e Engine) {
	f := setup(t, e)
	p := f.project()
	dlq := f.queue(p.ID, "dlq")
	q := f.queue(p.ID, "q", func(q *store.Queue) { q.MaxReceiveCount, q.DeadLetterQueueID = 2, dlq.ID })
	f.send(q, f.base, "poison", "fine")
	now := f.base
	for i := 1; i <= 2; i++ {
		got := f.receive(q, 1, time.Second, now)
		check(t, fmt.Sprintf("receive %d", i), bodies(got), []string{"poison"})
		check(t, fmt.Sprintf("count %d", i), got[0].ReceiveCount, i)
		now = now.Add(2 * time.Second)
	}
	// Third receive: "poison" has reached 2 receives and goes to the DLQ; "fine" is returned instead.
	got := f.receive(q, 1, time.Second, now)
	check(t, "poison skipped", bodies(got), []string{"fine"})
	check(t, "source queue", f.counts(q, now), store.QueueCounts{InFlight: 1})
	check(t, "dead-letter queue", f.counts(dlq, now), store.QueueCounts{Visible: 1})
	dead := f.receive(dlq, 10, time.Second, now)
	check(t, "dead letter", bodies(dead), []string{"poison"})
	check(t, "count reset", dead[0].ReceiveCount, 1)
	check(t, "source recorded", dead[0].SourceQueueID, q.ID)

	// Redrive takes visible dead letters only, back to their source.
	moved, err := f.s.RedriveDeadLetters(f.ctx, p.ID, dlq.ID, 10, now)
	f.must(err)
	check(t, "in flight not redriven", len(moved), 0)
	now = now.Add(2 * time.Second)
	moved, err = f.s.RedriveDeadLetters(f.ctx, p.ID, dlq.ID, 10, now)
	f.must(err)
	check(t, "redriven", moved, []string{q.ID})
	back := f.receive(q, 10, time.Second, now)
	check(t, "back in source", bodies(back), []string{"fine", "poison"})
	for _, m := range back {
		if m.Body == "poison" {
			check(t, "receive count after redrive", m.ReceiveCount, 1)
			check(t, "source cleared", m.SourceQueueID, "")
		}
	}
	_, err = f.s.RedriveDeadLetters(f.ctx, f.project().ID, dlq.ID, 10, now)
	wantErr(t, "redrive other project", err, store.ErrNotFound)
}

func testQueueConcurrentReceivers(t *testing.T, e Engine) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "q")
	const total = 60
	for i := 0; i < total; i += 10 {
		f.send(q, f.base, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := f.s.ReceiveMessages(f.ctx, p.ID, q.ID, 3, time.Hour, f.base)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check(t, "received", len(seen), total)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
}

func testQueuePrune(t *testing.T, e Engine) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "q", func(q *store.Queue) { q.Retention = time.Minute })
	f.send(q, f.base, "old")
	f.send(q, f.at(30*time.Second), "new")
	check(t, "expired not received", bodies(f.receive(q, 10, time.Second, f.at(70*time.Second))), []string{"new"})
	n, err := f.s.PruneQueueMessages(f.ctx, f.at(70*time.Second), 10)
	f.must(err)
	check(t, "pruned", n, 1)
	n, err = f.s.PruneQueueMessages(f.ctx, f.at(70*time.Second), 10)
	f.must(err)
	check(t, "pruned again", n, 0)
	if c := f.counts(q, f.at(70*time.Second)); c.Visible+c.InFlight != 1 {
		t.Errorf("counts: %+v", c)
	}
}
