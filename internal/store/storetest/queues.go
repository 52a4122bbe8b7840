package storetest

import (
	"fmt"
	"strings"
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

func testQueueCRUD(t *testing.T, e Storage) {
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

func testQueueSendReceive(t *testing.T, e Storage) {
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

func testQueueDedup(t *testing.T, e Storage) {
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

func testQueueDeadLetter(t *testing.T, e Storage) {
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

func testQueueConcurrentReceivers(t *testing.T, e Storage) {
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

func testQueuePrune(t *testing.T, e Storage) {
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

// --- FIFO queues ---

func fifo(q *store.Queue) { q.FIFO = true }

// sendFIFO sends messages given as "group:body" (deduplication id = body).
func (f *fixture) sendFIFO(q store.Queue, at time.Time, msgs ...string) []store.QueueMessage {
	f.t.Helper()
	in := make([]store.QueueMessage, len(msgs))
	for i, gb := range msgs {
		g, b, _ := strings.Cut(gb, ":")
		in[i] = store.QueueMessage{ID: newID(), Body: b, SentAt: at, VisibleAt: at, GroupID: g, DedupID: b}
	}
	out, err := f.s.SendMessages(f.ctx, q.ProjectID, q.ID, in)
	f.must(err)
	return out
}

func testQueueFIFOOrder(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "orders.fifo", fifo)
	got, err := f.s.GetQueue(f.ctx, p.ID, q.ID)
	f.must(err)
	check(t, "fifo round trip", got.FIFO, true)
	_, err = f.s.SendMessages(f.ctx, p.ID, q.ID, []store.QueueMessage{{ID: newID(), Body: "x", SentAt: f.base, DedupID: "x"}})
	wantErr(t, "no group id", err, store.ErrInvalid)
	_, err = f.s.SendMessages(f.ctx, p.ID, q.ID, []store.QueueMessage{{ID: newID(), Body: "x", SentAt: f.base, GroupID: "g"}})
	wantErr(t, "no dedup id", err, store.ErrInvalid)

	sent := f.sendFIFO(q, f.base, "a:a1", "b:b1", "a:a2", "b:b2", "a:a3")
	check(t, "group id stored", sent[1].GroupID, "b")
	// One receive returns consecutive messages of a group in order.
	r1 := f.receive(q, 2, 10*time.Second, f.base)
	check(t, "first receive", bodies(r1), []string{"a1", "b1"})
	check(t, "group and dedup ids", []string{r1[0].GroupID, r1[0].DedupID}, []string{"a", "a1"})
	// Both groups are in flight: nothing else comes out.
	check(t, "groups blocked", len(f.receive(q, 10, 10*time.Second, f.at(time.Second))), 0)
	// Deleting a's head frees group a only.
	f.must(f.s.DeleteMessage(f.ctx, p.ID, q.ID, r1[0].ReceiptHandle))
	r2 := f.receive(q, 10, 10*time.Second, f.at(2*time.Second))
	check(t, "group a goes on, b blocked", bodies(r2), []string{"a2", "a3"})
	// b1's visibility expires: b1 again (not b2), ahead of b2.
	r3 := f.receive(q, 1, 10*time.Second, f.at(11*time.Second))
	check(t, "b1 redelivered before b2", bodies(r3), []string{"b1"})
	check(t, "receive count", r3[0].ReceiveCount, 2)
	f.must(f.s.DeleteMessage(f.ctx, p.ID, q.ID, r3[0].ReceiptHandle))
	check(t, "then b2", bodies(f.receive(q, 10, 10*time.Second, f.at(11*time.Second+500*time.Millisecond))), []string{"b2"})
	// a3's visibility expires while a2 is still in flight: a3 waits for a2.
	f.must(f.s.ChangeVisibility(f.ctx, p.ID, q.ID, r2[0].ReceiptHandle, f.at(20*time.Second)))
	check(t, "a3 waits for a2", len(f.receive(q, 10, 10*time.Second, f.at(13*time.Second))), 0)
	check(t, "then a2, a3", bodies(f.receive(q, 10, 10*time.Second, f.at(20*time.Second))), []string{"a2", "a3"})

	// A standard queue ignores groups.
	std := f.queue(p.ID, "plain")
	f.send(std, f.base, "s1", "s2")
	check(t, "standard", bodies(f.receive(std, 10, time.Minute, f.base)), []string{"s1", "s2"})
}

func testQueueFIFODedup(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "d.fifo", fifo)
	first := f.sendFIFO(q, f.base, "g:x")
	again := f.sendFIFO(q, f.at(4*time.Minute), "g:x")
	check(t, "duplicate within 5 min", again[0].Duplicate, true)
	check(t, "original id", again[0].ID, first[0].ID)
	check(t, "one message", f.counts(q, f.at(4*time.Minute)).Visible, int64(1))
	// Still a duplicate after the first is deleted.
	got := f.receive(q, 1, time.Minute, f.at(4*time.Minute))
	f.must(f.s.DeleteMessage(f.ctx, p.ID, q.ID, got[0].ReceiptHandle))
	check(t, "duplicate after delete", f.sendFIFO(q, f.at(4*time.Minute+59*time.Second), "g:x")[0].Duplicate, true)
	// The window is counted from the first send (store time = SentAt).
	later := f.sendFIFO(q, f.at(5*time.Minute), "g:x")
	check(t, "accepted after 5 min", later[0].Duplicate, false)
	check(t, "new id", later[0].ID != first[0].ID, true)
	check(t, "enqueued", f.counts(q, f.at(5*time.Minute)).Visible, int64(1))
	// Within one batch too.
	batch := f.sendFIFO(q, f.at(6*time.Minute), "g:y", "g:y", "h:z")
	check(t, "batch duplicate", []bool{batch[0].Duplicate, batch[1].Duplicate, batch[2].Duplicate}, []bool{false, true, false})
	check(t, "batch duplicate id", batch[1].ID, batch[0].ID)

	// Content-based deduplication: the SHA-256 of the body.
	c := f.queue(p.ID, "c.fifo", func(q *store.Queue) { q.FIFO, q.ContentDedup = true, true })
	send := func(at time.Time, body, dedup string) store.QueueMessage {
		out, err := f.s.SendMessages(f.ctx, p.ID, c.ID, []store.QueueMessage{{ID: newID(), Body: body, SentAt: at, GroupID: "g", DedupID: dedup}})
		f.must(err)
		return out[0]
	}
	c1 := send(f.base, "same", "")
	check(t, "content dedup id", c1.DedupID, "0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5")
	check(t, "same body dedups", send(f.at(time.Minute), "same", "").Duplicate, true)
	check(t, "other body", send(f.at(time.Minute), "other", "").Duplicate, false)
	check(t, "explicit id wins", send(f.at(time.Minute), "same", "explicit").Duplicate, false)
	check(t, "content counts", f.counts(c, f.at(time.Minute)).Visible, int64(3))

	// Pruning forgets ids past the window.
	_, err := f.s.PruneQueueMessages(f.ctx, f.at(time.Hour), 100)
	f.must(err)
	check(t, "after prune", send(f.at(2*time.Minute), "same", "").Duplicate, false)
}

func testQueueFIFODeadLetter(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	dlq := f.queue(p.ID, "dlq.fifo", fifo)
	q := f.queue(p.ID, "q.fifo", func(q *store.Queue) { q.FIFO, q.MaxReceiveCount, q.DeadLetterQueueID = true, 1, dlq.ID })
	f.sendFIFO(q, f.base, "g:one", "g:two")
	check(t, "head", bodies(f.receive(q, 1, 10*time.Second, f.base)), []string{"one"})
	// The head is past its receives: it goes to the DLQ and the group goes on.
	check(t, "group goes on", bodies(f.receive(q, 1, 10*time.Second, f.at(10*time.Second))), []string{"two"})
	dead := f.receive(dlq, 10, time.Minute, f.at(10*time.Second))
	check(t, "dead-lettered", bodies(dead), []string{"one"})
	check(t, "group kept", dead[0].GroupID, "g")
}

// testQueueFIFOConcurrentSenders sends to one FIFO queue from several
// goroutines over separate stores (separate processes on PostgreSQL): every
// message gets its own sequence number, each sender's numbers grow in its send
// order, and no receive hands out a message of a group while an earlier one
// of that group is in flight. A sequence number read as MAX(seq) without a
// lock let two senders share one, and then the FIFO receive took both.
func testQueueFIFOConcurrentSenders(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	q := f.queue(p.ID, "race.fifo", fifo)
	stores := f.workerStores(4)
	const senders, sends, groups = 8, 12, 3
	sent := make([][]store.QueueMessage, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			st := stores[i%len(stores)]
			for j := range sends {
				// Batches of one and two messages, every sender in every group.
				batch := []store.QueueMessage{{ID: newID(), Body: fmt.Sprintf("s%d-%d", i, j), SentAt: f.base, VisibleAt: f.base,
					GroupID: fmt.Sprint("g", j%groups), DedupID: fmt.Sprintf("s%d-%d", i, j)}}
				if j%2 == 1 {
					batch = append(batch, store.QueueMessage{ID: newID(), Body: fmt.Sprintf("s%d-%db", i, j), SentAt: f.base, VisibleAt: f.base,
						GroupID: fmt.Sprint("g", (j+1)%groups), DedupID: fmt.Sprintf("s%d-%db", i, j)})
				}
				out, err := st.SendMessages(f.ctx, p.ID, q.ID, batch)
				if err != nil {
					errs[i] = err
					return
				}
				sent[i] = append(sent[i], out...)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		f.must(err)
	}
	seqOwner := map[int64]string{}
	total := 0
	for i, msgs := range sent {
		var last int64
		for _, m := range msgs {
			total++
			if other, dup := seqOwner[m.Seq]; dup {
				t.Errorf("messages %s and %s share sequence number %d", other, m.Body, m.Seq)
			}
			seqOwner[m.Seq] = m.Body
			if m.Seq <= last {
				t.Errorf("sender %d: %s got sequence number %d after %d", i, m.Body, m.Seq, last)
			}
			last = m.Seq
		}
	}

	// Receive without deleting: a group handed out once stays blocked, and
	// what one receive takes of a group is its oldest messages, in order.
	inFlight := map[string]bool{}
	received := 0
	for round := 0; round < 200; round++ {
		got, err := stores[round%len(stores)].ReceiveMessages(f.ctx, p.ID, q.ID, 3, time.Hour, f.base)
		f.must(err)
		if len(got) == 0 {
			break
		}
		fresh := map[string]bool{}
		for _, m := range got {
			if inFlight[m.GroupID] && !fresh[m.GroupID] {
				t.Errorf("receive %d handed out %s (seq %d) of group %s while an earlier message of the group is in flight", round, m.Body, m.Seq, m.GroupID)
			}
			if !inFlight[m.GroupID] {
				fresh[m.GroupID] = true
			}
			inFlight[m.GroupID] = true
			received++
		}
	}
	if received > total || received == 0 {
		t.Errorf("received %d of %d messages", received, total)
	}
	if len(inFlight) != groups {
		t.Errorf("groups handed out: %v, want %d", inFlight, groups)
	}
}

func testOldestQueueMessage(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	q := f.queue(p.ID, "q", func(q *store.Queue) { q.Retention = time.Minute })
	oldest := func(projectID string, now time.Time) (time.Time, bool) {
		t.Helper()
		at, ok, err := f.s.OldestQueueMessage(f.ctx, projectID, q.ID, now)
		f.must(err)
		return at, ok
	}
	_, ok := oldest(p.ID, f.base)
	check(t, "empty queue", ok, false)
	f.send(q, f.base, "first")
	f.send(q, f.at(30*time.Second), "second", "third")
	at, ok := oldest(p.ID, f.at(40*time.Second))
	check(t, "oldest", [2]any{at, ok}, [2]any{f.base, true})
	// Received and in flight, it is still the oldest message of the queue.
	f.receive(q, 1, time.Hour, f.at(40*time.Second))
	at, _ = oldest(p.ID, f.at(41*time.Second))
	check(t, "oldest in flight", at, f.base)
	// Past its retention (not yet pruned), the next one is the oldest.
	at, ok = oldest(p.ID, f.at(61*time.Second))
	check(t, "oldest after the first expired", [2]any{at, ok}, [2]any{f.at(30 * time.Second), true})
	_, ok = oldest(other.ID, f.at(40*time.Second))
	check(t, "another project's queue", ok, false)
	_, ok = oldest(p.ID, f.at(2*time.Minute))
	check(t, "every message expired", ok, false)
}
