package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"carrier/internal/match"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// gatedStore is the real store, with InsertEvents held until the test
// opens the gate: a store that has fallen behind.
type gatedStore struct {
	store.Store
	gate chan struct{}
}

func (g *gatedStore) InsertEvents(ctx context.Context, events []store.NewEvent, idemSince time.Time) ([]store.InsertResult, error) {
	<-g.gate
	return g.Store.InsertEvents(ctx, events, idemSince)
}

// TestBacklogRefusesWhenTheStoreIsBehind: while the store holds a commit,
// publishes wait for room up to the backlog's bytes; one that finds none
// within MaxWait is refused with *OverloadedError (it is not held in memory),
// the bytes waiting never pass the bound, and once the store catches up
// publishing works again and nothing accepted is lost.
func TestBacklogRefusesWhenTheStoreIsBehind(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			st := e.Open(t)
			if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			m, err := match.NewMatcher(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			gated := &gatedStore{Store: st, gate: make(chan struct{})}
			p := NewPublisher(gated, m, nil, 1)
			p.Backlog = Backlog{MaxBytes: 100 << 10, MaxWait: 300 * time.Millisecond}
			p.Start()
			defer p.Close()
			big, _ := json.Marshal(map[string]string{"blob": strings.Repeat("x", 60<<10)})
			first := make(chan error, 1)
			go func() {
				_, err := p.Publish(ctx, Input{ProjectID: "p", Type: "big", Data: big})
				first <- err
			}()
			deadline := time.Now().Add(5 * time.Second)
			for p.Pending() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if p.Pending() == 0 {
				t.Fatal("the first publish never reached the commit queue")
			}
			start := time.Now()
			_, err = p.Publish(ctx, Input{ProjectID: "p", Type: "big", Data: big})
			waited := time.Since(start)
			var oe *OverloadedError
			if !errors.As(err, &oe) || waited < 300*time.Millisecond || waited > 3*time.Second {
				t.Fatalf("second publish while the store is behind: %v after %s", err, waited)
			}
			if !strings.Contains(err.Error(), "CARRIER_PUBLISH_BACKLOG") {
				t.Errorf("the refusal does not name the settings: %v", err)
			}
			if got := p.Pending(); got > 100<<10 {
				t.Errorf("%d bytes wait, more than the 100 KiB bound", got)
			}
			close(gated.gate) // the store catches up
			if err := <-first; err != nil {
				t.Fatalf("the accepted publish: %v", err)
			}
			res, err := p.Publish(ctx, Input{ProjectID: "p", Type: "big", Data: big})
			if err != nil {
				t.Fatalf("after the store caught up: %v", err)
			}
			if _, err := st.GetEvent(ctx, "p", res.EventID); err != nil {
				t.Fatalf("the later publish is not stored: %v", err)
			}
			// A batch's bytes are given back once the whole batch is done,
			// just after its replies: wait for that, bounded.
			for deadline := time.Now().Add(2 * time.Second); p.Pending() != 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if got := p.Pending(); got != 0 {
				t.Errorf("%d bytes still counted as waiting", got)
			}
		})
	}
}
