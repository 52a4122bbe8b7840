package storetest

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"carrier/internal/store"
	"carrier/internal/store/postgres"
)

// testErrorClasses checks store.IsUnavailable and store.IsRejected against
// the errors each engine really gives: a write the database refuses (a
// duplicate key; on PostgreSQL also a NUL in a text column) is rejected, and
// a store that cannot be reached is unavailable, so callers spool only what
// a later replay can store.
func testErrorClasses(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	err := f.s.CreateProject(f.ctx, p)
	if err == nil || !store.IsRejected(err) || store.IsUnavailable(err) {
		t.Errorf("duplicate project id: %v: rejected %v, unavailable %v; want rejected", err, store.IsRejected(err), store.IsUnavailable(err))
	}
	if e.DatabaseURL != "" { // PostgreSQL
		err := f.s.CreateProject(f.ctx, store.Project{ID: newID(), Name: "a\x00b", CreatedAt: f.base})
		if err == nil || !store.IsRejected(err) || store.IsUnavailable(err) {
			t.Errorf("NUL in a text column: %v: rejected %v, unavailable %v; want rejected", err, store.IsRejected(err), store.IsUnavailable(err))
		}
		// A server that refuses connections: a port nobody listens on.
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		addr := ln.Addr().String()
		ln.Close()
		u, _ := url.Parse(e.DatabaseURL)
		u.Host = addr
		_, err = postgres.Open(u.String())
		if err == nil || !store.IsUnavailable(err) || store.IsRejected(err) {
			t.Errorf("connection refused: %v: unavailable %v; want unavailable", err, store.IsUnavailable(err))
		}
	}
	// A store that is closed (as on shutdown) is unavailable, as is one that
	// does not answer in time.
	closed := e.Fresh(t).OpenRaw(t)
	closed.Close()
	err = closed.CreateProject(f.ctx, store.Project{ID: newID(), Name: "late", CreatedAt: f.base})
	if err == nil || !store.IsUnavailable(err) || store.IsRejected(err) {
		t.Errorf("closed store: %v: unavailable %v; want unavailable", err, store.IsUnavailable(err))
	}
	ctx, cancel := context.WithTimeout(f.ctx, time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	err = f.s.CreateProject(ctx, store.Project{ID: newID(), Name: "slow", CreatedAt: f.base})
	if err == nil || !store.IsUnavailable(err) {
		t.Errorf("deadline exceeded: %v: unavailable %v; want unavailable", err, store.IsUnavailable(err))
	}
}
