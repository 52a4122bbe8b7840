package maintenance

import (
	"context"
	"log/slog"
	"time"
)

// LeaseRescuer gives back the leases of nodes whose heartbeats stopped.
type LeaseRescuer interface {
	RescueLeases(ctx context.Context, self string, staleBefore time.Time) (int, error)
}

// Rescuer gives back the delivery, task and outbox leases of nodes that
// stopped sending heartbeats (killed, or cut off from the database), so
// their work is taken by live nodes instead of waiting out the leases.
type Rescuer struct {
	Store LeaseRescuer
	Node  string
	// NodeTimeout is how long without a heartbeat makes a node count as dead.
	NodeTimeout time.Duration
	// Exclusive says no other process uses the store (SQLite): every lease
	// not this node's belonged to a dead predecessor, and the first round
	// gives them all back at once.
	Exclusive bool
	Every     time.Duration // default 2 seconds
	// Wake is told when leases were given back (the engine claims them).
	Wake func()
	Log  *slog.Logger

	started bool
}

func (r *Rescuer) Name() string { return "rescuer" }

func (r *Rescuer) Interval() time.Duration { return or(r.Every, 2*time.Second) }

func (r *Rescuer) Round(ctx context.Context) error {
	staleBefore := time.Now().Add(-or(r.NodeTimeout, 15*time.Second))
	if r.Exclusive && !r.started {
		staleBefore = time.Now().Add(time.Hour)
	}
	n, err := r.Store.RescueLeases(ctx, r.Node, staleBefore)
	if err != nil {
		return err
	}
	r.started = true
	if n > 0 {
		r.Log.Warn("released leases of a process that stopped", "deliveries", n)
		if r.Wake != nil {
			r.Wake()
		}
	}
	return nil
}
