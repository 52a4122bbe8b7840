// Package sqlstore implements store.Store in plain SQL over database/sql. The
// SQLite and PostgreSQL engines share it and differ only in a few statements
// (claiming, JSON lists, locking) chosen by Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"carrier/internal/health"
	"carrier/internal/store"
)

// Dialect selects the engine-specific statements.
type Dialect int

// The supported dialects.
const (
	SQLite Dialect = iota
	Postgres
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on a database/sql handle. Writes go to writer (one
// connection on SQLite, so writes are serialised); reads go to reader.
type Store struct {
	writer  *sql.DB
	reader  *sql.DB
	dialect Dialect
	closers []io.Closer
	stmts   sync.Map // statement text -> *sql.Stmt prepared on writer (or, keyed "reader\x00"+text, on reader)
	wantMu  sync.Mutex
	wanted  []string // statement texts to prepare before the next transaction
	// policy decides, as attempts are recorded, when a subscription is
	// degraded, disabled or recovered.
	policy health.Policy
}

// AddCloser registers c to be closed after the database handles, by Close.
func (s *Store) AddCloser(c io.Closer) { s.closers = append(s.closers, c) }

// New returns a Store over the given handles. reader may equal writer.
func New(writer, reader *sql.DB, d Dialect) *Store {
	return &Store{writer: writer, reader: reader, dialect: d, policy: health.DefaultPolicy()}
}

// Engine names the engine.
func (s *Store) Engine() string {
	if s.dialect == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// Close closes both handles.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	err := s.writer.Close()
	if s.reader != s.writer {
		if rerr := s.reader.Close(); err == nil {
			err = rerr
		}
	}
	for _, c := range s.closers {
		c.Close()
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.writer.PingContext(ctx)
}

// Migrate applies every embedded migration not yet recorded, in order. On
// PostgreSQL an advisory lock keeps concurrent starts from racing.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727274001)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727274001)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		if !s.forThisEngine(base) {
			continue
		}
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migrate: bad migration name %q", base)
		}
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		for _, stmt := range splitStatements(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate %s: %w", base, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, ms(time.Now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
	}
	return nil
}

// forThisEngine tells whether migration file base applies here: NNN_x.sql to
// both engines, NNN_x.postgres.sql and NNN_x.sqlite.sql to one each (a
// version with engine-specific SQL has one file for each engine, so both
// record it).
func (s *Store) forThisEngine(base string) bool {
	for _, engine := range []string{"postgres", "sqlite"} {
		if strings.HasSuffix(base, "."+engine+".sql") {
			return engine == s.Engine()
		}
	}
	return true
}

// splitStatements splits a migration on semicolons at line ends, dropping comments.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// inList returns a SQL expression that yields the elements of a JSON array of
// strings bound at placeholder n, for use as `x IN (inList)`.
func (s *Store) inList(n int) string {
	if s.dialect == Postgres {
		return fmt.Sprintf("SELECT jsonb_array_elements_text($%d::jsonb)", n)
	}
	return fmt.Sprintf("SELECT value FROM json_each($%d)", n)
}

// idIn returns a condition that col is one of the JSON array of strings bound
// at placeholder n. On PostgreSQL the array form lets the planner look each id
// up in the primary key instead of hashing the whole table.
func (s *Store) idIn(col string, n int) string {
	if s.dialect == Postgres {
		return fmt.Sprintf("%s = ANY(ARRAY(SELECT jsonb_array_elements_text($%d::jsonb)))", col, n)
	}
	return fmt.Sprintf("%s IN (SELECT value FROM json_each($%d))", col, n)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func msPtr(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return ms(*t)
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func fromMSPtr(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

func jsonList(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	return jsonText(ids)
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// uniqueViolation tells whether err is a unique or primary key violation, on
// either engine, without importing their drivers: pgx errors carry a SQLSTATE
// (23505) and modernc.org/sqlite errors an extended result code
// (SQLITE_CONSTRAINT_PRIMARYKEY 1555, SQLITE_CONSTRAINT_UNIQUE 2067).
func uniqueViolation(err error) bool {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState() == "23505"
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		code := lite.Code()
		return code == 1555 || code == 2067
	}
	return false
}

// conflict turns a unique violation into store.ErrConflict (keeping the
// driver's message) and returns other errors unchanged.
func conflict(err error) error {
	if uniqueViolation(err) {
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	}
	return err
}

// --- projects and keys ---

// CreateProject inserts a project.
func (s *Store) CreateProject(ctx context.Context, p store.Project) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)`, p.ID, p.Name, ms(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert project: %w", err)
	}
	return nil
}

// GetProject reads a project.
func (s *Store) GetProject(ctx context.Context, id string) (store.Project, error) {
	var p store.Project
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT id, name, created_at FROM projects WHERE id = $1`, id).Scan(&p.ID, &p.Name, &created)
	if err != nil {
		return p, fmt.Errorf("get project: %w", notFound(err))
	}
	p.CreatedAt = fromMS(created)
	return p, nil
}

// CreateAPIKey inserts a key (its hash).
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO api_keys (id, project_id, name, prefix, hash, admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.ProjectID, k.Name, k.Prefix, k.Hash, k.Admin, ms(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

// APIKeyByHash finds an unrevoked key by its hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	var k store.APIKey
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT id, project_id, name, prefix, hash, admin, created_at FROM api_keys WHERE hash = $1 AND revoked_at = 0`, hash).
		Scan(&k.ID, &k.ProjectID, &k.Name, &k.Prefix, &k.Hash, &k.Admin, &created)
	if err != nil {
		return k, fmt.Errorf("get api key: %w", notFound(err))
	}
	k.CreatedAt = fromMS(created)
	return k, nil
}

// LookupAPIKey finds a key by its hash, revoked or not.
func (s *Store) LookupAPIKey(ctx context.Context, hash string) (store.APIKey, error) {
	return scanAPIKey(s.reader.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
}

// GetAPIKey reads a project's key by id, revoked or not.
func (s *Store) GetAPIKey(ctx context.Context, projectID, keyID string) (store.APIKey, error) {
	return scanAPIKey(s.reader.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1 AND project_id = $2`, keyID, projectID))
}

const apiKeyColumns = `id, project_id, name, prefix, hash, admin, created_at, revoked_at`

func scanAPIKey(row scanner) (store.APIKey, error) {
	var k store.APIKey
	var created, revoked int64
	if err := row.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Prefix, &k.Hash, &k.Admin, &created, &revoked); err != nil {
		return k, fmt.Errorf("get api key: %w", notFound(err))
	}
	k.CreatedAt, k.RevokedAt = fromMS(created), fromMSPtr(revoked)
	return k, nil
}

// RevokeAPIKey marks a project's key revoked.
func (s *Store) RevokeAPIKey(ctx context.Context, projectID, keyID string, at time.Time) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND project_id = $3 AND revoked_at = 0`, ms(at), keyID, projectID)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke api key: %w", store.ErrNotFound)
	}
	return nil
}

// CountAPIKeys counts every key.
func (s *Store) CountAPIKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count api keys: %w", err)
	}
	return n, nil
}
