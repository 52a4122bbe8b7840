// Package bench measures Carrier on the machine it runs on. It starts a real
// Carrier in-process (on a fresh SQLite directory or a fresh PostgreSQL
// schema) and a loopback webhook sink, then runs three phases through the real
// HTTP API:
//
//  1. ingest: N events published by concurrent keep-alive clients; every 202
//     means the event and its deliveries were committed durably;
//  2. delivery: the deliveries of phase 1 are released to the engine, and the
//     time until the sink has received all of them, and until the store records
//     all of them as delivered, is measured;
//  3. latency: events published at a fixed rate (open loop, measured from each
//     event's scheduled send time, so stalls are not hidden by coordinated
//     omission) with delivery running, and the publish-to-delivered latency
//     observed at the sink.
//
// Then three phases publish from a separate load-generator process (this
// binary again, `carrier bench --loadgen`), so publishing and delivery run at
// once as in production and the publishers' CPU is not counted as Carrier's:
// paced (100 events/s), combined (as fast as the clients go) and combined
// paced (2,000 events/s). Before Carrier starts, a plain net/http server and
// client measure the loopback ceiling, and every phase reports its CPU time
// per 1,000 events (this process, plus PostgreSQL's processes).
//
// All traffic stays on 127.0.0.1 (apart from the PostgreSQL URL given).
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"carrier/internal/app"
	"carrier/internal/config"
	"carrier/internal/dispatch"
)

// Phase names, as passed to Options.PhaseHook.
const (
	PhaseIngest   = "ingest"
	PhaseDelivery = "delivery"
	PhaseLatency  = "latency"
	PhaseCeiling  = "ceiling"
)

// Pause modes: how phase 1 keeps deliveries from competing with ingest.
const (
	// PauseInactive: the webhooks are deactivated during phase 1 and their
	// deliveries wait in the store until phase 2 activates them.
	PauseInactive = "inactive-webhooks"
	// PauseHeld: inactive webhooks get no deliveries at all (Carrier matches
	// events to active webhooks only), so the webhooks stay active and the sink
	// holds the engine's first requests until phase 2. The engine fills its
	// lanes (LaneConcurrency attempts per webhook) and claims nothing more.
	PauseHeld = "held-at-sink"
)

// Limits that keep the preallocated bookkeeping bounded.
const (
	maxSlots = 10_000_000 // deliveries tracked per phase
	// holdMax is the longest the sink holds a request in PauseHeld mode; it
	// stays below the webhooks' 60 s timeout so held attempts never fail.
	holdMax = 45 * time.Second
	// webhookTimeout is the webhooks' timeout_seconds (the API's maximum).
	webhookTimeout = 60
	eventType      = "bench.event"
)

// Options configure a benchmark run. Zero values take the defaults.
type Options struct {
	// Store is "sqlite" (default) or "postgres".
	Store string
	// DatabaseURL is the postgres:// URL of the database in which a fresh
	// schema carrier_bench_<random> is created and, at the end, dropped.
	DatabaseURL string
	// Preload is how many rows to store before Carrier starts, straight in
	// SQL (a third each events, finished deliveries and their attempts,
	// spread over the 29 days before yesterday, so inside the default
	// retention and never claimed): publish and delivery rates over a store
	// that already holds history, against the same run with none.
	Preload int
	// Events is how many events phase 1 publishes (default 20000).
	Events int
	// Concurrency is how many HTTP clients publish at once (default 64).
	Concurrency int
	// Webhooks is how many endpoints subscribe to the events (default 1).
	Webhooks int
	// Rate is the publish rate of phase 3, in events per second (default 1000).
	Rate int
	// Duration is how long phase 3 publishes (default 10s).
	Duration time.Duration
	// Timeout bounds each wait: publishing in phase 1, the drain of phase 2
	// and the drain of phase 3 (default 5m). A phase that runs out reports
	// what it saw.
	Timeout time.Duration
	// Log receives Carrier's log at level warn (default os.Stderr).
	Log io.Writer
	// PhaseHook, when set, is called as each measured phase begins and ends
	// (begin true, then false), for example to profile one phase.
	PhaseHook func(phase string, begin bool)

	// CeilingDuration is how long the loopback ceiling runs (default 3s).
	CeilingDuration time.Duration
	// PacedRate and PacedDuration are the paced phase's rate (default
	// 100/s) and length (default 10s).
	PacedRate     int
	PacedDuration time.Duration
	// CombinedDuration is the length of each combined phase (default 5s);
	// CombinedRate the rate of the combined paced phase (default 2000/s).
	CombinedDuration time.Duration
	CombinedRate     int
	// LoadGen is the command that runs the load generator (default this
	// executable with "bench --loadgen"); it gets LoadGenEnv=1.
	LoadGen []string
	// PrivatePostgres runs PostgreSQL benchmarks on an instance of their own
	// (initdb and pg_ctl as the postgres user, port 55433 or the next free
	// one, production settings), removed at the end; DatabaseURL is unused.
	PrivatePostgres bool

	// forceHeld uses PauseHeld even when inactive webhooks queue deliveries (tests).
	forceHeld bool
}

