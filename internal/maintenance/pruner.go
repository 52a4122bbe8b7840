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
//
// It deletes in batches, each its own short transaction, and rests between
// them at least as long as the batch took, so on SQLite (one writer) a
// publish waits for at most one batch, and pruning never takes more than
// about half of the writer's time however much has expired.
type Pruner struct {
	Store     HistoryPruner
	Retention time.Duration
	Every     time.Duration // default 10 minutes
	Batch     int           // events per batch (and 10× as many deliveries); default 500
	Pause     time.Duration // least rest between batches; default 10ms
	// MaxRound bounds one round's time; default half of the interval, so a
	// large backlog is caught up over a few rounds instead of blocking the
	// leader's other services.
	MaxRound time.Duration
}

func (p *Pruner) Name() string { return "pruner" }

func (p *Pruner) Interval() time.Duration { return or(p.Every, 10*time.Minute) }

// maxBatches bounds one round in count, besides MaxRound in time.
const maxBatches = 100_000

func (p *Pruner) Round(ctx context.Context) error {
	if p.Retention <= 0 {
		return nil
	}
	batch := p.Batch
	if batch <= 0 {
		batch = 500
	}
	start := time.Now()
	deadline := start.Add(or(p.MaxRound, p.Interval()/2))
	cutoff := start.Add(-p.Retention)
	for range maxBatches {
		began := time.Now()
		n, err := p.Store.Prune(ctx, cutoff, batch)
		if err != nil || n < batch {
			return err
		}
		took := time.Since(began)
		if time.Now().Add(max(took, p.pause())).After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(took, p.pause())):
		}
	}
	return nil
}

func (p *Pruner) pause() time.Duration { return or(p.Pause, 10*time.Millisecond) }

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
