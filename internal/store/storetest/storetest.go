// Package storetest is the storage conformance suite: every store.Store engine
// must pass it, through RunWith and a Factory per engine (Run does so for
// SQLite and PostgreSQL). Other packages' tests may use Engines and
// Engine.Open to get fresh, isolated stores on every available engine.
//
// SQLite is always tested. PostgreSQL is tested when CARRIER_TEST_DATABASE_URL
// names a database; each test then gets its own schema, dropped when it ends.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"carrier/internal/store"
	"carrier/internal/store/postgres"
	"carrier/internal/store/sqlite"
	"carrier/internal/store/sqlstore"
)

// EnvDatabaseURL is the environment variable naming the PostgreSQL database to
// test against. Tests only create and drop their own schemas in it.
const EnvDatabaseURL = "CARRIER_TEST_DATABASE_URL"

// Engine names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Engine is one storage engine to run tests against, with fresh isolated storage.
type Engine struct {
	Name        string // "sqlite" or "postgres"
	DataDir     string // sqlite: a fresh temp dir (t.TempDir())
	DatabaseURL string // postgres: a URL whose search_path is a fresh schema
}

// Engines returns sqlite always, and postgres when CARRIER_TEST_DATABASE_URL is
// set, each with fresh storage that is removed when t ends. For postgres it
// creates a schema carrier_test_<random hex> and returns a URL with that schema
// as search_path; the schema is dropped (CASCADE) on cleanup. Without the
// variable, a test gets a skipped subtest "postgres" in place of the engine.
func Engines(t testing.TB) []Engine {
	t.Helper()
	names := engineNames(t)
	out := make([]Engine, 0, len(names))
	for _, name := range names {
		out = append(out, newEngine(t, name))
	}
	return out
}

// SkipReason is why the PostgreSQL half of a test is skipped.
const SkipReason = "postgres: skipped, " + EnvDatabaseURL + " is not set (set it to a postgres:// URL to test PostgreSQL too)"

// engineNames lists the engines available to this run. Without a database,
// the PostgreSQL half is still a subtest, skipped with the reason: a log line
// would let it vanish from `go test -v` and from every skip count.
func engineNames(t testing.TB) []string {
	t.Helper()
	if os.Getenv(EnvDatabaseURL) == "" {
		switch tt := t.(type) {
		case *testing.T:
			tt.Run(Postgres, func(t *testing.T) { t.Skip(SkipReason) })
		default:
			// A benchmark that calls Run is not measured itself: log instead.
			t.Log(SkipReason)
		}
		return []string{SQLite}
	}
	return []string{SQLite, Postgres}
}

// newEngine returns the named engine with fresh storage owned by t.
func newEngine(t testing.TB, name string) Engine {
	t.Helper()
	switch name {
	case SQLite:
		return Engine{Name: SQLite, DataDir: t.TempDir()}
	case Postgres:
		base := os.Getenv(EnvDatabaseURL)
		if base == "" {
			t.Fatalf("postgres: %s is not set", EnvDatabaseURL)
		}
		return Engine{Name: Postgres, DatabaseURL: newSchema(t, base)}
	}
	t.Fatalf("unknown engine %q", name)
	return Engine{}
}

// newSchema creates a fresh schema on the database at base, registers its
// removal, and returns base with the schema as search_path.
func newSchema(t testing.TB, base string) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("postgres: random schema name: %v", err)
	}
	schema := "carrier_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("postgres: connect to %s: %v", EnvDatabaseURL, err)
	}
	_, err = conn.Exec(ctx, `CREATE SCHEMA `+schema)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("postgres: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("postgres: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("postgres: drop schema %s: %v", schema, err)
		}
	})
	u, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	return u
}

// withSearchPath returns the connection string base with search_path set to
// schema. It accepts postgres:// URLs (query parameter, replacing any existing
// search_path) and keyword/value strings.
func withSearchPath(base, schema string) (string, error) {
	if !strings.Contains(base, "://") {
		return strings.TrimSpace(base) + " search_path=" + schema, nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if _, ok := q["search_path"]; ok {
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	param := "search_path=" + url.QueryEscape(schema)
	if u.RawQuery == "" {
		u.RawQuery = param
	} else {
		u.RawQuery += "&" + param
	}
	return u.String(), nil
}

// Open opens the engine's store (sqlite.Open(DataDir) or
// postgres.Open(DatabaseURL)), runs Migrate, registers Close on cleanup, and
// fails the test on error.
func (e Engine) Open(t testing.TB) store.Store {
	t.Helper()
	s := e.openRaw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("%s: migrate: %v", e.Name, err)
	}
	return s
}

// openRaw opens the engine's store without migrating it and registers Close.
func (e Engine) openRaw(t testing.TB) store.Store {
	t.Helper()
	var s *sqlstore.Store
	var err error
	switch e.Name {
	case SQLite:
		s, err = sqlite.Open(e.DataDir)
	case Postgres:
		s, err = postgres.Open(e.DatabaseURL)
	default:
		t.Fatalf("unknown engine %q", e.Name)
	}
	if err != nil {
		t.Fatalf("%s: open: %v", e.Name, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: close: %v", e.Name, err)
		}
	})
	return s
}
