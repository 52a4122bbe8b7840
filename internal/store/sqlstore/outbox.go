package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/health"
	"carrier/internal/store"
)

// insertOutbox writes a system event to the outbox inside tx, the transaction
// of the change that causes it: the change and the event commit together or
// not at all.
func insertOutbox(ctx context.Context, tx *sql.Tx, e store.OutboxEvent) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, project_id, type, subject, data, attributes, idempotency_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.ID, e.ProjectID, e.Type, e.Subject, string(e.Data), jsonText(nonNilMap(e.Attributes)), e.IdempotencyKey, ms(e.CreatedAt)); err != nil {
		return fmt.Errorf("insert outbox %s: %w", e.Type, err)
	}
	return nil
}

// disabledEvent is the webhook.disabled event of a subscription deactivated at now.
func disabledEvent(projectID, subscriptionID, reason string, failures int, now time.Time) store.OutboxEvent {
	data, _ := json.Marshal(map[string]any{
		"webhook_id": subscriptionID, "reason": reason, "consecutive_failures": failures,
		"disabled_at": now.UTC().Format(time.RFC3339Nano),
	})
	return store.OutboxEvent{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID, Type: "webhook.disabled",
		Subject: subscriptionID, Data: data, CreatedAt: now,
	}
}

// recoveredEvent is the endpoint.recovered event of a subscription whose
// failing run sig ended.
func recoveredEvent(projectID, subscriptionID string, sig health.Signal) store.OutboxEvent {
	d := map[string]any{"webhook_id": subscriptionID, "failures": sig.Failures, "recovered_at": sig.At.UTC().Format(time.RFC3339Nano)}
	if !sig.Since.IsZero() {
		d["failing_since"] = sig.Since.UTC().Format(time.RFC3339Nano)
	}
	data, _ := json.Marshal(d)
	return store.OutboxEvent{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID, Type: "endpoint.recovered",
		Subject: subscriptionID, Data: data, CreatedAt: sig.At,
	}
}

// ClaimOutbox leases pending outbox rows to owner, oldest first.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, lease time.Duration, now time.Time, limit int) ([]store.OutboxEvent, error) {
	if limit <= 0 {
		return []store.OutboxEvent{}, nil
	}
	picked := `SELECT id FROM outbox WHERE lease_until < $3 ORDER BY created_at, id LIMIT $4`
	claim := `UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id IN (` + picked + `)
		RETURNING id, project_id, type, subject, data, attributes, idempotency_key, created_at`
	if s.dialect == Postgres {
		// Rows locked by a concurrent claim on another node are skipped, so
		// two relays do not publish the same row at once.
		claim = `WITH picked AS (` + picked + ` FOR UPDATE SKIP LOCKED)
			UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id = ANY(ARRAY(SELECT id FROM picked))
			RETURNING id, project_id, type, subject, data, attributes, idempotency_key, created_at`
	}
	out := []store.OutboxEvent{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, claim, owner, ms(now.Add(lease)), ms(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e store.OutboxEvent
			var data, attrs string
			var created int64
			if err := rows.Scan(&e.ID, &e.ProjectID, &e.Type, &e.Subject, &data, &attrs, &e.IdempotencyKey, &created); err != nil {
				return err
			}
			e.Data, e.CreatedAt = json.RawMessage(data), fromMS(created)
			if err := json.Unmarshal([]byte(attrs), &e.Attributes); err != nil {
				return fmt.Errorf("outbox %s attributes: %w", e.ID, err)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	// RETURNING gives no order: publish oldest first, as claimed.
	sortOutbox(out)
	return out, nil
}

func sortOutbox(out []store.OutboxEvent) {
	slices.SortFunc(out, func(a, b store.OutboxEvent) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// DeleteOutbox removes a published outbox row.
func (s *Store) DeleteOutbox(ctx context.Context, id string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete outbox: %w", err)
	}
	return nil
}