func (o *Options) defaults() error {
	if o.Store == "" {
		o.Store = "sqlite"
	}
	if o.Events == 0 {
		o.Events = 20000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	if o.Webhooks == 0 {
		o.Webhooks = 1
	}
	if o.Rate == 0 {
		o.Rate = 1000
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.CeilingDuration == 0 {
		o.CeilingDuration = 3 * time.Second
	}
	if o.PacedRate == 0 {
		o.PacedRate = 100
	}
	if o.PacedDuration == 0 {
		o.PacedDuration = 10 * time.Second
	}
	if o.CombinedDuration == 0 {
		o.CombinedDuration = 5 * time.Second
	}
	if o.CombinedRate == 0 {
		o.CombinedRate = 2000
	}
	if len(o.LoadGen) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("load generator: %w", err)
		}
		o.LoadGen = []string{exe, "bench", "--loadgen"}
	}
	if o.PrivatePostgres {
		o.Store, o.DatabaseURL = "postgres", "" // the instance's URL, once it runs
	}
	switch {
	case o.Store != "sqlite" && o.Store != "postgres":
		return fmt.Errorf("store must be sqlite or postgres, not %q", o.Store)
	case o.Store == "postgres" && o.DatabaseURL == "" && !o.PrivatePostgres:
		return errors.New("store postgres needs a database URL (--database-url or CARRIER_DATABASE_URL)")
	case o.Store == "postgres" && !o.PrivatePostgres &&
		!strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://"):
		return errors.New("database URL must be a postgres:// or postgresql:// URL")
	case o.Preload < 0:
		return errors.New("preload must not be negative")
	case o.Events < 1, o.Concurrency < 1, o.Webhooks < 1, o.Rate < 1, o.Duration <= 0, o.Timeout <= 0:
		return errors.New("events, concurrency, webhooks, rate, duration and timeout must be positive")
	case o.CeilingDuration < 0, o.PacedRate < 1, o.PacedDuration <= 0, o.CombinedDuration <= 0, o.CombinedRate < 1:
		return errors.New("ceiling duration, paced rate and duration, combined duration and rate must be positive")
	case o.CeilingDuration > 10*time.Minute, o.PacedDuration > time.Hour, o.CombinedDuration > time.Hour:
		return errors.New("ceiling, paced and combined durations are bounded (10 minutes, an hour)")
	case int64(latencyEvents(o.PacedRate, o.PacedDuration))*int64(o.Webhooks) > maxSlots,
		int64(latencyEvents(o.CombinedRate, o.CombinedDuration))*int64(o.Webhooks) > maxSlots:
		return fmt.Errorf("paced and combined rate x duration x webhooks must be at most %d", maxSlots)
	case o.Webhooks > 1000:
		return errors.New("webhooks must be at most 1000")
	case int64(o.Events)*int64(o.Webhooks) > maxSlots:
		return fmt.Errorf("events x webhooks must be at most %d", maxSlots)
	case int64(latencyEvents(o.Rate, o.Duration))*int64(o.Webhooks) > maxSlots:
		return fmt.Errorf("rate x duration x webhooks must be at most %d", maxSlots)
	}
	return nil
}

func latencyEvents(rate int, d time.Duration) int {
	return max(1, int(math.Round(float64(rate)*d.Seconds())))
}

