package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/ingest"
	"carrier/internal/match"
	"carrier/internal/outbox"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// failFirstDelete fails the first DeleteOutbox, as a crash right after a
// publish would leave the row behind.
type failFirstDelete struct {
	store.Store
	mu     sync.Mutex
	failed bool
}

func (s *failFirstDelete) DeleteOutbox(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return errors.New("injected: crashed before the delete")
	}
	return s.Store.DeleteOutbox(ctx, id)
}

// recording remembers what each publish returned.
type recording struct {
	*ingest.Publisher
	mu      sync.Mutex
	results []ingest.Result
}

func (p *recording) Publish(ctx context.Context, in ingest.Input) (ingest.Result, error) {
	res, err := p.Publisher.Publish(ctx, in)
	if err == nil {
		p.mu.Lock()
		p.results = append(p.results, res)
		p.mu.Unlock()
	}
	return res, err
}

// TestRelayRepublishIsDuplicate: a row published but not deleted (the crash
// window between the two) is published again as a duplicate of the first
// publish, so one event and one delivery exist, and the row is then gone.
func TestRelayRepublishIsDuplicate(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			st := e.Open(t)
			now := time.Now().UTC().Truncate(time.Millisecond)
			p := store.Project{ID: newID(), Name: "p", CreatedAt: now}
			must(t, st.CreateProject(ctx, p))
			sub := func(types ...string) store.Subscription {
				id := newID()
				s := store.Subscription{
					ID: id, ProjectID: p.ID, Name: "sub " + id, Kind: "webhook", URL: "https://example.com/" + id,
					EventTypes: types, Scope: "all", SubjectIDs: []string{}, Headers: map[string]string{},
					Tags: []string{}, TimeoutSeconds: 10, MaxRetries: 5, BackoffMultiplier: 2, Secret: "whsec_c2VjcmV0",
					FilterScope: "attributes", Active: true, CreatedAt: now, UpdatedAt: now,
				}
				must(t, st.CreateSubscription(ctx, s))
				return s
			}
			failing, observer := sub("t"), sub("webhook.disabled")

			// Disable the failing subscription the engine's way: a 410 outcome.
			ev := store.NewEvent{Event: store.Event{ID: newID(), ProjectID: p.ID, Type: "t", Data: json.RawMessage(`{}`),
				Attributes: map[string]string{}, CreatedAt: now}, SubscriptionIDs: []string{failing.ID}, DeliveryIDs: []string{newID()}}
			_, err := st.InsertEvents(ctx, []store.NewEvent{ev}, now.Add(-time.Hour))
			must(t, err)
			jobs, err := st.ClaimDeliveries(ctx, store.ClaimOptions{Owner: "w", Limit: 10, Lease: time.Minute, Now: now})
			must(t, err)
			if len(jobs) != 1 {
				t.Fatalf("claimed %d jobs, want 1", len(jobs))
			}
			o := store.Outcome{DeliveryID: jobs[0].Delivery.ID, ProjectID: p.ID, SubscriptionID: failing.ID, LeaseOwner: "w", LeaseToken: jobs[0].LeaseToken,
				State: store.StateFailed, Disable: true, DisableReason: "gone",
				Attempt: store.Attempt{ID: newID(), DeliveryID: jobs[0].Delivery.ID, ProjectID: p.ID, StatusCode: 410, CreatedAt: now}}
			dis, err := st.CompleteAttempts(ctx, []store.Outcome{o}, now)
			must(t, err)
			if len(dis) != 1 {
				t.Fatalf("disabled %v, want one", dis)
			}

			m, err := match.NewMatcher(ctx, st)
			must(t, err)
			pub := &recording{Publisher: ingest.NewPublisher(st, m, nil, 1)}
			pub.Start()
			defer pub.Close()
			// A lease of 1 ms: the undeleted row is claimable again at once.
			r := outbox.New(outbox.Config{Lease: time.Millisecond}, &failFirstDelete{Store: st}, pub, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
			for round := range 2 {
				time.Sleep(5 * time.Millisecond) // past the 1 ms lease of the round before
				n, err := r.Drain(ctx)
				must(t, err)
				if n != 1 {
					t.Fatalf("drain %d published %d rows, want 1", round+1, n)
				}
			}
			time.Sleep(5 * time.Millisecond)
			if n, err := r.Drain(ctx); err != nil || n != 0 {
				t.Fatalf("drain after the delete: %d rows, %v; want none", n, err)
			}
			pub.mu.Lock()
			results := append([]ingest.Result(nil), pub.results...)
			pub.mu.Unlock()
			if len(results) != 2 || results[0].Duplicate || !results[1].Duplicate || results[0].EventID != results[1].EventID {
				t.Fatalf("publish results %+v, want a new event and then a duplicate of it", results)
			}
			events, err := st.ListEvents(ctx, p.ID, 100, 0)
			must(t, err)
			var disabled []store.Event
			for _, e := range events {
				if e.Type == "webhook.disabled" {
					disabled = append(disabled, e)
				}
			}
			if len(disabled) != 1 || disabled[0].ID != results[0].EventID || disabled[0].Subject != failing.ID {
				t.Fatalf("webhook.disabled events %+v, want one for %s with id %s", disabled, failing.ID, results[0].EventID)
			}
			ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{ProjectID: p.ID, SubscriptionID: observer.ID, Limit: 10})
			must(t, err)
			if len(ds) != 1 {
				t.Errorf("observer has %d deliveries, want 1", len(ds))
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
