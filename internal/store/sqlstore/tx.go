package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"carrier/internal/store"
)

// inTx runs fn in a write transaction and commits it when fn returns nil. It
// rolls back when fn returns an error or panics (and the panic goes on): a
// transaction left open would hold SQLite's one writer connection for good.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.prepareWanted(ctx)
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	finished = true
	return tx.Commit()
}

// InTx runs fn's writes in one transaction: all of them commit, or none.
// An error from fn comes back unchanged; a failed begin or commit is
// wrapped with what failed.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	var fnErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		fnErr = fn(txn{tx: tx})
		return fnErr
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil:
		return fnErr
	}
	return fmt.Errorf("transaction: %w", err)
}

// txn is a store.Tx: the statements of the Store methods of the same names,
// run on the caller's transaction instead of one of their own.
type txn struct{ tx *sql.Tx }

var _ store.Tx = txn{}

func (t txn) GetSubscription(ctx context.Context, projectID, id string) (store.Subscription, error) {
	return getSubscription(ctx, t.tx, projectID, id)
}

func (t txn) CreateSubscription(ctx context.Context, sub store.Subscription) error {
	if err := createSubscription(ctx, t.tx, sub); err != nil {
		return fmt.Errorf("insert subscription: %w", err)
	}
	return nil
}

func (t txn) UpdateSubscription(ctx context.Context, sub store.Subscription) error {
	if err := updateSubscription(ctx, t.tx, sub); err != nil {
		return fmt.Errorf("update subscription: %w", err)
	}
	return nil
}

func (t txn) SetSubscriptionActive(ctx context.Context, projectID, id string, active bool, reason string, at time.Time) error {
	if err := setSubscriptionActive(ctx, t.tx, projectID, id, active, reason, at); err != nil {
		return fmt.Errorf("set subscription active: %w", err)
	}
	return nil
}

func (t txn) InsertOutbox(ctx context.Context, e store.OutboxEvent) error {
	return insertOutbox(ctx, t.tx, e)
}
