package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the seeding connection (the store's own driver)

	"carrier/internal/app"
	"carrier/internal/store"
	"carrier/internal/store/sqlite"
	"carrier/internal/store/sqlstore"
)

// ConsoleOptions configure the console benchmark.
type ConsoleOptions struct {
	Store       string
	DatabaseURL string
	// N deliveries (and as many events) are seeded; default 1,000,000.
	N int
	// Runs page loads per filter; default 100.
	Runs int
	Log  io.Writer
}

// ConsoleFilter is one filter's measurements.
type ConsoleFilter struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Server is the log query's time as the page reports it (Server-Timing).
	Server Percentiles `json:"server"`
	// Page is the whole page as the client saw it on loopback.
	Page Percentiles `json:"page"`
	Rows int         `json:"rows_on_first_page"`
}

// ConsoleReport is what the console benchmark measured.
type ConsoleReport struct {
	Machine   Machine         `json:"machine"`
	Store     string          `json:"store"`
	N         int             `json:"deliveries"`
	SeedSecs  float64         `json:"seed_seconds"`
	Filters   []ConsoleFilter `json:"filters"`
	Plans     []string        `json:"plans"`
	PlanNames []string        `json:"plan_names"`
}

const seedProject = "default"

// RunConsole seeds N deliveries into a fresh store and measures the
// console's delivery log page for its main filters.
func RunConsole(ctx context.Context, o ConsoleOptions) (*ConsoleReport, error) {
	if o.N <= 0 {
		o.N = 1000000
	}
	if o.Runs <= 0 {
		o.Runs = 100
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	cfg, cleanup, err := benchConfig(ctx, AlertOptions{Store: o.Store, DatabaseURL: o.DatabaseURL})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cfg.APIKey = "ck_bench_" + randomHex(16)
	cfg.AlertDefaults = false
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st.Close()

	db, err := seedDB(cfg.DataDir, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer db.close()
	base := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
	spacing := int64(30*24*time.Hour/time.Millisecond) / int64(o.N)
	start := time.Now()
	fmt.Fprintf(o.Log, "seeding %d events and deliveries (%s)...\n", o.N, o.Store)
	if err := db.seed(ctx, o.N, base, spacing); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep := &ConsoleReport{Machine: machine(), Store: o.Store, N: o.N, SeedSecs: time.Since(start).Seconds()}
	fmt.Fprintf(o.Log, "seeded in %.0f s\n", rep.SeedSecs)

	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		return nil, err
	}
	if err := a.Listen(); err != nil {
		return nil, err
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { stop(); <-done }()
	baseURL := "http://" + a.Addr() + cfg.ConsolePath

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.PostForm(baseURL+"/login", url.Values{"api_key": {cfg.APIKey}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()

	day := time.UnixMilli(base + int64(o.N/2)*spacing).UTC()
	filters := []ConsoleFilter{
		{Name: "newest first, no filter", Query: ""},
		{Name: "failed", Query: "state=failed"},
		{Name: "failed and retrying", Query: "state=failed&state=retrying"},
		{Name: "one subscription", Query: "subscription=sub-6"},
		{Name: "one subscription, failed", Query: "subscription=sub-6&state=failed"},
		{Name: "a subscription with none failed", Query: "subscription=sub-7&state=failed"},
		{Name: "one day", Query: "from=" + day.Format("2006-01-02T15:04") + "&to=" + day.Add(24*time.Hour).Format("2006-01-02T15:04")},
		{Name: "one day, failed and pending", Query: "state=failed&state=pending&from=" + day.Format("2006-01-02T15:04") + "&to=" + day.Add(24*time.Hour).Format("2006-01-02T15:04")},
		{Name: "event type", Query: "type=task.failed"},
		{Name: "answer 5xx", Query: "status=5xx"},
		{Name: "subject search", Query: "q=task-{rand}"},
		{Name: "delivery id search", Query: "q=d-{rand}"},
		{Name: "a random deep page", Query: "after={cursor}"},
		{Name: "oldest first", Query: "order=oldest"},
	}
	timing := regexp.MustCompile(`log;dur=([0-9.]+)`)
	rows := regexp.MustCompile(`<tr class="(pending|retrying|delivered|failed)">`)
	for i := range filters {
		f := &filters[i]
		var server, page []int64
		for r := range o.Runs + 3 {
			n := rand.IntN(o.N)
			q := strings.ReplaceAll(f.Query, "{rand}", strconv.Itoa(n))
			q = strings.ReplaceAll(q, "{cursor}", url.QueryEscape(fmt.Sprintf("%d.d-%d", base+int64(n)*spacing, n)))
			t0 := time.Now()
			resp, err := client.Get(baseURL + "/deliveries?" + q)
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(t0)
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("%s: %d %s", f.Name, resp.StatusCode, body)
			}
			m := timing.FindStringSubmatch(resp.Header.Get("Server-Timing"))
			if m == nil {
				return nil, fmt.Errorf("%s: no Server-Timing", f.Name)
			}
			if r < 3 { // warm-up
				continue
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			server = append(server, int64(v*float64(time.Millisecond)))
			page = append(page, int64(took))
			if r == 3 {
				f.Rows = len(rows.FindAll(body, -1))
			}
		}
		f.Server, f.Page = percentiles(server), percentiles(page)
		fmt.Fprintf(o.Log, "%-30s server p50 %6.2f ms  p95 %6.2f ms   page p95 %6.2f ms  (%d rows)\n", f.Name, f.Server.P50, f.Server.P95, f.Page.P95, f.Rows)
	}
	rep.Filters = filters

	// The plans the log relies on, for the README.
	dayFrom, dayTo := day, day.Add(24*time.Hour)
	for _, p := range []struct {
		name string
		q    store.DeliveryQuery
	}{
		{"newest first", store.DeliveryQuery{ProjectID: seedProject}},
		{"failed and retrying", store.DeliveryQuery{ProjectID: seedProject, States: []string{store.StateFailed, store.StateRetrying}}},
		{"one subscription, failed", store.DeliveryQuery{ProjectID: seedProject, SubscriptionID: "sub-6", States: []string{store.StateFailed}}},
		{"answer 5xx", store.DeliveryQuery{ProjectID: seedProject, StatusClass: 5}},
		{"one day", store.DeliveryQuery{ProjectID: seedProject, From: &dayFrom, To: &dayTo}},
		{"subject search", store.DeliveryQuery{ProjectID: seedProject, Search: "task-123"}},
	} {
		plan, err := db.explain(ctx, p.q)
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", p.name, err)
		}
		rep.PlanNames = append(rep.PlanNames, p.name)
		rep.Plans = append(rep.Plans, plan)
	}
	return rep, nil
}

// WriteText prints the report.
func (r *ConsoleReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Console delivery log (%s), %d deliveries seeded in %.0f s; 50 rows a page\n", r.Store, r.N, r.SeedSecs)
	fmt.Fprintf(w, "| filter | server p50 | server p95 | page p95 | rows |\n|---|---|---|---|---|\n")
	for _, f := range r.Filters {
		fmt.Fprintf(w, "| %s | %.2f ms | %.2f ms | %.2f ms | %d |\n", f.Name, f.Server.P50, f.Server.P95, f.Page.P95, f.Rows)
	}
	for i, p := range r.Plans {
		fmt.Fprintf(w, "\nplan, %s:\n%s\n", r.PlanNames[i], p)
	}
	return nil
}

// seeder writes rows straight into the store's tables, much faster than the
// publish path: the benchmark measures reading, not writing.
type seeder struct {
	sqlite *sql.DB
	pg     *pgx.Conn
}

func seedDB(dataDir, databaseURL string) (*seeder, error) {
	if databaseURL != "" {
		conn, err := pgx.Connect(context.Background(), databaseURL)
		if err != nil {
			return nil, err
		}
		return &seeder{pg: conn}, nil
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	return &seeder{sqlite: db}, nil
}

func (s *seeder) close() {
	if s.pg != nil {
		s.pg.Close(context.Background())
	}
	if s.sqlite != nil {
		s.sqlite.Close()
	}
}

func (s *seeder) exec(ctx context.Context, q string, args ...any) error {
	if s.pg != nil {
		_, err := s.pg.Exec(ctx, q, args...)
		return err
	}
	_, err := s.sqlite.ExecContext(ctx, q, args...)
	return err
}

// seed inserts n events and one delivery each, in chunks: 20 subscriptions
// (each with deliveries of every state),
// two event types, 85% delivered, 5% each failed, retrying and pending,
// spread evenly over the last 30 days. Deliveries still due are due in a
// century, so the engine leaves them alone.
func (s *seeder) seed(ctx context.Context, n int, base, spacing int64) error {
	return s.seedRows(ctx, n, base, spacing, false)
}

// seedRows is seed; with history, every delivery is finished (95% delivered,
// 5% failed) and has one attempt, as retention keeps them: stored rows that
// the engine never claims again.
func (s *seeder) seedRows(ctx context.Context, n int, base, spacing int64, history bool) error {
	const chunk = 100000
	far := time.Now().AddDate(100, 0, 0).UnixMilli()
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk) - 1
		series := fmt.Sprintf("WITH RECURSIVE s(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM s WHERE i < %d) ", lo, hi)
		typ := "CASE WHEN i % 4 = 0 THEN 'task.failed' ELSE 'task.solved' END"
		created := fmt.Sprintf("(%d + CAST(i AS BIGINT) * %d)", base, spacing)
		eid, did, aid := "'e-' || i", "'d-' || i", "'a-' || i"
		if history {
			eid, did, aid = s.uuidv7(created, 1), s.uuidv7(created, 2), s.uuidv7(created, 3)
		}
		if err := s.exec(ctx, series+`INSERT INTO events (id, project_id, type, subject, data, attributes, idempotency_key, created_at)
			SELECT `+eid+`, '`+seedProject+`', `+typ+`, 'task-' || i, '{"n": 1}', '{}', '', `+created+` FROM s`); err != nil {
			return err
		}
		state := "CASE i % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'retrying' WHEN 2 THEN 'pending' ELSE 'delivered' END"
		status := "CASE i % 20 WHEN 0 THEN 500 WHEN 1 THEN 503 WHEN 2 THEN 0 ELSE 200 END"
		next := fmt.Sprintf("CASE WHEN i %% 20 IN (1, 2) THEN %d ELSE 0 END", far)
		if history {
			state = "CASE i % 20 WHEN 0 THEN 'failed' ELSE 'delivered' END"
			status = "CASE i % 20 WHEN 0 THEN 500 ELSE 200 END"
			next = "0"
		}
		if err := s.exec(ctx, series+`INSERT INTO deliveries (id, project_id, subscription_id, event_id, event_type, state, attempts, budget_start,
			next_attempt_at, lease_owner, lease_until, last_status, last_error, last_error_code, last_duration_ms, url, created_at, updated_at, delivered_at)
			SELECT `+did+`, '`+seedProject+`', 'sub-' || ((i / 3) % 20), `+eid+`, `+typ+`, `+state+`, 1, 0, `+next+`, '', 0, `+status+`,
			CASE WHEN i % 20 IN (0, 1) THEN 'endpoint answered 500' ELSE '' END, '', 20 + i % 80, 'https://example.com/hook', `+created+`, `+created+`,
			CASE WHEN i % 20 > 2 THEN `+created+` ELSE 0 END FROM s`); err != nil {
			return err
		}
		if !history {
			continue
		}
		if err := s.exec(ctx, series+`INSERT INTO attempts (id, delivery_id, project_id, number, url, status_code, duration_ms, error_code,
			error_message, response_body, response_headers, created_at)
			SELECT `+aid+`, `+did+`, '`+seedProject+`', 1, 'https://example.com/hook', `+status+`, 20 + i % 80,
			CASE WHEN i % 20 = 0 THEN 'http_status' ELSE '' END, '', 'ok', '', `+created+` FROM s`); err != nil {
			return err
		}
	}
	if history {
		return s.settle(ctx)
	}
	// Statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) keeps them.
	if s.pg != nil {
		return s.exec(ctx, "ANALYZE deliveries; ANALYZE events; ANALYZE attempts")
	}
	return s.exec(ctx, "ANALYZE")
}

// settle leaves preloaded history as a store that grew to it over days would
// be: vacuumed and analysed (PostgreSQL's autovacuum would otherwise vacuum
// all of it during the measurement), or analysed with its WAL checkpointed
// (SQLite).
func (s *seeder) settle(ctx context.Context) error {
	stmts := []string{"ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"}
	if s.pg != nil {
		stmts = []string{"VACUUM (ANALYZE) events", "VACUUM (ANALYZE) deliveries", "VACUUM (ANALYZE) attempts", "CHECKPOINT"}
	}
	for _, q := range stmts {
		if err := s.exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// uuidv7 is an SQL expression of a UUIDv7 text made at created (ms) for row
// i, kind telling events, deliveries and attempts apart: ids as Carrier makes
// them, so PostgreSQL files the preloaded attempts in the partitions of their
// days as it would real ones.
func (s *seeder) uuidv7(created string, kind int) string {
	if s.pg != nil {
		h := "lpad(to_hex(" + created + "), 12, '0')"
		return fmt.Sprintf("substr(%s, 1, 8) || '-' || substr(%s, 9, 4) || '-700%d-8000-' || lpad(to_hex(i), 12, '0')", h, h, kind)
	}
	return fmt.Sprintf("printf('%%08x-%%04x-700%d-8000-%%012x', %s >> 16, %s & 65535, i)", kind, created, created)
}

// explain returns the plan of the log's statement for q.
func (s *seeder) explain(ctx context.Context, q store.DeliveryQuery) (string, error) {
	query, args := sqlstore.DeliveryLogSQL(q)
	var lines []string
	if s.pg != nil {
		rows, err := s.pg.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) "+query, args...)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				return "", err
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n"), rows.Err()
	}
	rows, err := s.sqlite.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n"), rows.Err()
}
