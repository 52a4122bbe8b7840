package api

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"carrier/internal/auth"
	"carrier/internal/store"
	"carrier/internal/store/sqlite"
)

// TestKeyCacheOutageIsBounded: while the store cannot be reached, a key it
// confirmed keeps working for auth.KeyOutageGrace from that confirmation, and no
// longer (a revoked key must not work for the whole of a long outage).
func TestKeyCacheOutageIsBounded(t *testing.T) {
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(ctx, store.Project{ID: "p1", Name: "p", CreatedAt: now()}); err != nil {
		t.Fatal(err)
	}
	_, key, err := auth.Issue(ctx, st, "p1", "k", false)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.New(st)
	s := New(Deps{Store: st, Log: slog.Default(), Keys: keys})
	at := time.Now()
	keys.SetClock(func() time.Time { return at })
	check := func() error {
		r := httptest.NewRequest("GET", "/v1/webhooks", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		_, err := s.authenticate(r)
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("key before the outage: %v", err)
	}
	st.Close() // the store is now unreachable
	start := at
	for _, c := range []struct {
		after time.Duration
		works bool
	}{{auth.KeyTTL + time.Second, true}, {auth.KeyOutageGrace - time.Second, true}, {auth.KeyOutageGrace + time.Second, false}, {time.Hour, false}} {
		at = start.Add(c.after)
		if err := check(); (err == nil) != c.works {
			t.Errorf("%v into the outage: err %v, want working %v", c.after, err, c.works)
		}
	}
}