// Run runs the benchmark and returns its report. Everything it creates (the
// Carrier, the sink, the SQLite directory or PostgreSQL schema) is gone when
// it returns.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &run{o: o, base: time.Now()}
	defer func() {
		if cerr := r.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: clean up: %w", cerr))
		}
	}()
	// The ceiling first, on an idle machine as far as this run goes.
	var ceiling *Ceiling
	if o.CeilingDuration > 0 {
		r.hook(PhaseCeiling, true)
		c, err := measureCeiling(ctx, o.Concurrency, o.CeilingDuration)
		r.hook(PhaseCeiling, false)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		ceiling = &c
	}
	if err := r.start(ctx); err != nil {
		return nil, fmt.Errorf("bench: start: %w", err)
	}
	rep = &Report{
		Machine: machine(), Store: r.app.Store.Engine(), Ceiling: ceiling, PostgresSettings: r.pgSettings,
		Params: Params{Preload: o.Preload, PreloadSecs: r.preloadSecs, Events: o.Events, Concurrency: o.Concurrency, Webhooks: o.Webhooks, Rate: o.Rate,
			DurationS: o.Duration.Seconds(), TimeoutS: o.Timeout.Seconds()},
		Carrier: Carrier{LaneConcurrency: r.dcfg.LaneConcurrency, MaxInFlight: r.dcfg.MaxInFlight, ClaimBatch: r.dcfg.ClaimBatch,
			PollIntervalMS: float64(r.dcfg.PollInterval) / 1e6},
	}
	probe, err := r.setupWebhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: set up webhooks: %w", err)
	}
	rep.Carrier.PauseMode = r.mode
	if r.db != nil {
		rep.DatabaseCPU = r.db.describe()
	}

	r.hook(PhaseIngest, true)
	mark := r.cpuMark(ctx)
	rep.Ingest = r.ingest(ctx)
	rep.Ingest.CPU = r.cpuSince(ctx, mark, rep.Ingest.Accepted)
	r.hook(PhaseIngest, false)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench: phase 1: %w", err)
	}

	r.hook(PhaseDelivery, true)
	mark = r.cpuMark(ctx)
	rep.Delivery, err = r.delivery(ctx, rep.Ingest.Deliveries, probe+rep.Ingest.Deliveries)
	rep.Delivery.CPU = r.cpuSince(ctx, mark, rep.Delivery.StoreDelivered)
	r.hook(PhaseDelivery, false)
	if err != nil {
		return rep, fmt.Errorf("bench: phase 2: %w", err)
	}

	r.hook(PhaseLatency, true)
	mark = r.cpuMark(ctx)
	rep.Latency = r.latency(ctx)
	// The sink may have answered before the engine recorded the outcomes:
	// wait (bounded) until the store shows every delivery before counting.
	r.storeWant = probe + rep.Ingest.Deliveries + rep.Latency.Expected
	werr := r.waitStore(ctx, r.storeWant)
	rep.Latency.CPU = r.cpuSince(ctx, mark, rep.Latency.Delivered)
	r.hook(PhaseLatency, false)
	if err := errors.Join(ctx.Err(), werr); err != nil {
		return rep, fmt.Errorf("bench: phase 3: %w", err)
	}

	for _, ph := range []struct {
		name      string
		sinkPhase int
		rate      int
		dur       time.Duration
		out       **External
	}{
		{PhasePaced, sinkPaced, o.PacedRate, o.PacedDuration, &rep.Paced},
		{PhaseCombined, sinkCombined, 0, o.CombinedDuration, &rep.Combined},
		{PhaseCombinedPaced, sinkCombinedPaced, o.CombinedRate, o.CombinedDuration, &rep.CombinedPaced},
	} {
		r.hook(ph.name, true)
		*ph.out, err = r.external(ctx, ph.sinkPhase, ph.rate, ph.dur)
		r.hook(ph.name, false)
		if err != nil {
			return rep, fmt.Errorf("bench: %s phase: %w", ph.name, err)
		}
	}

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	counts, err := r.app.Store.CountDeliveries(cctx)
	if err != nil {
		return rep, fmt.Errorf("bench: count deliveries: %w", err)
	}
	rep.FinalStates = map[string]int64(counts)
	return rep, nil
}

