package maintenance

import (
	"context"
	"time"
)

// TaskPoller asks the provider about tasks whose pingback is overdue.
type TaskPoller interface {
	PollDue(ctx context.Context) error
}

// Poller is the fallback poller: it asks the provider, in batches and within
// the cluster-wide request budget, about tasks whose pingback is overdue.
// Running on the leader only, it never runs on two nodes at once; the
// elector renews leadership on its own goroutine, so a slow round keeps it.
type Poller struct {
	Tasks TaskPoller
	Every time.Duration
}

func (p *Poller) Name() string { return "poller" }

func (p *Poller) Interval() time.Duration { return or(p.Every, time.Second) }

func (p *Poller) Round(ctx context.Context) error { return p.Tasks.PollDue(ctx) }
