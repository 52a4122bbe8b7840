package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"carrier/internal/match"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// TestGroupCommitIsolatesARejectedEvent puts one event the store rejects for
// good (its id is taken already: what a stale spool replay looks like) into a
// group commit with 19 good ones from two projects. Only the bad one gets an
// error; every good one is acknowledged and stored.
func TestGroupCommitIsolatesARejectedEvent(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			st := e.Open(t)
			for _, id := range []string{"p-a", "p-b"} {
				if err := st.CreateProject(ctx, store.Project{ID: id, Name: id, CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			m, err := match.NewMatcher(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			p := NewPublisher(st, m, nil, 1)
			taken, err := p.publishNow(ctx, Input{ProjectID: "p-a", Type: "first"})
			if err != nil {
				t.Fatal(err)
			}

			// Queue every request before the committer starts, so that they
			// are certainly one batch.
			const n = 20
			const bad = 7
			type outcome struct {
				res Result
				err error
			}
			out := make([]outcome, n)
			var wg sync.WaitGroup
			for i := range n {
				in := Input{ProjectID: []string{"p-a", "p-b"}[i%2], Type: "burst", Subject: "good"}
				if i == bad {
					in.EventID, in.Subject = taken.EventID, "bad"
				}
				wg.Go(func() {
					res, err := p.Publish(ctx, in)
					out[i] = outcome{res, err}
				})
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(p.reqs) < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if len(p.reqs) != n {
				t.Fatalf("%d requests queued, want %d", len(p.reqs), n)
			}
			p.Start()
			wg.Wait()
			p.Close()

			for i, o := range out {
				if i == bad {
					if o.err == nil || !store.IsRejected(o.err) {
						t.Errorf("event %d (id taken): error %v, want a rejection", i, o.err)
					}
					continue
				}
				if o.err != nil {
					t.Errorf("event %d: %v, want it stored", i, o.err)
					continue
				}
				got, err := st.GetEvent(ctx, []string{"p-a", "p-b"}[i%2], o.res.EventID)
				if err != nil || got.Subject != "good" {
					t.Errorf("event %d acknowledged as %s but not stored: %v %+v", i, o.res.EventID, err, got)
				}
			}
			if got, _ := st.GetEvent(ctx, "p-a", taken.EventID); got.Type != "first" {
				t.Errorf("the first event was changed: %+v", got)
			}
		})
	}
}

// publishNow commits one event with a committer of its own, before the
// publisher under test starts.
func (p *Publisher) publishNow(ctx context.Context, in Input) (Result, error) {
	q := NewPublisher(p.store, p.matcher, nil, 1)
	q.Start()
	defer q.Close()
	return q.Publish(ctx, in)
}
