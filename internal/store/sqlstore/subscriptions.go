package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"carrier/internal/store"
)

const subscriptionColumns = `id, project_id, name, description, kind, url, event_types, scope, subject_ids, headers, tags, metadata,
	timeout_seconds, max_retries, backoff_multiplier, secret, previous_secret, previous_secret_until, active, disabled_reason,
	consecutive_failures, total_deliveries, successful_deliveries, failed_deliveries, last_success_at, last_failure_at, created_at, updated_at,
	destination, filter_policy, filter_scope, ordering`

// subscriptionColumnsAs is subscriptionColumns qualified with a table alias.
func subscriptionColumnsAs(alias string) string {
	return prefixColumns(subscriptionColumns, alias)
}

type scanner interface{ Scan(dest ...any) error }

// subscriptionRow holds the raw columns of a subscription while it is scanned.
type subscriptionRow struct {
	sub                                               store.Subscription
	eventTypes, subjectIDs, headers, tags, metadata   string
	destination, filterPolicy                         string
	prevUntil, lastSuccess, lastFailure, created, upd int64
}

func (r *subscriptionRow) dest() []any {
	sub := &r.sub
	return []any{&sub.ID, &sub.ProjectID, &sub.Name, &sub.Description, &sub.Kind, &sub.URL, &r.eventTypes, &sub.Scope, &r.subjectIDs, &r.headers, &r.tags, &r.metadata,
		&sub.TimeoutSeconds, &sub.MaxRetries, &sub.BackoffMultiplier, &sub.Secret, &sub.PreviousSecret, &r.prevUntil, &sub.Active, &sub.DisabledReason,
		&sub.ConsecutiveFailures, &sub.TotalDeliveries, &sub.SuccessfulDeliveries, &sub.FailedDeliveries, &r.lastSuccess, &r.lastFailure, &r.created, &r.upd,
		&r.destination, &r.filterPolicy, &sub.FilterScope, &sub.Ordering}
}

func (r *subscriptionRow) finish() store.Subscription {
	sub := r.sub
	json.Unmarshal([]byte(r.eventTypes), &sub.EventTypes)
	json.Unmarshal([]byte(r.subjectIDs), &sub.SubjectIDs)
	json.Unmarshal([]byte(r.headers), &sub.Headers)
	json.Unmarshal([]byte(r.tags), &sub.Tags)
	if r.metadata != "" && r.metadata != "null" {
		sub.Metadata = json.RawMessage(r.metadata)
	}
	if r.destination != "" {
		sub.Destination = json.RawMessage(r.destination)
	}
	if r.filterPolicy != "" {
		sub.FilterPolicy = json.RawMessage(r.filterPolicy)
	}
	sub.PreviousSecretUntil = fromMSPtr(r.prevUntil)
	sub.LastSuccessAt = fromMSPtr(r.lastSuccess)
	sub.LastFailureAt = fromMSPtr(r.lastFailure)
	sub.CreatedAt = fromMS(r.created)
	sub.UpdatedAt = fromMS(r.upd)
	return sub
}

func scanSubscription(row scanner) (store.Subscription, error) {
	var r subscriptionRow
	if err := row.Scan(r.dest()...); err != nil {
		return store.Subscription{}, err
	}
	return r.finish(), nil
}

func metadataText(m json.RawMessage) string {
	if len(m) == 0 {
		return "null"
	}
	return string(m)
}

func bumpVersion(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'subscriptions_version'`)
	return err
}

// CreateSubscription inserts a subscription.
func (s *Store) CreateSubscription(ctx context.Context, sub store.Subscription) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return createSubscription(ctx, tx, sub) }); err != nil {
		return fmt.Errorf("insert subscription: %w", err)
	}
	return nil
}

// createSubscription is CreateSubscription inside tx (shared with InTx).
func createSubscription(ctx context.Context, tx *sql.Tx, sub store.Subscription) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (`+subscriptionColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)`,
		sub.ID, sub.ProjectID, sub.Name, sub.Description, sub.Kind, sub.URL, jsonList(sub.EventTypes), sub.Scope, jsonList(sub.SubjectIDs),
		jsonText(nonNilMap(sub.Headers)), jsonList(sub.Tags), metadataText(sub.Metadata),
		sub.TimeoutSeconds, sub.MaxRetries, sub.BackoffMultiplier, sub.Secret, sub.PreviousSecret, msPtr(sub.PreviousSecretUntil), sub.Active, sub.DisabledReason,
		sub.ConsecutiveFailures, sub.TotalDeliveries, sub.SuccessfulDeliveries, sub.FailedDeliveries, msPtr(sub.LastSuccessAt), msPtr(sub.LastFailureAt),
		ms(sub.CreatedAt), ms(sub.UpdatedAt), string(sub.Destination), string(sub.FilterPolicy), filterScope(sub.FilterScope), sub.Ordering)
	if err != nil {
		return conflict(err) // an id already in use
	}
	return bumpVersion(ctx, tx)
}

// filterScope stores an unset scope as the default, attributes.
func filterScope(s string) string {
	if s == "" {
		return "attributes"
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetSubscription reads one subscription of a project.
func (s *Store) GetSubscription(ctx context.Context, projectID, id string) (store.Subscription, error) {
	return getSubscription(ctx, s.reader, projectID, id)
}

// rowQuerier is what reads one row: the reader pool, or a transaction that
// must see its own writes.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getSubscription(ctx context.Context, q rowQuerier, projectID, id string) (store.Subscription, error) {
	row := q.QueryRowContext(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1 AND project_id = $2`, id, projectID)
	sub, err := scanSubscription(row)
	if err != nil {
		return sub, fmt.Errorf("get subscription: %w", notFound(err))
	}
	return sub, nil
}

