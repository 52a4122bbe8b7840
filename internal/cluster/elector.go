package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Locker is the store's named lease locks.
type Locker interface {
	// TryLock takes or renews the named lock for owner until until, unless
	// another owner holds it past now; it reports whether owner holds it.
	TryLock(ctx context.Context, name, owner string, until, now time.Time) (bool, error)
	// Unlock releases the lock if owner holds it.
	Unlock(ctx context.Context, name, owner string) error
}

// LeaderLock is the name of the leader's lock row.
const LeaderLock = "leader"

// DefaultLeaderLease is how long the leader's lock lasts without renewal:
// a killed leader is replaced within about this long.
const DefaultLeaderLease = 10 * time.Second

// Elector decides whether this node is the leader. It tries for the lock
// every Lease/5 and, once it has it, renews it as often on its own
// goroutine, so a long job run by the leader (a poll round) never outlives
// the lock. It gives leadership up itself when it could not renew for
// 3/5 of the lease, before any other node can take the lock, so two nodes
// never both believe they lead.
type Elector struct {
	Locker Locker
	Node   string
	Lease  time.Duration
	// Exclusive says no other process uses the store (SQLite, whose data
	// directory is locked to one process): this node leads from the start
	// and takes no lock.
	Exclusive bool
	Log       *slog.Logger

	mu      sync.Mutex
	leading bool
	renewed time.Time     // when the lock was last taken or renewed
	changed chan struct{} // closed and replaced on every transition
}

func (e *Elector) init() {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	if e.Lease <= 0 {
		e.Lease = DefaultLeaderLease
	}
}

// Leading reports whether this node leads now, and a channel closed at the
// next transition.
func (e *Elector) Leading() (bool, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.init()
	return e.leading, e.changed
}

func (e *Elector) set(leading bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.init()
	if e.leading == leading {
		return
	}
	e.leading = leading
	close(e.changed)
	e.changed = make(chan struct{})
	if e.Log != nil {
		e.Log.Info("leadership changed", "node", e.Node, "leader", leading)
	}
}

// Sure reports whether this node leads and renewed the lock recently enough
// that no other node can have taken it: within 3/5 of the lease. A process
// that was paused (SIGSTOP, a long GC or VM stall) still believes it leads
// when it wakes, until its next renewal fails; Sure is false for it at once,
// so it runs no leader-only round meanwhile.
func (e *Elector) Sure() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.Exclusive {
		return e.leading
	}
	return e.leading && time.Since(e.renewed) < e.Lease*3/5
}

func (e *Elector) markRenewed(at time.Time) {
	e.mu.Lock()
	e.renewed = at
	e.mu.Unlock()
}

// Run elects until ctx ends, then gives the lock up, so another node takes
// over at once rather than after the lease.
func (e *Elector) Run(ctx context.Context) {
	e.mu.Lock()
	e.init()
	e.mu.Unlock()
	if e.Exclusive {
		e.set(true)
		<-ctx.Done()
		e.set(false)
		return
	}
	interval := e.Lease / 5
	var renewed time.Time // when the lock was last taken or renewed
	Every(ctx, interval, func(ctx context.Context) {
		now := time.Now()
		got, err := e.Locker.TryLock(ctx, LeaderLock, e.Node, now.Add(e.Lease), now)
		switch {
		case err == nil && got:
			renewed = now
			e.markRenewed(now)
			e.set(true)
		case err == nil:
			e.set(false)
		default:
			if ctx.Err() == nil {
				e.Log.Warn("leader lock", "err", err)
			}
			// Not known either way: keep leading while the lock surely
			// still holds, with room for clock skew and a slow store.
			if leading, _ := e.Leading(); leading && time.Since(renewed) > e.Lease*3/5 {
				e.set(false)
			}
		}
	})
	leading, _ := e.Leading()
	e.set(false)
	if leading {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Locker.Unlock(uctx, LeaderLock, e.Node); err != nil {
			e.Log.Warn("give up the leader lock", "err", err)
		}
	}
}
