package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"carrier/internal/store"
)

// txWrites is what the transaction cases write in one InTx: a new
// subscription, an update and a deactivation of an existing one, and a
// system event in the outbox.
type txWrites struct {
	existing, created store.Subscription
	renamed           store.Subscription // existing after the update and the deactivation
	event             store.OutboxEvent
}

func (f *fixture) txWrites(projectID string) txWrites {
	f.t.Helper()
	w := txWrites{existing: f.subscription(projectID)}
	w.created = w.existing
	w.created.ID, w.created.Name, w.created.URL = newID(), "created in a transaction", "https://example.com/tx"
	w.renamed = w.existing
	w.renamed.Name, w.renamed.UpdatedAt = "renamed in a transaction", f.at(time.Second)
	w.event = store.OutboxEvent{ID: newID(), ProjectID: projectID, Type: "subscription.changed", Subject: w.existing.ID,
		Data: json.RawMessage(`{"name":"renamed in a transaction"}`), Attributes: map[string]string{"source": "tx"}, CreatedAt: f.base}
	return w
}

// apply makes every write of w through tx, and checks that tx reads its own writes.
func (w txWrites) apply(t *testing.T, ctx context.Context, tx store.Tx, at time.Time) error {
	t.Helper()
	if err := tx.CreateSubscription(ctx, w.created); err != nil {
		return err
	}
	if err := tx.UpdateSubscription(ctx, w.renamed); err != nil {
		return err
	}
	if err := tx.SetSubscriptionActive(ctx, w.existing.ProjectID, w.existing.ID, false, "paused in a transaction", at); err != nil {
		return err
	}
	if err := tx.InsertOutbox(ctx, w.event); err != nil {
		return err
	}
	got, err := tx.GetSubscription(ctx, w.existing.ProjectID, w.created.ID)
	if err != nil {
		return err
	}
	check(t, "the transaction reads its own insert", got, w.created)
	got, err = tx.GetSubscription(ctx, w.existing.ProjectID, w.existing.ID)
	if err != nil {
		return err
	}
	check(t, "the transaction reads its own update", [2]any{got.Name, got.Active}, [2]any{w.renamed.Name, false})
	return nil
}

// unchanged checks that none of w's writes is visible: the existing
// subscription as it was, no new one, no outbox row, the same version.
func (f *fixture) unchanged(w txWrites, version int64) {
	f.t.Helper()
	_, err := f.s.GetSubscription(f.ctx, w.existing.ProjectID, w.created.ID)
	wantErr(f.t, "subscription created by a rolled back transaction", err, store.ErrNotFound)
	check(f.t, "subscription updated by a rolled back transaction", f.getSub(w.existing.ProjectID, w.existing.ID), w.existing)
	check(f.t, "subscriptions version after a rolled back transaction", f.version(), version)
	// Claiming is a write: bounded, in case the transaction still holds the writer.
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	rows, err := f.s.ClaimOutbox(ctx, "relay", time.Minute, f.at(time.Hour), 10)
	f.must(err)
	check(f.t, "outbox after a rolled back transaction", len(rows), 0)
}

// stillWrites checks that the store takes a write after a transaction ended
// badly: a transaction left open would hold SQLite's one writer connection
// (and, on PostgreSQL, the subscriptions version row), so this write would
// wait until its deadline.
func (f *fixture) stillWrites(w txWrites) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	sub := w.existing
	sub.ID, sub.Name = newID(), "after the transaction"
	if err := f.s.CreateSubscription(ctx, sub); err != nil {
		f.t.Fatalf("write after the transaction: %v", err)
	}
}

// testTxCommit: InTx commits every write together; while fn runs, none of
// them is visible outside the transaction; the Tx is useless afterwards.
func testTxCommit(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	w := f.txWrites(p.ID)
	before := f.version()
	var kept store.Tx
	err := f.s.InTx(f.ctx, func(tx store.Tx) error {
		kept = tx
		if err := w.apply(t, f.ctx, tx, f.at(2*time.Second)); err != nil {
			return err
		}
		_, err := f.s.GetSubscription(f.ctx, p.ID, w.created.ID)
		wantErr(t, "the transaction's insert seen from outside before commit", err, store.ErrNotFound)
		check(t, "the transaction's update seen from outside before commit", f.getSub(p.ID, w.existing.ID), w.existing)
		return nil
	})
	f.must(err)

	check(t, "created subscription after commit", f.getSub(p.ID, w.created.ID), w.created)
	got := f.getSub(p.ID, w.existing.ID)
	want := w.renamed
	want.Active, want.DisabledReason, want.UpdatedAt = false, "paused in a transaction", f.at(2*time.Second)
	check(t, "updated subscription after commit", got, want)
	check(t, "outbox after commit", f.claimOutbox("relay", f.at(time.Hour), 10), []store.OutboxEvent{w.event})
	if v := f.version(); v <= before {
		t.Errorf("subscriptions version after commit: %d, want more than %d (other nodes reload on it)", v, before)
	}
	late := w.created
	late.ID = newID()
	if err := kept.CreateSubscription(f.ctx, late); err == nil {
		t.Error("a Tx used after InTx returned wrote without an error")
	}
	_, err = f.s.GetSubscription(f.ctx, p.ID, late.ID)
	wantErr(t, "subscription written through a finished Tx", err, store.ErrNotFound)
}

var errTxAbandoned = errors.New("abandoned by the caller")

// testTxRollback: an error from fn, whether fn's own or one a Tx method gave
// it, rolls back every write of the transaction and comes back from InTx.
func testTxRollback(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	w := f.txWrites(p.ID)
	before := f.version()
	err := f.s.InTx(f.ctx, func(tx store.Tx) error {
		if err := w.apply(t, f.ctx, tx, f.at(2*time.Second)); err != nil {
			return err
		}
		return errTxAbandoned
	})
	if err != errTxAbandoned {
		t.Errorf("InTx returned %v, want fn's error unchanged (%v)", err, errTxAbandoned)
	}
	f.unchanged(w, before)
	f.stillWrites(w)

	// A write the store refuses (an id in use) fails the transaction: the
	// writes before it go too.
	w = f.txWrites(p.ID)
	before = f.version()
	err = f.s.InTx(f.ctx, func(tx store.Tx) error {
		if err := tx.CreateSubscription(f.ctx, w.created); err != nil {
			return err
		}
		if err := tx.InsertOutbox(f.ctx, w.event); err != nil {
			return err
		}
		return tx.CreateSubscription(f.ctx, w.existing)
	})
	wantErr(t, "InTx with a duplicate subscription", err, store.ErrConflict)
	f.unchanged(w, before)
	f.stillWrites(w)

	err = f.s.InTx(f.ctx, func(tx store.Tx) error {
		return tx.UpdateSubscription(f.ctx, store.Subscription{ID: newID(), ProjectID: p.ID, Name: "missing"})
	})
	wantErr(t, "InTx updating a missing subscription", err, store.ErrNotFound)
}

// testTxPanic: a panic in fn rolls the transaction back and reaches the
// caller with its own value; the store goes on taking writes.
func testTxPanic(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	w := f.txWrites(p.ID)
	before := f.version()
	type boom struct{ n int }
	var got any
	func() {
		defer func() { got = recover() }()
		f.s.InTx(f.ctx, func(tx store.Tx) error {
			if err := w.apply(t, f.ctx, tx, f.at(2*time.Second)); err != nil {
				t.Errorf("writes before the panic: %v", err)
			}
			panic(boom{7})
		})
	}()
	check(t, "panic value out of InTx", got, any(boom{7}))
	f.unchanged(w, before)
	f.stillWrites(w)
}
