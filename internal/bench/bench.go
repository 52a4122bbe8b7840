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
// All traffic stays on 127.0.0.1 (apart from the PostgreSQL URL given).
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	switch {
	case o.Store != "sqlite" && o.Store != "postgres":
		return fmt.Errorf("store must be sqlite or postgres, not %q", o.Store)
	case o.Store == "postgres" && o.DatabaseURL == "":
		return errors.New("store postgres needs a database URL (--database-url or CARRIER_DATABASE_URL)")
	case o.Store == "postgres" && !strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://"):
		return errors.New("database URL must be a postgres:// or postgresql:// URL")
	case o.Events < 1, o.Concurrency < 1, o.Webhooks < 1, o.Rate < 1, o.Duration <= 0, o.Timeout <= 0:
		return errors.New("events, concurrency, webhooks, rate, duration and timeout must be positive")
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

// Report is the outcome of a run.
type Report struct {
	Machine Machine `json:"machine"`
	Store   string  `json:"store"`
	Params  Params  `json:"params"`
	Carrier Carrier `json:"carrier"`
	// Ingest is phase 1.
	Ingest Ingest `json:"ingest"`
	// Delivery is phase 2.
	Delivery Delivery `json:"delivery"`
	// Latency is phase 3.
	Latency Latency `json:"latency"`
	// FinalStates counts every delivery in the store by state at the end.
	FinalStates map[string]int64 `json:"final_delivery_states"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
	CPUModel   string `json:"cpu_model,omitempty"`
}

// Params are the run's parameters.
type Params struct {
	Events      int     `json:"events"`
	Concurrency int     `json:"concurrency"`
	Webhooks    int     `json:"webhooks"`
	Rate        int     `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	TimeoutS    float64 `json:"timeout_s"`
}

// Carrier records the settings of the Carrier under test that matter here.
type Carrier struct {
	LaneConcurrency int     `json:"lane_concurrency"`
	MaxInFlight     int     `json:"max_in_flight"`
	ClaimBatch      int     `json:"claim_batch"`
	PollIntervalMS  float64 `json:"poll_interval_ms"`
	// PauseMode tells how phase 1 kept deliveries back (PauseInactive or PauseHeld).
	PauseMode string `json:"pause_mode"`
}

// Ingest is the result of phase 1.
type Ingest struct {
	Accepted     int64   `json:"accepted"`
	Deliveries   int64   `json:"deliveries_created"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	TimedOut     bool    `json:"timed_out"`
	ElapsedS     float64 `json:"elapsed_s"`
	EventsPerSec float64 `json:"events_per_s"`
	// Accept is the closed-loop request latency (send to 202).
	Accept Percentiles `json:"accept_latency"`
}

// Delivery is the result of phase 2.
type Delivery struct {
	// Expected counts phase 1's deliveries (the sink's target); StoreTarget
	// adds any created by the pause-mode probe event.
	Expected       int64   `json:"expected"`
	StoreTarget    int64   `json:"store_target"`
	SinkReceived   int64   `json:"sink_received"`
	SinkDuplicates int64   `json:"sink_duplicates"`
	StoreDelivered int64   `json:"store_delivered"`
	TimedOut       bool    `json:"timed_out"`
	SinkElapsedS   float64 `json:"sink_elapsed_s"`
	StoreElapsedS  float64 `json:"store_elapsed_s"`
	SinkPerSec     float64 `json:"sink_per_s"`
	// DeliveriesPerSec is deliveries recorded as delivered per second.
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
}

// Latency is the result of phase 3.
type Latency struct {
	TargetRate  int     `json:"target_rate"`
	Scheduled   int     `json:"scheduled"`
	Accepted    int64   `json:"accepted"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	AchievedPer float64 `json:"achieved_rate"`
	// MaxSendLagMS is the most a send started after its scheduled time.
	MaxSendLagMS float64 `json:"max_send_lag_ms"`
	// LateSends counts sends that started more than 1 ms late.
	LateSends  int64 `json:"late_sends"`
	Expected   int64 `json:"expected_deliveries"`
	Delivered  int64 `json:"delivered"`
	Duplicates int64 `json:"duplicates"`
	TimedOut   bool  `json:"timed_out"`
	// Delivery is scheduled send time to arrival at the sink.
	Delivery Percentiles `json:"delivery_latency"`
	// Accept is scheduled send time to the 202 answer.
	Accept Percentiles `json:"accept_latency"`
}

// Percentiles summarise latencies in milliseconds.
type Percentiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

func percentiles(ns []int64) Percentiles {
	if len(ns) == 0 {
		return Percentiles{}
	}
	slices.Sort(ns)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ns)))) - 1
		return ms(ns[max(0, min(i, len(ns)-1))])
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return Percentiles{N: len(ns), Mean: sum / float64(len(ns)) / 1e6, P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ms(ns[len(ns)-1])}
}

