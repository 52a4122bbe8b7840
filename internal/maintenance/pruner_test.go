package maintenance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// batches records each Prune call the pruner makes on a real store.
type batches struct {
	store.Store
	limits, results []int
}

func (b *batches) Prune(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := b.Store.Prune(ctx, cutoff, limit)
	b.limits = append(b.limits, limit)
	b.results = append(b.results, n)
	return n, err
}

// TestPrunerBatches checks that a round prunes a backlog larger than a batch
// in batches of Batch, each its own Prune call (one short transaction, so a
// publish on SQLite waits for one batch at most), until it is caught up, and
// keeps what has not expired or not finished.
func TestPrunerBatches(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			st := e.Open(t)
			now := time.Now()
			if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			id := func() string { return uuid.Must(uuid.NewV7()).String() }
			event := func(at time.Time, subs ...string) store.NewEvent {
				ne := store.NewEvent{Event: store.Event{ID: id(), ProjectID: "p", Type: "t", Data: []byte(`{}`),
					Attributes: map[string]string{}, CreatedAt: at}, SubscriptionIDs: subs}
				for range subs {
					ne.DeliveryIDs = append(ne.DeliveryIDs, id())
				}
				return ne
			}
			sub := store.Subscription{ID: id(), ProjectID: "p", Name: "s", Kind: "webhook", URL: "https://example.com/h",
				EventTypes: []string{"t"}, Scope: "all", SubjectIDs: []string{}, Headers: map[string]string{}, Tags: []string{},
				TimeoutSeconds: 10, MaxRetries: 5, BackoffMultiplier: 2, Secret: "whsec_c2VjcmV0", FilterScope: "attributes",
				Active: true, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateSubscription(ctx, sub); err != nil {
				t.Fatal(err)
			}
			old := now.Add(-48 * time.Hour)
			var expired, kept []store.NewEvent
			for i := range 25 {
				expired = append(expired, event(old.Add(time.Duration(i)*time.Millisecond)))
			}
			for range 3 {
				kept = append(kept, event(old, sub.ID)) // a pending delivery
			}
			kept = append(kept, event(now.Add(-time.Minute)), event(now.Add(-time.Minute), sub.ID))
			if _, err := st.InsertEvents(ctx, append(slices.Clone(expired), kept...), now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}

			rec := &batches{Store: st}
			p := &Pruner{Store: rec, Retention: 24 * time.Hour, Batch: 10, Pause: time.Millisecond}
			if err := p.Round(ctx); err != nil {
				t.Fatal(err)
			}
			if got, want := rec.limits, []int{10, 10, 10}; !slices.Equal(got, want) {
				t.Errorf("batch sizes: got %v, want %v", got, want)
			}
			if got, want := rec.results, []int{10, 10, 5}; !slices.Equal(got, want) {
				t.Errorf("pruned per batch: got %v, want %v", got, want)
			}
			for _, ne := range expired {
				if _, err := st.GetEvent(ctx, "p", ne.Event.ID); err == nil {
					t.Errorf("expired event %s kept", ne.Event.ID)
				}
			}
			for _, ne := range kept {
				if _, err := st.GetEvent(ctx, "p", ne.Event.ID); err != nil {
					t.Errorf("event %s: %v", ne.Event.ID, err)
				}
			}
		})
	}
}

// TestPrunerRoundBounded checks that a round stops at MaxRound and leaves the
// rest to the next round.
func TestPrunerRoundBounded(t *testing.T) {
	full := &fullPruner{}
	p := &Pruner{Store: full, Retention: time.Hour, Batch: 10, Pause: 5 * time.Millisecond, MaxRound: 50 * time.Millisecond}
	if err := p.Round(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 50ms of 5ms pauses: about 10 calls, and certainly fewer than 100.
	if full.calls < 1 || full.calls >= 100 {
		t.Errorf("calls in a bounded round: got %d, want between 1 and 100", full.calls)
	}
}

// fullPruner always has a full batch left: a backlog that never ends.
type fullPruner struct{ calls int }

func (f *fullPruner) Prune(_ context.Context, _ time.Time, limit int) (int, error) {
	f.calls++
	return limit, nil
}
