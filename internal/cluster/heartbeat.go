package cluster

import (
	"context"
	"log/slog"
	"time"
)

// NodeStore records which processes are alive.
type NodeStore interface {
	// Heartbeat records that the process owner is alive.
	Heartbeat(ctx context.Context, owner string, now time.Time) error
	// RemoveNode forgets a process that is shutting down.
	RemoveNode(ctx context.Context, owner string) error
}

// Heartbeater keeps this node's heartbeat fresh, so that the lease rescuer
// (on the leader) knows the leases it holds belong to a live process.
type Heartbeater struct {
	Store    NodeStore
	Node     string
	Interval time.Duration
	Log      *slog.Logger
}

// Beat records one heartbeat now: before the node takes its first lease.
func (h *Heartbeater) Beat(ctx context.Context) error {
	return h.Store.Heartbeat(ctx, h.Node, time.Now())
}

// Run beats every Interval until ctx ends, then removes the node, so a
// graceful shutdown does not wait for the node to time out.
func (h *Heartbeater) Run(ctx context.Context) {
	Every(ctx, h.Interval, func(ctx context.Context) {
		if err := h.Beat(ctx); err != nil && ctx.Err() == nil {
			h.Log.Error("heartbeat", "err", err)
		}
	})
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Store.RemoveNode(rctx, h.Node); err != nil {
		h.Log.Error("remove node at shutdown", "err", err)
	}
}