func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
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
	if err := r.start(ctx); err != nil {
		return nil, fmt.Errorf("bench: start: %w", err)
	}
	rep = &Report{
		Machine: machine(), Store: r.app.Store.Engine(),
		Params: Params{Events: o.Events, Concurrency: o.Concurrency, Webhooks: o.Webhooks, Rate: o.Rate,
			DurationS: o.Duration.Seconds(), TimeoutS: o.Timeout.Seconds()},
		Carrier: Carrier{LaneConcurrency: r.dcfg.LaneConcurrency, MaxInFlight: r.dcfg.MaxInFlight, ClaimBatch: r.dcfg.ClaimBatch,
			PollIntervalMS: float64(r.dcfg.PollInterval) / 1e6},
	}
	probe, err := r.setupWebhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: set up webhooks: %w", err)
	}
	rep.Carrier.PauseMode = r.mode

	r.hook(PhaseIngest, true)
	rep.Ingest = r.ingest(ctx)
	r.hook(PhaseIngest, false)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench: phase 1: %w", err)
	}

	r.hook(PhaseDelivery, true)
	rep.Delivery, err = r.delivery(ctx, rep.Ingest.Deliveries, probe+rep.Ingest.Deliveries)
	r.hook(PhaseDelivery, false)
	if err != nil {
		return rep, fmt.Errorf("bench: phase 2: %w", err)
	}

	r.hook(PhaseLatency, true)
	rep.Latency = r.latency(ctx)
	r.hook(PhaseLatency, false)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench: phase 3: %w", err)
	}

	// The sink may have answered before the engine recorded the outcomes:
	// wait (bounded) until the store shows every delivery before counting.
	want := probe + rep.Ingest.Deliveries + rep.Latency.Expected
	if err := r.waitStore(ctx, want); err != nil {
		return rep, fmt.Errorf("bench: phase 3: %w", err)
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
		u, drop, err := freshSchema(ctx, o.DatabaseURL)
		if err != nil {
			return err
		}
		r.dropSchema = drop
		cfg.DatabaseURL = u
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
	if r.dropSchema != nil {
		if err := r.dropSchema(); err != nil {
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

// publish posts one event and returns how many deliveries it created.
func (r *run) publish(ctx context.Context, body []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.baseURL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("publish: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("publish: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out struct {
		Data struct {
			Deliveries int64 `json:"deliveries"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, fmt.Errorf("publish: decode answer: %w", err)
	}
	return out.Data.Deliveries, nil
}

// appendEvent renders a benchmark event: data carries the phase, the sequence
// number and the (scheduled) send time on the shared clock.
func appendEvent(b []byte, phase int, seq, sentNS int64) []byte {
	b = append(b, `{"type":"`+eventType+`","data":{"bench_phase":`...)
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"sent_ns":`...)
	b = strconv.AppendInt(b, sentNS, 10)
	return append(b, "}}"...)
}

// firstError keeps the first error of a phase.
type firstError struct {
	once sync.Once
	msg  string
}

func (f *firstError) set(err error) { f.once.Do(func() { f.msg = err.Error() }) }

// ingest is phase 1: publish Events events with Concurrency clients, closed loop.
func (r *run) ingest(ctx context.Context) Ingest {
	n := int64(r.o.Events)
	pctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	var (
		next, accepted, deliveries, errs atomic.Int64
		first                            firstError
		wg                               sync.WaitGroup
		mu                               sync.Mutex
		lat                              = make([]int64, 0, n)
	)
	start := time.Now()
	for g := 0; g < r.o.Concurrency; g++ {
		wg.Go(func() {
			buf := make([]byte, 0, 128)
			local := make([]int64, 0, n/int64(r.o.Concurrency)+1)
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for pctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= n {
					return
				}
				t0 := r.now()
				buf = appendEvent(buf[:0], 1, k, t0)
				d, err := r.publish(pctx, buf)
				if err != nil {
					if pctx.Err() == nil {
						errs.Add(1)
						first.set(fmt.Errorf("event %d: %w", k, err))
						cancel() // a failing Carrier is not measured further
					}
					return
				}
				local = append(local, r.now()-t0)
				accepted.Add(1)
				deliveries.Add(d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := Ingest{
		Accepted: accepted.Load(), Deliveries: deliveries.Load(), Errors: errs.Load(), FirstError: first.msg,
		TimedOut: errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil,
		ElapsedS: elapsed.Seconds(), Accept: percentiles(lat),
	}
	res.EventsPerSec = perSec(res.Accepted, elapsed)
	return res
}

// delivery is phase 2: release phase 1's deliveries and wait until the sink
// has all of them and the store records them all as delivered.
func (r *run) delivery(ctx context.Context, expected, storeTarget int64) (Delivery, error) {
	res := Delivery{Expected: expected, StoreTarget: storeTarget}
	t1 := r.sink.phase1
	start := time.Now()
	startNS := r.now()
	switch r.mode {
	case PauseInactive:
		if err := r.setActive(ctx, true); err != nil {
			return res, err
		}
	case PauseHeld:
		r.sink.open()
	}
	deadline := time.NewTimer(r.o.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sinkDone, storeDone := false, false
	for !(sinkDone && storeDone) {
		if !sinkDone && t1.count.Load() >= expected {
			sinkDone = true
			res.SinkElapsedS = time.Duration(max(0, t1.last.Load()-startNS)).Seconds()
		}
		if !storeDone {
			n, err := r.storeDelivered(ctx)
			if err != nil {
				return res, err
			}
			res.StoreDelivered = n
			if n >= storeTarget {
				storeDone = true
				res.StoreElapsedS = time.Since(start).Seconds()
			}
		}
		if sinkDone && storeDone {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline.C:
			res.TimedOut = true
		case <-tick.C:
		}
		if res.TimedOut {
			break
		}
	}
	res.SinkReceived = t1.count.Load()
	res.SinkDuplicates = t1.dups.Load()
	if res.TimedOut {
		elapsed := time.Since(start).Seconds()
		if !sinkDone {
			res.SinkElapsedS = elapsed
		}
		if !storeDone {
			res.StoreElapsedS = elapsed
		}
	}
	res.SinkPerSec = perSec(res.SinkReceived, time.Duration(res.SinkElapsedS*1e9))
	res.DeliveriesPerSec = perSec(min(res.StoreDelivered, storeTarget), time.Duration(res.StoreElapsedS*1e9))
	return res, nil
}

// storeDelivered sums the webhooks' successful deliveries as the store records them.
func (r *run) storeDelivered(ctx context.Context) (int64, error) {
	var n int64
	for _, id := range r.webhooks {
		sub, err := r.app.Store.GetSubscription(ctx, app.DefaultProjectID, id)
		if err != nil {
			return 0, fmt.Errorf("read webhook %s: %w", id, err)
		}
		n += sub.SuccessfulDeliveries
	}
	return n, nil
}

// waitStore waits until the store records want deliveries as delivered, or
// Timeout passes (which is not an error: the final states show what happened).
func (r *run) waitStore(ctx context.Context, want int64) error {
	deadline := time.Now().Add(r.o.Timeout)
	for {
		n, err := r.storeDelivered(ctx)
		if err != nil {
			return err
		}
		if n >= want || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// latency is phase 3: publish at Rate for Duration, open loop, each event
// carrying its scheduled send time, with delivery running.
func (r *run) latency(ctx context.Context) Latency {
	total := int64(r.latEvents)
	res := Latency{TargetRate: r.o.Rate, Scheduled: r.latEvents}
	interval := float64(time.Second) / float64(r.o.Rate)
	pctx, cancel := context.WithTimeout(ctx, r.o.Duration+r.o.Timeout)
	defer cancel()
	var (
		next, accepted, deliveries, errs, late, maxLag, lastAccept atomic.Int64
		first                                                      firstError
		wg                                                         sync.WaitGroup
		mu                                                         sync.Mutex
		acceptLat                                                  = make([]int64, 0, total)
	)
	start := r.now() + int64(5*time.Millisecond) // let the clients line up
	for g := 0; g < r.o.Concurrency; g++ {
		wg.Go(func() {
			buf := make([]byte, 0, 128)
			var local []int64
			defer func() {
				mu.Lock()
				acceptLat = append(acceptLat, local...)
				mu.Unlock()
			}()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for pctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				sched := start + int64(float64(k)*interval)
				if d := sched - r.now(); d > 0 {
					timer.Reset(time.Duration(d))
					select {
					case <-pctx.Done():
						return
					case <-timer.C:
					}
				}
				lag := r.now() - sched
				if lag > int64(time.Millisecond) {
					late.Add(1)
				}
				atomicMax(&maxLag, lag)
				buf = appendEvent(buf[:0], 3, k, sched)
				d, err := r.publish(pctx, buf)
				if err != nil {
					if pctx.Err() == nil {
						errs.Add(1)
						first.set(fmt.Errorf("event %d: %w", k, err))
					}
					continue
				}
				now := r.now()
				local = append(local, now-sched)
				atomicMax(&lastAccept, now)
				accepted.Add(1)
				deliveries.Add(d)
			}
		})
	}
	wg.Wait()
	res.Accepted, res.Errors, res.FirstError = accepted.Load(), errs.Load(), first.msg
	res.LateSends, res.MaxSendLagMS = late.Load(), ms(maxLag.Load())
	res.AchievedPer = perSec(res.Accepted, time.Duration(lastAccept.Load()-start))
	res.Accept = percentiles(acceptLat)
	res.Expected = deliveries.Load()

	// Wait for the deliveries.
	t3 := r.sink.phase3
	deadline := time.Now().Add(r.o.Timeout)
	for t3.count.Load() < res.Expected && ctx.Err() == nil {
		if time.Now().After(deadline) {
			res.TimedOut = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.Delivered, res.Duplicates = t3.count.Load(), t3.dups.Load()
	res.Delivery = percentiles(t3.values())
	return res
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// tracker records the first arrival of each (event, webhook) pair of a phase
// in a preallocated slot, lock-free: slot = seq*webhooks + webhook.
type tracker struct {
	hooks int64
	// slots hold 0 (not arrived), or the latency in ns (at least 1) when
	// latencies are kept, or 1.
	slots   []atomic.Int64
	keepLat bool
	count   atomic.Int64
	dups    atomic.Int64
	last    atomic.Int64 // latest first-arrival time on the shared clock
}

func newTracker(events, hooks int, keepLat bool) *tracker {
	return &tracker{hooks: int64(hooks), slots: make([]atomic.Int64, events*hooks), keepLat: keepLat}
}

func (t *tracker) record(seq int64, hook int, sent, arrival int64) bool {
	if seq < 0 || hook < 0 || int64(hook) >= t.hooks || seq >= int64(len(t.slots))/t.hooks {
		return false
	}
	v := int64(1)
	if t.keepLat {
		v = max(1, arrival-sent)
	}
	if !t.slots[seq*t.hooks+int64(hook)].CompareAndSwap(0, v) {
		t.dups.Add(1)
		return true
	}
	atomicMax(&t.last, arrival)
	t.count.Add(1)
	return true
}

// values returns the recorded latencies.
func (t *tracker) values() []int64 {
	out := make([]int64, 0, t.count.Load())
	for i := range t.slots {
		if v := t.slots[i].Load(); v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// sink is the webhook endpoint: it answers 200 at once and records arrivals.
type sink struct {
	r        *run
	url      string
	phase1   *tracker
	phase3   *tracker
	other    atomic.Int64 // probe and unrecognised requests
	gate     chan struct{}
	gateOnce sync.Once
	bufs     sync.Pool
}

func newSink(r *run, events, latEvents, hooks int) *sink {
	return &sink{
		r: r, phase1: newTracker(events, hooks, false), phase3: newTracker(latEvents, hooks, true),
		gate: make(chan struct{}),
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// open lets held requests through (idempotent).
func (s *sink) open() { s.gateOnce.Do(func() { close(s.gate) }) }

type sinkPayload struct {
	Data struct {
		Phase  int   `json:"bench_phase"`
		Seq    int64 `json:"seq"`
		SentNS int64 `json:"sent_ns"`
	} `json:"data"`
}

// ServeHTTP records a delivery (after the gate opens) and answers 200.
func (s *sink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-s.gate:
	default:
		t := time.NewTimer(holdMax)
		select {
		case <-s.gate:
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	arrival := s.r.now()
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(io.LimitReader(req.Body, 1<<20))
	var p sinkPayload
	if err == nil {
		err = json.Unmarshal(buf.Bytes(), &p)
	}
	s.bufs.Put(buf)
	hook, herr := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
	ok := false
	if err == nil && herr == nil {
		switch p.Data.Phase {
		case 1:
			ok = s.phase1.record(p.Data.Seq, hook, p.Data.SentNS, arrival)
		case 3:
			ok = s.phase3.record(p.Data.Seq, hook, p.Data.SentNS, arrival)
		}
	}
	if !ok {
		s.other.Add(1)
	}
	w.WriteHeader(http.StatusOK)
}

func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Targets are the figures a run is expected to reach.
type Targets struct {
	EventsPerSec     float64
	DeliveriesPerSec float64
	P99MS            float64
}

// DefaultTargets are Carrier's goals on SQLite: 10,000 events/s accepted,
// 5,000 deliveries/s end to end, p99 under 50 ms at 1,000 events/s.
var DefaultTargets = Targets{EventsPerSec: 10000, DeliveriesPerSec: 5000, P99MS: 50}

// WriteText prints the report for people, with the targets checked.
func (rep *Report) WriteText(w io.Writer, t Targets) error {
	m := rep.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "Carrier bench (store: %s)\n", rep.Store)
	fmt.Fprintf(&b, "  machine   %d CPUs (GOMAXPROCS %d), %s/%s, %s", m.NumCPU, m.GOMAXPROCS, m.GOOS, m.GOARCH, m.GoVersion)
	if m.CPUModel != "" {
		fmt.Fprintf(&b, ", %s", m.CPUModel)
	}
	p, c := rep.Params, rep.Carrier
	fmt.Fprintf(&b, "\n  params    events %d, concurrency %d, webhooks %d, rate %d/s for %gs\n", p.Events, p.Concurrency, p.Webhooks, p.Rate, p.DurationS)
	fmt.Fprintf(&b, "  carrier   lane concurrency %d, max in flight %d, claim batch %d, poll %gms; phase 1 pause: %s\n",
		c.LaneConcurrency, c.MaxInFlight, c.ClaimBatch, c.PollIntervalMS, c.PauseMode)

	in := rep.Ingest
	fmt.Fprintf(&b, "\nphase 1  ingest (durable, %d clients)\n", p.Concurrency)
	fmt.Fprintf(&b, "  %d events accepted in %.3fs = %.0f events/s (%d deliveries created, %d errors%s)\n",
		in.Accepted, in.ElapsedS, in.EventsPerSec, in.Deliveries, in.Errors, timedOut(in.TimedOut))
	fmt.Fprintf(&b, "  request latency  %s\n", in.Accept)
	if in.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", in.FirstError)
	}

	d := rep.Delivery
	fmt.Fprintf(&b, "\nphase 2  delivery end to end\n")
	fmt.Fprintf(&b, "  sink received %d/%d in %.3fs = %.0f/s (%d duplicates)\n", d.SinkReceived, d.Expected, d.SinkElapsedS, d.SinkPerSec, d.SinkDuplicates)
	fmt.Fprintf(&b, "  store recorded %d/%d delivered in %.3fs = %.0f deliveries/s%s\n", d.StoreDelivered, d.StoreTarget, d.StoreElapsedS, d.DeliveriesPerSec, timedOut(d.TimedOut))

	l := rep.Latency
	fmt.Fprintf(&b, "\nphase 3  latency at %d events/s for %gs (open loop, from scheduled send time)\n", l.TargetRate, p.DurationS)
	fmt.Fprintf(&b, "  %d/%d events accepted, achieved %.1f events/s, %d errors, %d sends >1ms late (max lag %.3fms)\n",
		l.Accepted, l.Scheduled, l.AchievedPer, l.Errors, l.LateSends, l.MaxSendLagMS)
	fmt.Fprintf(&b, "  publish -> delivered  %s  (%d/%d delivered, %d duplicates%s)\n", l.Delivery, l.Delivered, l.Expected, l.Duplicates, timedOut(l.TimedOut))
	fmt.Fprintf(&b, "  publish -> 202        %s\n", l.Accept)
	if l.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", l.FirstError)
	}
	if len(rep.FinalStates) > 0 {
		states := make([]string, 0, len(rep.FinalStates))
		for _, s := range slices.Sorted(maps.Keys(rep.FinalStates)) {
			states = append(states, fmt.Sprintf("%s %d", s, rep.FinalStates[s]))
		}
		fmt.Fprintf(&b, "\nstore at the end: %s\n", strings.Join(states, ", "))
	}

	fmt.Fprintf(&b, "\ntargets\n")
	fmt.Fprintf(&b, "  ingest   >= %.0f events/s      %s (%.0f)\n", t.EventsPerSec, pass(in.EventsPerSec >= t.EventsPerSec && in.Errors == 0), in.EventsPerSec)
	fmt.Fprintf(&b, "  delivery >= %.0f deliveries/s   %s (%.0f)\n", t.DeliveriesPerSec, pass(d.DeliveriesPerSec >= t.DeliveriesPerSec && !d.TimedOut), d.DeliveriesPerSec)
	fmt.Fprintf(&b, "  p99      <  %.0f ms             %s (%.3f ms at %d/s)\n", t.P99MS, pass(l.Delivery.N > 0 && l.Delivery.P99 < t.P99MS && !l.TimedOut), l.Delivery.P99, l.TargetRate)
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders the percentiles on one line.
func (p Percentiles) String() string {
	if p.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (mean %.2fms, n %d)", p.P50, p.P90, p.P99, p.Max, p.Mean, p.N)
}

func timedOut(b bool) string {
	if b {
		return ", TIMED OUT"
	}
	return ""
}

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
