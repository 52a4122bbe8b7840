package storetest

import (
	"context"
	"os"
	"testing"
	"time"

	"carrier/internal/store"
)

// Factory is one engine under test: RunWith runs every conformance case
// against it, each case on fresh storage of its own, as a subtest named Name.
// It is the suite's only entry point, so an engine (or a store wrapped in
// something, or one opened with other settings) passes the same cases as
// SQLite and PostgreSQL by handing RunWith a Factory.
type Factory struct {
	// Name names the engine's subtest; the stores the factory opens must
	// report it as their Engine().
	Name string
	// Skip, when not empty, makes the engine's subtest a skip with this
	// reason: an engine this run cannot reach still shows in the results.
	Skip string
	// Shared tells whether several stores may be open over one storage at
	// once, as several processes share one PostgreSQL database. A SQLite data
	// directory has a single owner, so the cases that race processes give
	// every worker the one store there, and cases that need several skip.
	Shared bool
	// Parallel caps how many cases run at once against the engine (0: only
	// go test -parallel does), so that a database server's connection limit
	// holds however many cases are ready to run.
	Parallel int
	// New returns fresh, empty storage that is removed when t ends.
	New func(t testing.TB) Storage
}

// Open opens a migrated store over fresh storage of its own, closed when t ends.
func (f Factory) Open(t testing.TB) store.Store {
	t.Helper()
	return f.storage(t).Open(t)
}

// storage is New with the fields the suite fills in.
func (f Factory) storage(t testing.TB) Storage {
	t.Helper()
	s := f.New(t)
	s.Name, s.Shared = f.Name, f.Shared
	s.fresh = f.storage
	return s
}

// Storage is one isolated database of a factory's engine: every store opened
// over it sees the same data.
type Storage struct {
	// Name and Shared are the factory's (filled in by the suite).
	Name   string
	Shared bool
	// OpenRaw opens a store over the storage without migrating it, and
	// closes it when t ends.
	OpenRaw func(t testing.TB) store.Store
	// DatabaseURL is a PostgreSQL storage's connection string (empty for
	// others): a case checks what a server that refuses connections gives.
	DatabaseURL string

	fresh func(t testing.TB) Storage
}

// Open opens a store over the storage, migrates it, and closes it when t ends.
func (s Storage) Open(t testing.TB) store.Store {
	t.Helper()
	st := s.OpenRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("%s: migrate: %v", s.Name, err)
	}
	return st
}

// Fresh returns new, empty storage of the same engine, for a case that needs
// a second database (one no other case's rows can reach).
func (s Storage) Fresh(t testing.TB) Storage {
	t.Helper()
	return s.fresh(t)
}

// postgresParallel is how many conformance cases run at once on PostgreSQL.
// A case holds a few connections (more in the cases that race several
// stores, up to about ten), the server allows 100, and other test binaries
// share it.
const postgresParallel = 4

// SQLiteFactory returns the factory of the embedded engine: a SQLite database
// in a fresh temporary directory per case.
func SQLiteFactory() Factory {
	return Factory{Name: SQLite, New: func(t testing.TB) Storage { return newEngine(t, SQLite).storage() }}
}

// PostgresFactory returns the factory of PostgreSQL: a fresh schema per case
// in the database CARRIER_TEST_DATABASE_URL names, dropped when the case
// ends. Without the variable the factory is a skip that names it.
func PostgresFactory() Factory {
	if os.Getenv(EnvDatabaseURL) == "" {
		return Factory{Name: Postgres, Skip: SkipReason}
	}
	return Factory{Name: Postgres, Shared: true, Parallel: postgresParallel, New: func(t testing.TB) Storage { return newEngine(t, Postgres).storage() }}
}

// storage is the engine's storage for the suite.
func (e Engine) storage() Storage {
	return Storage{OpenRaw: e.openRaw, DatabaseURL: e.DatabaseURL}
}

// testCase is one conformance case. A shared case needs storage that several
// stores can have open at once (Factory.Shared) and is a skip elsewhere.
type testCase struct {
	name   string
	shared bool
	run    func(t *testing.T, e Storage)
}

// Run runs the conformance suite on SQLite and, when CARRIER_TEST_DATABASE_URL
// is set, on PostgreSQL (otherwise its subtest is a skip naming the variable).
func Run(t *testing.T) {
	RunWith(t, SQLiteFactory(), PostgresFactory())
}

// RunWith runs the whole conformance suite once per factory, as the subtest
// t.Run(factory.Name, ...), every case its own parallel subtest on fresh
// storage. Engines run side by side too; each factory's Parallel caps its own
// cases. A case must not depend on anything outside its storage and its t.
func RunWith(t *testing.T, factories ...Factory) {
	for _, f := range factories {
		if f.Skip != "" {
			t.Run(f.Name, func(t *testing.T) { t.Skip(f.Skip) })
			continue
		}
		var slots chan struct{}
		if f.Parallel > 0 {
			slots = make(chan struct{}, f.Parallel)
		}
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if c.shared && !f.Shared {
						t.Skipf("%s: one store at a time owns its storage; the case needs several at once", f.Name)
					}
					if slots != nil {
						slots <- struct{}{}
						// Registered first, so it runs last: after the case's
						// stores are closed and its storage removed.
						t.Cleanup(func() { <-slots })
					}
					c.run(t, f.storage(t))
				})
			}
		})
	}
}
