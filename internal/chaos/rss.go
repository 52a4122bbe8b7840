package chaos

import (
	"context"
	"sync"
	"time"
)

// RSSSample is the resident memory of each node at one moment.
type RSSSample struct {
	At    time.Duration // since the load started
	Bytes []int64       // per node slot
	Names []string      // the process of each slot (a restarted node is a new one)
}

type rssSampler struct {
	nodes []*Node
	every time.Duration
	mu    sync.Mutex
	got   []RSSSample
}

func (r *rssSampler) run(ctx context.Context) {
	every := r.every
	if every <= 0 {
		every = 10 * time.Second
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := RSSSample{At: time.Since(start)}
		for _, n := range r.nodes {
			s.Bytes = append(s.Bytes, n.RSS())
			s.Names = append(s.Names, n.Name())
		}
		r.mu.Lock()
		r.got = append(r.got, s)
		r.mu.Unlock()
	}
}

func (r *rssSampler) samples() []RSSSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RSSSample(nil), r.got...)
}
