// Package outbox relays system events from the outbox table to the publisher.
//
// A state change that causes a system event (a webhook disabled by the
// delivery engine, a task decided by the task service) writes the event to the outbox in its own
// transaction, so the change and the event commit together. The relay, which
// runs on every node, claims pending rows with a lease (SKIP LOCKED on
// PostgreSQL), publishes each through the ordinary publish path (matching,
// deliveries, group commit) and deletes it. The published event's id and
// idempotency key derive from the row's id, so a crash between publishing and
// deleting, or two nodes publishing one row after a lease ran out, yields one
// event, not two.
//
// It is its own package rather than part of ingest because it is a consumer of
// the publish path, like the task service, and the place every later system
// event (task decisions, alerts) goes through; ingest stays the publish path
// alone.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"carrier/internal/ingest"
	"carrier/internal/store"
)

// IdempotencyPrefix starts the idempotency key of every event the relay
// publishes; the rest is the outbox row's id.
const IdempotencyPrefix = "outbox:"

// Config tunes the relay.
type Config struct {
	// Poll is how often the relay looks for rows without being woken: a
	// fallback for rows written by other nodes or left by a crash.
	Poll time.Duration
	// Lease is how long a claim holds a row; a row whose publish failed is
	// tried again once it runs out.
	Lease time.Duration
	// Batch is the most rows one claim takes.
	Batch int
	// PublishTimeout bounds one publish.
	PublishTimeout time.Duration
	// Hold, for tests only, delays every round by this much after the relay is
	// woken or its poll fires, so that a crash test can kill the process
	// between a change's commit and its event's publish. 0 in production.
	Hold time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{Poll: 10 * time.Second, Lease: 30 * time.Second, Batch: 100, PublishTimeout: 10 * time.Second}
}

// Publisher is the publish path the relay hands events to (ingest.Publisher).
type Publisher interface {
	Publish(ctx context.Context, in ingest.Input) (ingest.Result, error)
}

// maxRounds bounds the claims of one drain, so a relay that keeps finding
// rows still returns to its loop (and notices a shutdown); the next wake or
// poll goes on where it stopped.
const maxRounds = 100

// Relay publishes outbox rows.
type Relay struct {
	cfg   Config
	store store.OutboxStore
	pub   Publisher
	owner string
	log   *slog.Logger
	wake  chan struct{}
}

// New returns a relay that claims rows as owner: the node id that sends
// heartbeats (the engine's), so the leases of a dead node are rescued with its
// other leases.
func New(cfg Config, st store.OutboxStore, pub Publisher, owner string, log *slog.Logger) *Relay {
	d := DefaultConfig()
	if cfg.Poll <= 0 {
		cfg.Poll = d.Poll
	}
	if cfg.Lease <= 0 {
		cfg.Lease = d.Lease
	}
	if cfg.Batch <= 0 {
		cfg.Batch = d.Batch
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = d.PublishTimeout
	}
	return &Relay{cfg: cfg, store: st, pub: pub, owner: owner, log: log, wake: make(chan struct{}, 1)}
}

// Wake tells the relay that rows were written. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays rows until ctx is cancelled: at once (rows a previous run left),
// then whenever woken, and every Poll.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	for {
		if r.cfg.Hold > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.Hold):
			}
		}
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("relay outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// Drain publishes pending rows, claim by claim, until none is left (or
// maxRounds claims were made), and returns how many it published. A row whose
// publish fails stays leased and is tried again when its lease runs out.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	published := 0
	for range maxRounds {
		rows, err := r.store.ClaimOutbox(ctx, r.owner, r.cfg.Lease, time.Now(), r.cfg.Batch)
		if err != nil {
			return published, err
		}
		for _, row := range rows {
			if err := r.publish(ctx, row); err != nil {
				if ctx.Err() != nil || errors.Is(err, ingest.ErrClosed) {
					return published, nil // shutting down: the row waits for the next run
				}
				r.log.Error("publish outbox event", "id", row.ID, "type", row.Type, "project", row.ProjectID, "err", err)
				continue
			}
			published++
		}
		if len(rows) < r.cfg.Batch {
			return published, nil
		}
	}
	return published, nil
}

func (r *Relay) publish(ctx context.Context, row store.OutboxEvent) error {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	// The row's id is the event's id and, unless the event has a natural
	// idempotency key, prefixed, its idempotency key: a second publish of the
	// row (after a crash before the delete below, or by another node once a
	// lease ran out) is a duplicate of the first.
	key := row.IdempotencyKey
	if key == "" {
		key = IdempotencyPrefix + row.ID
	}
	_, err := r.pub.Publish(pctx, ingest.Input{
		ProjectID: row.ProjectID, Type: row.Type, Subject: row.Subject, Data: row.Data, Attributes: row.Attributes,
		IdempotencyKey: key, EventID: row.ID,
	})
	if err != nil {
		return err
	}
	// The event is committed: delete the row with a fresh context, so a
	// shutdown arriving now does not leave it to be published again (which
	// would be harmless, only wasted).
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer dcancel()
	if err := r.store.DeleteOutbox(dctx, row.ID); err != nil {
		// Published but not deleted: the next claim publishes it again, as a
		// duplicate, and deletes it then.
		r.log.Warn("delete published outbox row", "id", row.ID, "err", err)
	}
	return nil
}
