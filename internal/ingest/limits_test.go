package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/match"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// TestFanoutCap: a tenant's publish that matches more subscriptions than
// MaxFanout is refused with the count and the setting, and nothing of it is
// stored, while the publishes committed with it in one group are not
// affected; a system event (no CapFanout) fans out to all of them.
func TestFanoutCap(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			st := e.Open(t)
			now := time.Now().UTC().Truncate(time.Millisecond)
			if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			// Two subscriptions take "wide", one of them "narrow" too.
			for i, types := range [][]string{{"wide", "narrow"}, {"wide"}, {"other"}} {
				sub := store.Subscription{ID: fmt.Sprintf("sub-%d", i), ProjectID: "p", Name: fmt.Sprint(i), Kind: "webhook",
					URL: "https://example.com/", EventTypes: types, Scope: "all", SubjectIDs: []string{}, Headers: map[string]string{},
					Tags: []string{}, TimeoutSeconds: 10, MaxRetries: 1, BackoffMultiplier: 2, Secret: "whsec_c2VjcmV0",
					FilterScope: "attributes", Active: true, CreatedAt: now, UpdatedAt: now}
				if err := st.CreateSubscription(ctx, sub); err != nil {
					t.Fatal(err)
				}
			}
			m, err := match.NewMatcher(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			p := NewPublisher(st, m, nil, 1)
			p.MaxFanout = 1
			ins := []Input{
				{ProjectID: "p", Type: "wide", Subject: "refused", CapFanout: true},
				{ProjectID: "p", Type: "narrow", Subject: "one", CapFanout: true},
				{ProjectID: "p", Type: "wide", Subject: "system"},
			}
			type outcome struct {
				res Result
				err error
			}
			out := make([]outcome, len(ins))
			var wg sync.WaitGroup
			for i, in := range ins {
				wg.Go(func() {
					res, err := p.Publish(ctx, in)
					out[i] = outcome{res, err}
				})
			}
			// One group commit for all three.
			deadline := time.Now().Add(10 * time.Second)
			for len(p.reqs) < len(ins) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			p.Start()
			wg.Wait()
			p.Close()

			var fe *FanoutError
			if !errors.As(out[0].err, &fe) || fe.Count != 2 || fe.Max != 1 {
				t.Errorf("publish matching 2 with a cap of 1: %v, want a FanoutError of 2 over 1", out[0].err)
			} else if msg := fe.Error(); !contains(msg, "CARRIER_MAX_FANOUT_PER_EVENT") || !contains(msg, "2 subscriptions") {
				t.Errorf("error %q does not name the setting and the count", msg)
			}
			if out[1].err != nil || out[1].res.Deliveries != 1 {
				t.Errorf("publish matching 1: %+v %v", out[1].res, out[1].err)
			}
			if out[2].err != nil || out[2].res.Deliveries != 2 {
				t.Errorf("system event: %+v %v, want 2 deliveries", out[2].res, out[2].err)
			}
			events, err := st.ListEvents(ctx, "p", 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range events {
				if ev.Subject == "refused" {
					t.Errorf("the refused publish was stored: %+v", ev)
				}
			}
			if len(events) != 2 {
				t.Errorf("%d events stored, want 2", len(events))
			}
			ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{ProjectID: "p", Limit: 100})
			if err != nil || len(ds) != 3 {
				t.Errorf("%d deliveries stored (%v), want 3", len(ds), err)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestRateLimiter: a bucket per project, all or nothing, refilled with time,
// saying when to come back; a batch larger than the burst never fits; nil
// and rate 0 allow everything.
func TestRateLimiter(t *testing.T) {
	if NewRateLimiter(0, 10) != nil {
		t.Fatal("rate 0 made a limiter")
	}
	var off *RateLimiter
	if err := off.Allow("p", 1000); err != nil {
		t.Fatalf("nil limiter: %v", err)
	}
	l := NewRateLimiter(10, 20)
	at := time.Unix(1000, 0)
	l.buckets.Now = func() time.Time { return at }
	if err := l.Allow("a", 20); err != nil {
		t.Fatalf("the burst: %v", err)
	}
	err := l.Allow("a", 1)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 100*time.Millisecond || rl.RetryAfterSeconds() != 1 {
		t.Fatalf("over the burst: %#v, want a RateLimitError retrying after 100ms", err)
	}
	if !contains(err.Error(), "CARRIER_PUBLISH_RATE") {
		t.Errorf("error %q does not name the setting", err)
	}
	if err := l.Allow("b", 5); err != nil {
		t.Errorf("another project pays for the first: %v", err)
	}
	at = at.Add(500 * time.Millisecond) // 5 more
	if err := l.Allow("a", 6); err == nil {
		t.Error("6 allowed with 5 in the bucket")
	}
	if err := l.Allow("a", 5); err != nil {
		t.Errorf("5 refused with 5 in the bucket (a refusal must take nothing): %v", err)
	}
	at = at.Add(time.Hour)
	if err := l.Allow("a", 21); !errors.As(err, &rl) || !contains(err.Error(), "CARRIER_PUBLISH_BURST") {
		t.Errorf("a batch over the burst: %v", err)
	}
	if err := l.Allow("a", 20); err != nil {
		t.Errorf("a full bucket refilled only to the burst: %v", err)
	}
	if d := NewRateLimiter(10, 0); d.burst != 20 {
		t.Errorf("default burst %d, want twice the rate", d.burst)
	}
}
