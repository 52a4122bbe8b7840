package maintenance

import (
	"context"
	"time"
)

// TaskExpirer expires tasks past their maximum age.
type TaskExpirer interface {
	ExpireDue(ctx context.Context) error
}

// Expirer expires tasks that took longer than their maximum age.
type Expirer struct {
	Tasks TaskExpirer
	Every time.Duration
}

func (e *Expirer) Name() string { return "expirer" }

func (e *Expirer) Interval() time.Duration { return or(e.Every, time.Second) }

func (e *Expirer) Round(ctx context.Context) error { return e.Tasks.ExpireDue(ctx) }
