package maintenance

import (
	"context"
	"time"
)

// QueueMessagePruner deletes queue messages past their queue's retention.
type QueueMessagePruner interface {
	Prune(ctx context.Context) (int, error)
}

// QueuePruner deletes pull-queue messages past their queue's retention.
type QueuePruner struct {
	Queues QueueMessagePruner
	Every  time.Duration // default 1 minute
}

func (p *QueuePruner) Name() string { return "queue_pruner" }

func (p *QueuePruner) Interval() time.Duration { return or(p.Every, time.Minute) }

func (p *QueuePruner) Round(ctx context.Context) error {
	_, err := p.Queues.Prune(ctx)
	return err
}