// run is the state of one benchmark.
type run struct {
	o    Options
	base time.Time // the clock the publishers and the sink share

	dataDir    string // SQLite: removed at the end
	dropSchema func() error

	app       *app.App
	dcfg      dispatch.Config
	apiKey    string
	baseURL   string
	stopApp   context.CancelFunc
	appDone   chan error
	client    *http.Client
	sink      *sink
	sinkSrv   *http.Server
	webhooks  []string
	mode      string
	latEvents int
	storeWant int64 // deliveries the store should record as delivered so far

	private    *privatePostgres // with PrivatePostgres
	sqlDB      *sql.DB          // PostgreSQL: settings and the backends' pids
	db         dbCPU            // PostgreSQL: whose CPU counts as the database's
	pgSettings []Setting

	preloadSecs float64
}

// now is the shared monotonic clock: nanoseconds since the run began.
func (r *run) now() int64 { return int64(time.Since(r.base)) }

func (r *run) hook(phase string, begin bool) {
	if r.o.PhaseHook != nil {
		r.o.PhaseHook(phase, begin)
	}
}

func (r *run) start(ctx context.Context) error {
	o := r.o
	cfg, err := config.Load("bench", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		return fmt.Errorf("default configuration: %w", err)
	}
	if r.dataDir, err = os.MkdirTemp("", "carrier-bench-"); err != nil {
		return fmt.Errorf("temporary data dir: %w", err)
	}
	cfg.DataDir = r.dataDir
	switch o.Store {
	case "postgres":
		base := o.DatabaseURL
		if o.PrivatePostgres {
			if r.private, err = startPrivatePostgres(ctx); err != nil {
				return err
			}
			base = r.private.url()
		}
		u, drop, err := freshSchema(ctx, base)
		if err != nil {
			return err
		}
		r.dropSchema = drop
		if r.sqlDB, err = sql.Open("pgx", base); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if r.pgSettings, err = pgSettings(ctx, r.sqlDB); err != nil {
			return err
		}
		// The name finds Carrier's backends among the server's processes.
		appName := "carrier_bench_" + randomHex(4)
		pu, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		q := pu.Query()
		q.Set("application_name", appName)
		pu.RawQuery = q.Encode()
		cfg.DatabaseURL = pu.String()
		if r.private != nil {
			r.db = instanceCPU{postmaster: r.private.postmaster}
		} else {
			r.db = backendCPU{db: r.sqlDB, appName: appName}
		}
	}
	if o.Preload > 0 {
		start := time.Now()
		if err := preload(ctx, cfg, o.Preload, o.Log); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		r.preloadSecs = time.Since(start).Seconds()
	}
	r.apiKey = "ck_bench_" + randomHex(16)
	cfg.Listen = "127.0.0.1:0"
	cfg.APIKey = r.apiKey
	cfg.AllowPrivateNetworks = true
	cfg.LogLevel = "warn"

	// The sink first: the webhooks point at it.
	r.latEvents = latencyEvents(o.Rate, o.Duration)
	r.sink = newSink(r, o.Events, r.latEvents, o.Webhooks)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sink: listen: %w", err)
	}
	r.sinkSrv = &http.Server{Handler: r.sink, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go r.sinkSrv.Serve(ln)
	r.sink.url = "http://" + ln.Addr().String()

	a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), app.Options{
		Dispatch: func(d *dispatch.Config) { r.dcfg = *d }, // observe, do not change
	})
	if err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	return r.serve(ctx, a, o.Concurrency)
}

// serve starts a built Carrier on loopback, with a keep-alive client sized for
// concurrency callers, and waits until it answers.
func (r *run) serve(ctx context.Context, a *app.App, concurrency int) error {
	if err := a.Listen(); err != nil {
		a.Store.Close()
		return fmt.Errorf("carrier: %w", err)
	}
	r.app = a
	r.baseURL = "http://" + a.Addr()
	actx, cancel := context.WithCancel(context.Background())
	r.stopApp = cancel
	r.appDone = make(chan error, 1)
	go func() { r.appDone <- a.Run(actx) }()

	r.client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        2*concurrency + 16,
			MaxIdleConnsPerHost: concurrency + 16,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
	}
	return r.waitReady(ctx)
}

