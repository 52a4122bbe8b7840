// Package cluster is what lets several Carrier processes share one store
// without stepping on each other, after River's leadership, notifier and
// maintenance packages:
//
//   - node identity and heartbeats (Heartbeater): every process has one id,
//     used for every lease it takes (deliveries, tasks, outbox rows), and
//     says it is alive, so the leader can give back the leases of a process
//     that died;
//   - a leader elector (Elector): at most one process at a time holds the
//     leader lock (a lease row, renewed on its own goroutine), and it
//     reports every transition; on SQLite, where the data directory is
//     locked to one process, that process is the leader from the start;
//   - a notifier (Notifier): a change on one node (a subscription saved,
//     deliveries published, a queue message sent) wakes the others at once,
//     through PostgreSQL LISTEN/NOTIFY or, in one process, through channels;
//     polling is only the slow fallback;
//   - leader-only maintenance (Maintainer): services that must run on one
//     node at a time run while this node leads, and stop when it stops.
package cluster

import (
	"context"
	"time"

	"carrier/internal/clock"
)

// NewNodeID returns a fresh id for this process: unique across restarts,
// so a restarted process never inherits the leases of its predecessor.
func NewNodeID() string { return clock.NewID() }

// Every runs fn at once and then every interval until ctx ends: the loop
// of every periodic service. fn sees ctx, so it stops with the loop.
func Every(ctx context.Context, interval time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