// ListSubscriptions lists a project's subscriptions, oldest first.
func (s *Store) ListSubscriptions(ctx context.Context, projectID string) ([]store.Subscription, error) {
	return s.querySubscriptions(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE project_id = $1 ORDER BY created_at, id`, projectID)
}

// AllActiveSubscriptions lists every active subscription.
func (s *Store) AllActiveSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return s.querySubscriptions(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE active ORDER BY created_at, id`)
}

// AllSubscriptions lists every subscription, active or not.
func (s *Store) AllSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return s.querySubscriptions(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions ORDER BY created_at, id`)
}

func (s *Store) querySubscriptions(ctx context.Context, query string, args ...any) ([]store.Subscription, error) {
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	out := []store.Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// UpdateSubscription writes a subscription's editable fields.
func (s *Store) UpdateSubscription(ctx context.Context, sub store.Subscription) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return updateSubscription(ctx, tx, sub) }); err != nil {
		return fmt.Errorf("update subscription: %w", err)
	}
	return nil
}

// updateSubscription is UpdateSubscription inside tx (shared with InTx).
func updateSubscription(ctx context.Context, tx *sql.Tx, sub store.Subscription) error {
	res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET name = $1, description = $2, url = $3, event_types = $4, scope = $5, subject_ids = $6,
		headers = $7, tags = $8, metadata = $9, timeout_seconds = $10, max_retries = $11, backoff_multiplier = $12,
		secret = $13, previous_secret = $14, previous_secret_until = $15, updated_at = $16,
		destination = $19, filter_policy = $20, filter_scope = $21, ordering = $22
		WHERE id = $17 AND project_id = $18`,
		sub.Name, sub.Description, sub.URL, jsonList(sub.EventTypes), sub.Scope, jsonList(sub.SubjectIDs),
		jsonText(nonNilMap(sub.Headers)), jsonList(sub.Tags), metadataText(sub.Metadata), sub.TimeoutSeconds, sub.MaxRetries, sub.BackoffMultiplier,
		sub.Secret, sub.PreviousSecret, msPtr(sub.PreviousSecretUntil), ms(sub.UpdatedAt), sub.ID, sub.ProjectID,
		string(sub.Destination), string(sub.FilterPolicy), filterScope(sub.FilterScope), sub.Ordering)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return bumpVersion(ctx, tx)
}

// SetSubscriptionActive activates or deactivates a subscription. Activation
// resets the consecutive failure count.
func (s *Store) SetSubscriptionActive(ctx context.Context, projectID, id string, active bool, reason string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return setSubscriptionActive(ctx, tx, projectID, id, active, reason, at) })
	if err != nil {
		return fmt.Errorf("set subscription active: %w", err)
	}
	return nil
}

// setSubscriptionActive is SetSubscriptionActive inside tx (shared with InTx).
func setSubscriptionActive(ctx context.Context, tx *sql.Tx, projectID, id string, active bool, reason string, at time.Time) error {
	q := `UPDATE subscriptions SET active = $1, disabled_reason = $2, updated_at = $3 WHERE id = $4 AND project_id = $5`
	if active {
		q = `UPDATE subscriptions SET active = $1, disabled_reason = $2, updated_at = $3, consecutive_failures = 0 WHERE id = $4 AND project_id = $5`
		reason = ""
	}
	res, err := tx.ExecContext(ctx, q, active, reason, ms(at), id, projectID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	if err := holdDeliveries(ctx, tx, id, !active); err != nil {
		return err
	}
	return bumpVersion(ctx, tx)
}

// holdDeliveries takes a subscription's waiting deliveries out of the due index
// (hold) or puts them back, as the subscription is deactivated or activated.
func holdDeliveries(ctx context.Context, tx *sql.Tx, subscriptionID string, hold bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE deliveries SET held = $1 WHERE subscription_id = $2 AND state IN ('pending', 'retrying') AND held <> $1`, hold, subscriptionID)
	if err != nil {
		return fmt.Errorf("hold deliveries: %w", err)
	}
	return nil
}

// DeleteSubscription removes a subscription and its delivery history.
func (s *Store) DeleteSubscription(ctx context.Context, projectID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := deleteSubscription(ctx, tx, projectID, id); err != nil {
			return err
		}
		return bumpVersion(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("delete subscription: %w", err)
	}
	return nil
}

// deleteSubscription deletes subscription id of a project with its
// deliveries and their attempts, in tx; a missing one is store.ErrNotFound.
func deleteSubscription(ctx context.Context, tx *sql.Tx, projectID, id string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE id = $1 AND project_id = $2`, id, projectID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE subscription_id = $1)`, id); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM deliveries WHERE subscription_id = $1`, id)
	return err
}

// SubscriptionsVersion reads the counter bumped by every subscription change.
func (s *Store) SubscriptionsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'subscriptions_version'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("subscriptions version: %w", err)
	}
	return v, nil
}
