package maintenance

import (
	"context"
	"time"

	"carrier/internal/store"
)

// Partitioner keeps PostgreSQL's attempts partitions: one per UTC day,
// created Ahead of time so new attempts never land in the default partition,
// and dropped whole once Retention has passed their last day, instead of
// deleting their rows one by one.
type Partitioner struct {
	Store     store.Partitions
	Retention time.Duration // 0 keeps every partition
	Ahead     time.Duration // default 3 days, so a leader down for a weekend costs nothing
	Every     time.Duration // default 1 hour
}

func (p *Partitioner) Name() string { return "partitioner" }

func (p *Partitioner) Interval() time.Duration { return or(p.Every, time.Hour) }

func (p *Partitioner) Round(ctx context.Context) error {
	_, err := p.Store.MaintainPartitions(ctx, time.Now(), or(p.Ahead, 72*time.Hour), p.Retention)
	return err
}
