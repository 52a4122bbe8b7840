package maintenance

import (
	"context"
	"time"
)

// HistoryPruner deletes history in batches.
type HistoryPruner interface {
	Prune(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Pruner deletes finished history (events with their deliveries and
// attempts, completed tasks, redriven dead letters) older than Retention.
type Pruner struct {
	Store     HistoryPruner
	Retention time.Duration
	Every     time.Duration // default 10 minutes
}

func (p *Pruner) Name() string { return "pruner" }

func (p *Pruner) Interval() time.Duration { return or(p.Every, 10*time.Minute) }

// pruneBatch is how much one statement deletes; a round deletes at most
// 100 batches, so one round never holds the store for long.
const pruneBatch = 500

func (p *Pruner) Round(ctx context.Context) error {
	if p.Retention <= 0 {
		return nil
	}
	for range 100 {
		n, err := p.Store.Prune(ctx, time.Now().Add(-p.Retention), pruneBatch)
		if err != nil || n < pruneBatch {
			return err
		}
	}
	return nil
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
