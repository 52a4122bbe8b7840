package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"carrier/internal/health"
	"carrier/internal/store"
)

// readCounters reads the health counters of the subscriptions of outcomes
// inside tx. On PostgreSQL it locks their rows first, in id order (concurrent
// completions locking them in different orders would deadlock), so that no
// other completion changes the counters between this read and their write;
// SQLite's single writer gives the same. A subscription deleted meanwhile is
// missing from the result.
func (s *Store) readCounters(ctx context.Context, tx *sql.Tx, outcomes []store.Outcome) (map[string]health.Counters, error) {
	ids := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		ids = append(ids, o.SubscriptionID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	q := `SELECT id, active, consecutive_failures, degraded, run_failures, failing_since FROM subscriptions
		WHERE id IN (` + s.inList(1) + `) ORDER BY id`
	if s.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	counters := make(map[string]health.Counters, len(ids))
	err := scanAll(tx.QueryContext(ctx, q, jsonList(ids)))(func(r *sql.Rows) error {
		var id string
		var c health.Counters
		var since int64
		if err := r.Scan(&id, &c.Active, &c.ConsecutiveFailures, &c.Degraded, &c.RunFailures, &since); err != nil {
			return err
		}
		if since != 0 {
			c.FailingSince = fromMS(since)
		}
		counters[id] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read subscription counters: %w", err)
	}
	return counters, nil
}

// subscriptionBatch is one subscription's share of a batch of recorded outcomes.
type subscriptionBatch struct {
	projectID             string
	outcomes              []health.Outcome
	delivered, failed     int   // terminal outcomes
	lastSuccess, lastFail int64 // ms, 0 = none
}

// applyHealth runs health.Evaluate over each subscription's recorded outcomes
// (in batch order) from the counters read at the start of the transaction,
// writes the new counters with the delivery totals, and applies the Disable
// signals. It returns every signal raised, grouped by subscription.
func (s *Store) applyHealth(ctx context.Context, tx *sql.Tx, recorded []store.Outcome, counters map[string]health.Counters, now time.Time) ([]store.HealthSignal, error) {
	batches := map[string]*subscriptionBatch{}
	var order []string
	for _, o := range recorded {
		if o.SpareRetry {
			// Throttled: the destination (a chat service's rate limit) or
			// Carrier (a project's share of rendering time) put the attempt
			// off. The endpoint did not fail, so its health does not change.
			continue
		}
		b := batches[o.SubscriptionID]
		if b == nil {
			b = &subscriptionBatch{projectID: o.ProjectID}
			batches[o.SubscriptionID] = b
			order = append(order, o.SubscriptionID)
		}
		at := ms(o.Attempt.CreatedAt)
		ho := health.Outcome{DeliveryID: o.DeliveryID, Disable: o.Disable, DisableReason: o.DisableReason, At: o.Attempt.CreatedAt}
		switch o.State {
		case store.StateDelivered:
			ho.Result = health.Delivered
			b.delivered++
			b.lastSuccess = max(b.lastSuccess, at)
		case store.StateFailed:
			ho.Result = health.Failed
			b.failed++
			b.lastFail = max(b.lastFail, at)
		default:
			ho.Result = health.Retrying
			b.lastFail = max(b.lastFail, at)
		}
		b.outcomes = append(b.outcomes, ho)
	}
	var signals []store.HealthSignal
	for _, id := range order {
		b := batches[id]
		before, ok := counters[id]
		if !ok {
			continue // deleted meanwhile
		}
		after, raised := health.Evaluate(s.policy, before, b.outcomes)
		if _, err := s.exec(ctx, tx, `UPDATE subscriptions SET
			consecutive_failures = $1, run_failures = $2, degraded = $3, failing_since = $4,
			total_deliveries = total_deliveries + $5 + $6, successful_deliveries = successful_deliveries + $5, failed_deliveries = failed_deliveries + $6,
			last_success_at = CASE WHEN $7 > last_success_at THEN $7 ELSE last_success_at END,
			last_failure_at = CASE WHEN $8 > last_failure_at THEN $8 ELSE last_failure_at END
			WHERE id = $9`,
			after.ConsecutiveFailures, after.RunFailures, after.Degraded, ms(after.FailingSince),
			b.delivered, b.failed, b.lastSuccess, b.lastFail, id); err != nil {
			return nil, fmt.Errorf("update subscription counters: %w", err)
		}
		for _, sig := range raised {
			switch sig.Kind {
			case health.Disable:
				if err := disableSubscription(ctx, tx, b.projectID, id, sig, now); err != nil {
					return nil, err
				}
			case health.Recovered:
				// The first success after a degraded or disabled run: an
				// endpoint.recovered event, which resolves the alerts the
				// run raised, in the transaction that records the success.
				if err := insertOutbox(ctx, tx, recoveredEvent(b.projectID, id, sig)); err != nil {
					return nil, err
				}
			}
			signals = append(signals, store.HealthSignal{ProjectID: b.projectID, SubscriptionID: id, Signal: sig})
		}
	}
	return signals, nil
}

// disableSubscription applies a Disable signal: the subscription is
// deactivated with the signal's reason, its waiting deliveries are held, the
// matcher's version moves on, and webhook.disabled is written to the outbox.
func disableSubscription(ctx context.Context, tx *sql.Tx, projectID, id string, sig health.Signal, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET active = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3`, sig.Reason, ms(now), id); err != nil {
		return fmt.Errorf("disable subscription: %w", err)
	}
	if err := holdDeliveries(ctx, tx, id, true); err != nil {
		return err
	}
	if err := bumpVersion(ctx, tx); err != nil {
		return err
	}
	// The event commits with the deactivation, so no crash or error between
	// the two can leave a webhook disabled without its webhook.disabled.
	return insertOutbox(ctx, tx, disabledEvent(projectID, id, sig.Reason, sig.Failures, now))
}
