package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Backlog bounds what waits for the store: a publish that cannot join the
// commit queue within MaxWait is refused (*OverloadedError, answered 503
// with Retry-After) rather than held, so a store that falls behind slows
// publishers down instead of growing Carrier's memory.
type Backlog struct {
	// MaxBytes bounds the publishes waiting to be committed, by their size
	// (CARRIER_PUBLISH_BACKLOG_BYTES; 0: only the queue's length bounds them).
	MaxBytes int64
	// MaxWait is how long a publish may wait to join the queue
	// (CARRIER_PUBLISH_BACKLOG_WAIT; 0: DefaultBacklogWait).
	MaxWait time.Duration
}

// DefaultBacklogWait is Backlog.MaxWait when none is set.
const DefaultBacklogWait = 2 * time.Second

func (b Backlog) wait() time.Duration {
	if b.MaxWait <= 0 {
		return DefaultBacklogWait
	}
	return b.MaxWait
}

// OverloadedError refuses a publish because the store is behind.
type OverloadedError struct{ Waited time.Duration }

func (e *OverloadedError) Error() string {
	return fmt.Sprintf("Carrier is behind: the publish could not be queued for the store within %s (CARRIER_PUBLISH_BACKLOG_WAIT, CARRIER_PUBLISH_BACKLOG_BYTES); retry after a second", e.Waited)
}

// pendingBytes counts the bytes of publishes between acceptance and
// commit, and lets a publish wait for room.
type pendingBytes struct {
	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced on every release
}

// acquire takes n bytes when they fit under max (a lone publish larger than
// max fits when nothing else waits), waiting for room until deadline fires
// or ctx ends.
func (p *pendingBytes) acquire(ctx context.Context, n, max int64, deadline <-chan time.Time) error {
	for {
		p.mu.Lock()
		if max <= 0 || p.used == 0 || p.used+n <= max {
			p.used += n
			p.mu.Unlock()
			return nil
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-deadline:
			return &OverloadedError{}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *pendingBytes) release(n int64) {
	p.mu.Lock()
	p.used -= n
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
	p.mu.Unlock()
}

// Pending is how many bytes of publishes wait to be committed.
func (p *Publisher) Pending() int64 {
	p.pending.mu.Lock()
	defer p.pending.mu.Unlock()
	return p.pending.used
}
