package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Service is one leader-only maintenance service (pruner, queue pruner,
// lease rescuer, fallback poller, expirer): a round of work repeated every
// interval, on one node of the cluster at a time.
type Service interface {
	// Name names the service in logs and metrics.
	Name() string
	// Interval is how long between the starts of two rounds.
	Interval() time.Duration
	// Round does one round. It returns when its work is done or ctx ends
	// (this node stopped leading, or shuts down).
	Round(ctx context.Context) error
}

// Maintainer runs its services while the elector says this node leads, and
// stops them (waiting until their rounds return) as soon as it does not.
type Maintainer struct {
	Elector  *Elector
	Services []Service
	Log      *slog.Logger
	// Rounds, when set, is called after every round with the service's
	// name (metrics count rounds per node with it, so tests can see that
	// maintenance runs on one node at a time).
	Rounds func(name string)
}

// Run follows leadership until ctx ends.
func (m *Maintainer) Run(ctx context.Context) {
	for {
		leading, changed := m.Elector.Leading()
		if !leading {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		}
		lctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, s := range m.Services {
			wg.Add(1)
			go func() { defer wg.Done(); m.run(lctx, s) }()
		}
		select {
		case <-ctx.Done():
		case <-changed:
		}
		stop()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

func (m *Maintainer) run(ctx context.Context, s Service) {
	Every(ctx, s.Interval(), func(ctx context.Context) {
		if !m.Elector.Sure() {
			// Woken from a pause: another node may lead by now, and the
			// elector has not noticed yet.
			return
		}
		start := time.Now()
		err := s.Round(ctx)
		if err != nil && ctx.Err() == nil {
			m.Log.Error("maintenance", "service", s.Name(), "err", err)
		}
		// At debug level, so that a test (the chaos harness) can check that
		// rounds never overlap across nodes.
		m.Log.Debug("maintenance round", "service", s.Name(), "start_ms", start.UnixMilli(), "end_ms", time.Now().UnixMilli())
		if m.Rounds != nil && ctx.Err() == nil {
			m.Rounds(s.Name())
		}
	})
}
