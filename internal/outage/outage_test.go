package outage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"carrier/internal/ingest"
	"carrier/internal/match"
	"carrier/internal/outage"
	"carrier/internal/spool"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// TestReplayDeadLettersRefusedRecords writes records straight to the spool,
// as a process before this fix (or one whose store said no for another
// reason) could have left them: a publish with a NUL in its subject, one whose
// event id the store already holds, and good ones after them. Replay must
// keep the two refused ones as visible dead letters of their project and
// store the rest, leaving the spool empty, instead of stopping at the first.
func TestReplayDeadLettersRefusedRecords(t *testing.T) {
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
			pub := ingest.NewPublisher(st, m, nil, 1)
			pub.Start()
			defer pub.Close()
			first, err := pub.Publish(ctx, ingest.Input{ProjectID: "p-a", Type: "first", IdempotencyKey: "first"})
			if err != nil {
				t.Fatal(err)
			}
			sp, err := spool.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()

			records := []ingest.Input{
				{ProjectID: "p-a", Type: "nul", Subject: "a\x00b", EventID: "e-nul", IdempotencyKey: "k-nul"},
				{ProjectID: "p-b", Type: "good", Subject: "one", EventID: "e-good-1", IdempotencyKey: "k-1"},
				{ProjectID: "p-a", Type: "taken", EventID: first.EventID, IdempotencyKey: "k-taken"},
				{ProjectID: "p-b", Type: "good", Subject: "two", EventID: "e-good-2", IdempotencyKey: "k-2"},
			}
			for _, in := range records {
				b, err := json.Marshal(in)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := sp.Append(outage.KindPublish, b); err != nil {
					t.Fatal(err)
				}
			}
			s := outage.New(sp, nil, pub, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			n, err := s.ReplayOnce(ctx)
			if err != nil || n != len(records) {
				t.Fatalf("ReplayOnce = %d, %v; want %d records and no error", n, err, len(records))
			}
			if s.Pending() != 0 {
				t.Errorf("%d records still pending", s.Pending())
			}
			for _, id := range []string{"e-good-1", "e-good-2"} {
				if _, err := st.GetEvent(ctx, "p-b", id); err != nil {
					t.Errorf("good record %s not stored: %v", id, err)
				}
			}
			dead, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{ProjectID: "p-a"})
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 2 {
				t.Fatalf("%d dead letters in p-a, want 2: %+v", len(dead), dead)
			}
			for _, d := range dead {
				if d.Source != outage.DeadLetterSource || d.Reason != outage.ReasonRejected || d.Status != store.DeadLetterPending {
					t.Errorf("dead letter %+v: want source %s, reason %s, pending", d, outage.DeadLetterSource, outage.ReasonRejected)
				}
				if !strings.Contains(d.Body, `"EventID"`) || strings.ContainsRune(d.Body, 0) {
					t.Errorf("dead letter body %q: want the spooled record, storable", d.Body)
				}
			}
			if other, _ := st.ListDeadLetters(ctx, store.DeadLetterFilter{ProjectID: "p-b"}); len(other) != 0 {
				t.Errorf("p-b has dead letters %+v, want none", other)
			}
		})
	}
}

// TestRedriveSpooledPublish: a spooled publish the store refused is a dead
// letter that can be redriven: while the cause lasts, the redrive is refused
// and recorded on it (still pending, redrives counted, last error); once the
// cause is gone (here the event holding its id was pruned), the redrive
// stores the event with the id it was acknowledged with and marks the dead
// letter redriven, and a second redrive is refused as already done. A dead
// letter that is not a publish needs the tasks service.
func TestRedriveSpooledPublish(t *testing.T) {
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
			pub := ingest.NewPublisher(st, m, nil, 1)
			pub.Start()
			defer pub.Close()
			first, err := pub.Publish(ctx, ingest.Input{ProjectID: "p-a", Type: "first"})
			if err != nil {
				t.Fatal(err)
			}
			sp, err := spool.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			s := outage.New(sp, nil, pub, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err := s.Publish(ingest.Input{ProjectID: "p-a", Type: "taken", Subject: "spooled", EventID: first.EventID, IdempotencyKey: "k-taken"}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.ReplayOnce(ctx); n != 1 || err != nil {
				t.Fatalf("ReplayOnce = %d, %v", n, err)
			}
			dead, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{ProjectID: "p-a", Source: outage.DeadLetterSource})
			if err != nil || len(dead) != 1 || !outage.IsSpooledPublish(dead[0]) {
				t.Fatalf("spool dead letters: %+v, %v", dead, err)
			}
			id := dead[0].ID

			if _, err := s.Redrive(ctx, "p-b", id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("redrive from another project: %v, want not found", err)
			}
			_, err = s.Redrive(ctx, "p-a", id)
			var rerr *task.RedriveError
			if !errors.As(err, &rerr) {
				t.Fatalf("redrive while the id is taken: %v, want a RedriveError", err)
			}
			d, err := st.GetDeadLetter(ctx, "p-a", id)
			if err != nil || d.Status != store.DeadLetterPending || d.Redrives != 1 || d.LastError == "" {
				t.Fatalf("after a refused redrive: %+v, %v; want pending, 1 redrive, the error", d, err)
			}

			// The cause goes away: the event that held the id is pruned.
			if _, err := st.Prune(ctx, time.Now().Add(time.Hour), 1000); err != nil {
				t.Fatal(err)
			}
			d, err = s.Redrive(ctx, "p-a", id)
			if err != nil || d.Status != store.DeadLetterRedriven || d.Redrives != 2 || d.LastError != "" || d.RedrivenAt == nil {
				t.Fatalf("redrive: %+v, %v; want redriven", d, err)
			}
			ev, err := st.GetEvent(ctx, "p-a", first.EventID)
			if err != nil || ev.Type != "taken" || ev.Subject != "spooled" {
				t.Errorf("redriven event: %+v, %v", ev, err)
			}
			if _, err := s.Redrive(ctx, "p-a", id); !errors.Is(err, task.ErrAlreadyRedriven) {
				t.Errorf("second redrive: %v, want ErrAlreadyRedriven", err)
			}

			// A pingback's dead letter, with async tasks off.
			cb := store.DeadLetter{ID: "dl-callback", ProjectID: "p-a", TaskID: "t-1", Source: "callback", Reason: "unknown_provider_id",
				Method: "GET", Query: "id=1", Status: store.DeadLetterPending, CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := st.CreateDeadLetter(ctx, cb); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Redrive(ctx, "p-a", cb.ID); !errors.Is(err, outage.ErrNotRedrivable) {
				t.Errorf("pingback dead letter without tasks: %v, want ErrNotRedrivable", err)
			}
		})
	}
}