func (r *run) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.baseURL+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("carrier health check: %w", err)
		}
		resp, err := r.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("carrier not healthy after 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// close stops everything start made, in reverse order.
func (r *run) close() error {
	var errs []error
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
	if r.sink != nil {
		r.sink.open() // release held requests
	}
	if r.stopApp != nil {
		r.stopApp()
		select {
		case err := <-r.appDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("carrier: %w", err))
			}
		case <-time.After(60 * time.Second):
			errs = append(errs, errors.New("carrier did not stop within 60s"))
		}
	} else if r.app != nil {
		r.app.Store.Close()
	}
	if r.sinkSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := r.sinkSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sink: %w", err))
		}
		cancel()
	}
	if r.sqlDB != nil {
		r.sqlDB.Close()
	}
	if r.dropSchema != nil {
		if err := r.dropSchema(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.private != nil {
		if err := r.private.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.dataDir != "" {
		if err := os.RemoveAll(r.dataDir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", r.dataDir, err))
		}
	}
	return errors.Join(errs...)
}

// freshSchema creates schema carrier_bench_<random> on the database at base
// and returns base with that schema as search_path, and a function that drops it.
func freshSchema(ctx context.Context, base string) (string, func() error, error) {
	schema := "carrier_bench_" + randomHex(8)
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: parse database URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: connect: %w", err)
	}
	_, err = conn.Exec(cctx, `CREATE SCHEMA `+schema)
	conn.Close(cctx)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: create schema %s: %w", schema, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("postgres: drop schema %s: connect: %w", schema, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("postgres: drop schema %s: %w", schema, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// call sends an API request with the admin key and decodes the "data" member
// of a want-status answer into out (unless out is nil).
func (r *run) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.baseURL+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+r.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d (want %d): %s", method, path, resp.StatusCode, want, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: decode data: %w", method, path, err)
	}
	return nil
}

// setupWebhooks creates the webhooks and pauses them for phase 1 (see the
// pause modes). It returns how many deliveries the probe event created.
func (r *run) setupWebhooks(ctx context.Context) (int64, error) {
	for i := 0; i < r.o.Webhooks; i++ {
		var created struct {
			ID string `json:"webhook_id"`
		}
		err := r.call(ctx, http.MethodPost, "/v1/webhooks", map[string]any{
			"name": fmt.Sprintf("bench-%d", i), "webhook_url": fmt.Sprintf("%s/hook/%d", r.sink.url, i),
			"event_types": []string{eventType}, "timeout_seconds": webhookTimeout,
		}, http.StatusCreated, &created)
		if err != nil {
			return 0, err
		}
		r.webhooks = append(r.webhooks, created.ID)
	}
	if err := r.setActive(ctx, false); err != nil {
		return 0, err
	}
	// Does an event published now wait for the inactive webhooks?
	probe, err := r.publish(ctx, []byte(`{"type":"`+eventType+`","data":{"bench_phase":0}}`))
	if err != nil {
		return 0, fmt.Errorf("probe event: %w", err)
	}
	switch {
	case probe == int64(r.o.Webhooks) && !r.o.forceHeld:
		r.mode = PauseInactive
		r.sink.open() // nothing to hold: the engine does not claim for inactive webhooks
	case probe == 0 || r.o.forceHeld:
		// Inactive webhooks are not matched: keep them active and hold the
		// engine's requests at the sink instead.
		r.mode = PauseHeld
		if err := r.setActive(ctx, true); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("probe event created %d deliveries for %d inactive webhooks", probe, r.o.Webhooks)
	}
	return probe, nil
}

func (r *run) setActive(ctx context.Context, active bool) error {
	verb := "deactivate"
	if active {
		verb = "activate"
	}
	for _, id := range r.webhooks {
		if err := r.call(ctx, http.MethodPut, "/v1/webhooks/"+id+"/"+verb, nil, http.StatusOK, nil); err != nil {
			return err
		}
	}
	return nil
}

// preload creates the schema of cfg's store and stores n rows in it with bulk
// SQL (recursive CTEs in chunks of 100,000 on both engines), far faster than
// publishing them.
func preload(ctx context.Context, cfg config.Config, n int, log io.Writer) error {
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	st.Close()
	db, err := seedDB(cfg.DataDir, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.close()
	per := max(1, n/3)
	end := time.Now().Add(-24 * time.Hour)
	span := 29 * 24 * time.Hour
	spacing := max(1, int64(span/time.Millisecond)/int64(per))
	fmt.Fprintf(log, "preloading %d events, deliveries and attempts each...\n", per)
	return db.seedRows(ctx, per, end.Add(-span).UnixMilli(), spacing, true)
}
