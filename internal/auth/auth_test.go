package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/store"
	"carrier/internal/store/sqlite"
	"carrier/internal/store/sqlstore"
)

// newStore opens a migrated SQLite store with projects p1 and p2.
func newStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p1", "p2"} {
		if err := st.CreateProject(ctx, store.Project{ID: id, Name: id, CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestHashKey(t *testing.T) {
	// The stored form is the hex SHA-256 of the key: keys already stored
	// must keep matching.
	if got, want := HashKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashKey(abc) = %s, want %s", got, want)
	}
	a, b := NewKey(), NewKey()
	if a == b || !strings.HasPrefix(a, "ck_") || len(a) != 3+48 {
		t.Errorf("NewKey gave %q and %q: want two different ck_ keys of 48 hex digits", a, b)
	}
}

func TestIssueAuthenticateRevoke(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	s := New(st)
	k, secret, err := Issue(ctx, st, "p1", "ci", false)
	if err != nil {
		t.Fatal(err)
	}
	if k.Hash != HashKey(secret) || k.Prefix != secret[:10] || strings.Contains(k.Hash, secret) {
		t.Fatalf("issued key %+v does not store the hash of its plaintext", k)
	}
	got, err := s.Authenticate(ctx, " "+secret+" ")
	if err != nil || got.ID != k.ID || got.ProjectID != "p1" {
		t.Fatalf("Authenticate = %+v, %v; want key %s of p1", got, err, k.ID)
	}
	for _, bad := range []string{"", "   ", secret + "x", NewKey()} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Authenticate(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}

	// A key of another project neither sees nor revokes p1's keys.
	other, _, err := Issue(ctx, st, "p2", "other", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, other, "p1", k.ID); !errors.Is(err, ErrProjectNotFound) {
		t.Errorf("revoke from another project: %v, want ErrProjectNotFound", err)
	}
	if err := s.Revoke(ctx, k, "p1", "no-such-key"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("revoke an unknown key: %v, want ErrKeyNotFound", err)
	}
	// A project key cannot revoke an admin key of its project.
	admin, _, err := Issue(ctx, st, "p1", "admin", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, k, "p1", admin.ID); !errors.Is(err, ErrAdminKey) {
		t.Errorf("project key revoking an admin key: %v, want ErrAdminKey", err)
	}
	// Revoked, the key stops working at once, though it was cached.
	if err := s.Revoke(ctx, admin, "p1", k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("revoked key: %v, want ErrInvalidKey", err)
	}
}

func TestCreateProjectAndKey(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	s := New(st)
	var ferr *dest.FieldError
	if _, _, _, err := s.CreateProject(ctx, ""); !errors.As(err, &ferr) || ferr.Field != "name" {
		t.Errorf("project without a name: %v, want a field error on name", err)
	}
	p, k, secret, err := s.CreateProject(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if k.ProjectID != p.ID || k.Name != "default" || k.Admin {
		t.Errorf("first key %+v, want the non-admin default key of %s", k, p.ID)
	}
	if got, err := s.Authenticate(ctx, secret); err != nil || got.ID != k.ID {
		t.Errorf("the project's first key does not authenticate: %v", err)
	}
	k2, _, err := s.CreateKey(ctx, k, p.ID, "")
	if err != nil || k2.Name != "key" || k2.ProjectID != p.ID {
		t.Errorf("CreateKey = %+v, %v; want a key named key of %s", k2, err, p.ID)
	}
	if _, _, err := s.CreateKey(ctx, k, "p1", "x"); !errors.Is(err, ErrProjectNotFound) {
		t.Errorf("key for another project: %v, want ErrProjectNotFound", err)
	}
	admin := store.APIKey{Admin: true, ProjectID: "default"}
	if _, _, err := s.CreateKey(ctx, admin, "nope", "x"); !errors.Is(err, ErrProjectNotFound) {
		t.Errorf("key for a missing project: %v, want ErrProjectNotFound", err)
	}
	if _, _, err := s.CreateKey(ctx, admin, "p1", strings.Repeat("n", 256)); !errors.As(err, &ferr) || ferr.Field != "name" {
		t.Errorf("key name of 256 characters: %v, want a field error on name", err)
	}
}

// TestOutageIsBounded: while the store cannot be reached, a key it
// confirmed keeps working for KeyOutageGrace from that confirmation, and no
// longer; a key it never confirmed does not work at all.
func TestOutageIsBounded(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	_, key, err := Issue(ctx, st, "p1", "k", false)
	if err != nil {
		t.Fatal(err)
	}
	_, unseen, err := Issue(ctx, st, "p1", "unseen", false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	at := time.Now()
	s.SetClock(func() time.Time { return at })
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	st.Close()
	start := at
	for _, c := range []struct {
		after time.Duration
		works bool
	}{{time.Second, true}, {KeyTTL + time.Second, true}, {KeyOutageGrace, true}, {KeyOutageGrace + time.Second, false}} {
		at = start.Add(c.after)
		_, err := s.Authenticate(ctx, key)
		if (err == nil) != c.works {
			t.Errorf("%v into the outage: %v, want working %v", c.after, err, c.works)
		}
		if err != nil && errors.Is(err, ErrInvalidKey) {
			t.Errorf("%v into the outage: %v; an unreachable store is not an invalid key", c.after, err)
		}
	}
	if _, err := s.Authenticate(ctx, unseen); err == nil || errors.Is(err, ErrInvalidKey) {
		t.Errorf("a key never confirmed, during the outage: %v; want the store's error", err)
	}
}

// TestCacheIsBounded: the cache holds at most its bound; a new key pushes
// out the one confirmed longest ago, and the others keep their outage grace.
func TestCacheIsBounded(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	const bound = 3
	s := New(st)
	at := time.Now()
	s.keys = newCache(KeyTTL, KeyOutageGrace, bound, func() time.Time { return at })
	var keys []string
	for i := range bound + 2 {
		_, key, err := Issue(ctx, st, "p1", fmt.Sprint("k", i), false)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		at = at.Add(time.Second)
		if _, err := s.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
		if n := cacheLen(s.keys); n > bound {
			t.Fatalf("after %d keys the cache holds %d, more than its bound %d", i+1, n, bound)
		}
	}
	st.Close()
	// The last three confirmed are cached and work through the outage; the
	// first two were pushed out.
	for i, key := range keys {
		_, err := s.Authenticate(ctx, key)
		if works := i >= len(keys)-bound; (err == nil) != works {
			t.Errorf("key %d during the outage: %v, want working %v", i, err, works)
		}
	}
}

// TestCacheDropsStaleFirst: a full cache makes room by dropping keys too old
// to help through an outage before a recently confirmed one.
func TestCacheDropsStaleFirst(t *testing.T) {
	at := time.Now()
	c := newCache(KeyTTL, time.Minute, 2, func() time.Time { return at })
	c.put("stale", store.APIKey{ID: "stale"}, at, c.generation())
	c.put("recent", store.APIKey{ID: "recent"}, at.Add(2*time.Minute-time.Second), c.generation())
	c.put("new", store.APIKey{ID: "new"}, at.Add(2*time.Minute), c.generation())
	_, stale := c.get("stale")
	_, recent := c.get("recent")
	_, fresh := c.get("new")
	if stale || !recent || !fresh {
		t.Errorf("cached after a third key: stale %v, recent %v, new %v; want only the stale one dropped", stale, recent, fresh)
	}
	// A lookup that raced with a revocation does not cache what it found.
	gen := c.generation()
	c.forget()
	c.put("raced", store.APIKey{ID: "raced"}, at, gen)
	if _, ok := c.get("raced"); ok || cacheLen(c) != 0 {
		t.Errorf("a lookup from before a revocation was cached (cache holds %d)", cacheLen(c))
	}
}

func cacheLen(c *cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
