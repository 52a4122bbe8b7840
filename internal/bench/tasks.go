package bench

// The task benchmark (carrier bench --tasks) measures async tasks end to end:
// Carrier in-process with a provider simulator and a loopback webhook sink
// subscribed to task.solved. For each scenario (a share of pingbacks the
// simulator loses), tasks are created through POST /v1/tasks at a paced rate
// (open loop); Carrier submits them to the simulator with a pingback URL, the
// simulator solves each after a random delay and sends the pingback (or not),
// Carrier's fallback poller asks about the tasks whose pingback is overdue in
// batches, and every result becomes one task.solved event delivered to the
// sink. The run reports how many upstream requests that took per solved task,
// how each task was solved, whether exactly one task.solved arrived per task,
// and the latency from the simulator's solve to the sink.
//
// Time is scaled down so that a run takes about a minute. Production defaults
// are CallbackTimeout 120 s and PollInterval 30 s (4:1) against real solves of
// 10-60 s; the benchmark uses 4 s and 2 s (2:1) against simulated solves of
// 1-3 s. What is kept is the order: every solve ends well before the callback
// timeout (as the source document expects of real solves within 120 s), so a
// lost pingback is recovered by the first poll after the timeout, and poll
// answers are ready when asked.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"carrier/internal/app"
	"carrier/internal/config"
	"carrier/internal/provider"
	"carrier/internal/provider/simulator"
	"carrier/internal/store"
	"carrier/internal/task"
)

// Defaults of the task benchmark (TaskOptions), scaled down from the
// production defaults as the package documentation explains.
const (
	DefaultTaskCount           = 2000
	DefaultTaskRate            = 200 // tasks created per second
	DefaultTaskMinDelay        = time.Second
	DefaultTaskMaxDelay        = 3 * time.Second
	DefaultTaskCallbackTimeout = 4 * time.Second // production: 120 s
	DefaultTaskPollInterval    = 2 * time.Second // production: 30 s
	// DefaultTaskTick is the task service's loop tick (production: 1 s). The
	// poller sends at most one batch request per tick while tasks are due.
	DefaultTaskTick = 100 * time.Millisecond
	// DefaultTaskPollBudget is the upstream result requests allowed per
	// minute: the configuration's maximum, so that the budget (production:
	// 60 a minute, one request per 1 s tick) never holds the compressed run back.
	DefaultTaskPollBudget = 100000
)

// DefaultTaskLost are the default scenarios: no pingback lost, and 30% lost.
var DefaultTaskLost = []float64{0, 0.3}

// maxTasks bounds TaskOptions.Tasks (the bookkeeping is in memory).
const maxTasks = 1_000_000

// TaskOptions configure RunTasks. Zero values take the defaults.
type TaskOptions struct {
	// Store is "sqlite" (default) or "postgres".
	Store string
	// DatabaseURL is the postgres:// URL of the database in which each
	// scenario creates a fresh schema carrier_bench_<random>, dropped at its end.
	DatabaseURL string
	// Tasks is how many tasks each scenario creates (default DefaultTaskCount).
	Tasks int
	// Rate is how many tasks are created per second (default DefaultTaskRate).
	Rate int
	// Concurrency is how many HTTP clients create tasks (default 16).
	Concurrency int
	// Lost lists the scenarios: each is the probability that the simulator
	// never sends a task's pingback (default DefaultTaskLost).
	Lost []float64
	// MinDelay and MaxDelay bound the simulator's solve delay, drawn
	// uniformly (defaults DefaultTaskMinDelay and DefaultTaskMaxDelay).
	MinDelay, MaxDelay time.Duration
	// CallbackTimeout and PollInterval are Carrier's settings of the same
	// names (defaults DefaultTaskCallbackTimeout and DefaultTaskPollInterval).
	CallbackTimeout, PollInterval time.Duration
	// Tick is the task service's loop tick (default DefaultTaskTick).
	Tick time.Duration
	// PollBudget is Carrier's poll budget per minute (default DefaultTaskPollBudget).
	PollBudget int
	// Timeout bounds the creation of the tasks and, after it, the wait until
	// every task is solved (default 3m). A scenario that runs out reports what
	// it saw.
	Timeout time.Duration
	// Settle is how long a scenario keeps listening after the last task was
	// solved, to catch late duplicates (default 2 s, longer than the outbox
	// relay takes to publish a row a crash or a failed publish left).
	Settle time.Duration
	// Seed seeds the simulator's delay and fault dice (default 1).
	Seed int64
	// Log receives Carrier's log at level warn (default os.Stderr).
	Log io.Writer
}

func (o *TaskOptions) defaults() error {
	if o.Store == "" {
		o.Store = "sqlite"
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&o.Tasks, DefaultTaskCount)
	setInt(&o.Rate, DefaultTaskRate)
	setInt(&o.Concurrency, 16)
	setInt(&o.PollBudget, DefaultTaskPollBudget)
	if o.MinDelay == 0 && o.MaxDelay == 0 {
		o.MinDelay, o.MaxDelay = DefaultTaskMinDelay, DefaultTaskMaxDelay
	}
	setDur(&o.CallbackTimeout, DefaultTaskCallbackTimeout)
	setDur(&o.PollInterval, DefaultTaskPollInterval)
	setDur(&o.Tick, DefaultTaskTick)
	setDur(&o.Timeout, 3*time.Minute)
	if o.Lost == nil {
		o.Lost = slices.Clone(DefaultTaskLost)
	}
	if o.Seed == 0 {
		o.Seed = 1
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
	case o.Tasks < 1, o.Rate < 1, o.Concurrency < 1, o.PollBudget < 1:
		return errors.New("tasks, rate, concurrency and poll budget must be positive")
	case o.Tasks > maxTasks:
		return fmt.Errorf("tasks must be at most %d", maxTasks)
	case o.MinDelay < 0 || o.MaxDelay < o.MinDelay:
		return fmt.Errorf("solve delays must satisfy 0 <= min (%v) <= max (%v)", o.MinDelay, o.MaxDelay)
	case o.CallbackTimeout <= 0, o.PollInterval <= 0, o.Tick <= 0, o.Timeout <= 0, o.Settle < 0:
		return errors.New("callback timeout, poll interval, tick and timeout must be positive, settle not negative")
	case len(o.Lost) == 0:
		return errors.New("at least one lost-pingback scenario is needed")
	}
	for _, p := range o.Lost {
		if p < 0 || p > 1 || math.IsNaN(p) {
			return fmt.Errorf("lost pingbacks must be between 0 and 1, got %v", p)
		}
	}
	return nil
}

// TaskReport is the outcome of RunTasks.
type TaskReport struct {
	Machine Machine     `json:"machine"`
	Store   string      `json:"store"`
	Params  TaskParams  `json:"params"`
	Carrier TaskCarrier `json:"carrier"`
	// Scenarios are in the order of TaskOptions.Lost.
	Scenarios []TaskScenario `json:"scenarios"`
}

// TaskParams are the run's parameters.
type TaskParams struct {
	Tasks             int       `json:"tasks"`
	Rate              int       `json:"rate"`
	Concurrency       int       `json:"concurrency"`
	Lost              []float64 `json:"lost_pingbacks"`
	MinDelayMS        float64   `json:"min_solve_delay_ms"`
	MaxDelayMS        float64   `json:"max_solve_delay_ms"`
	CallbackTimeoutMS float64   `json:"callback_timeout_ms"`
	PollIntervalMS    float64   `json:"poll_interval_ms"`
	TimeoutS          float64   `json:"timeout_s"`
	SettleMS          float64   `json:"settle_ms"`
	Seed              int64     `json:"seed"`
}

// TaskCarrier records the task service's settings that matter here.
type TaskCarrier struct {
	TickMS            float64 `json:"tick_ms"`
	SubmitConcurrency int     `json:"submit_concurrency"`
	PollBudget        int     `json:"poll_budget_per_min"`
	// MaxBatch is the most task ids one poll request carries.
	MaxBatch int `json:"max_batch"`
}

// TaskScenario is the result of one scenario.
type TaskScenario struct {
	// LostPingbacks is the configured probability of a lost pingback.
	LostPingbacks float64 `json:"lost_pingbacks"`

	// Created counts tasks accepted (202) by POST /v1/tasks.
	Created      int64   `json:"created"`
	CreateErrors int64   `json:"create_errors"`
	FirstError   string  `json:"first_error,omitempty"`
	AchievedRate float64 `json:"achieved_rate"`
	// MaxSendLagMS is the most a create started after its scheduled time.
	MaxSendLagMS float64 `json:"max_send_lag_ms"`
	// CreateLatency is scheduled send time to the 202 answer.
	CreateLatency Percentiles `json:"create_latency"`

	// Solved counts created tasks whose task.solved event reached the sink.
	Solved      int64 `json:"solved"`
	ViaCallback int64 `json:"via_callback"`
	ViaPoll     int64 `json:"via_poll"`
	// Missing counts created tasks without a task.solved at the sink.
	Missing  int64 `json:"missing"`
	TimedOut bool  `json:"timed_out"`
	// SolvedElapsedS is from the first scheduled create until the last task's
	// first task.solved arrived; DrainS from the last 202 until then.
	SolvedElapsedS float64 `json:"solved_elapsed_s"`
	DrainS         float64 `json:"drain_s"`

	// Sink counts what the webhook sink received.
	Sink TaskSink `json:"sink"`
	// Store counts the tasks in Carrier's store at the end.
	Store TaskStoreCounts `json:"store"`
	// Upstream counts the requests the simulator received.
	Upstream TaskUpstream `json:"upstream"`
	// Computed are request counts of other polling strategies, computed from
	// the simulator's solve delays: not measured.
	Computed TaskComputed `json:"computed"`

	// CallbackLatency and PollLatency run from the simulator's solve to the
	// arrival of the task's first task.solved at the sink, for tasks solved by
	// pingback and by the fallback poller. Poll latency is dominated by the
	// callback timeout by design: a task is polled only once its pingback is
	// CallbackTimeout overdue, counted from its submission.
	CallbackLatency Percentiles `json:"callback_latency"`
	PollLatency     Percentiles `json:"poll_latency"`
	// NoSolveTime counts arrivals whose provider id the simulator never
	// reported solved (left out of the latencies; should be 0).
	NoSolveTime int64 `json:"no_solve_time,omitempty"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average as the
	// scenario began and ended (Linux only; 0 elsewhere): other work on the
	// machine shows here.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// TaskSink counts the task.solved requests the sink received.
type TaskSink struct {
	// Requests counts task.solved requests.
	Requests int64 `json:"requests"`
	// Duplicates counts requests beyond the first per task (Requests - tasks).
	Duplicates int64 `json:"duplicates"`
	// DuplicateEvents counts distinct task.solved events beyond the first per
	// task: Carrier published the result more than once.
	DuplicateEvents int64 `json:"duplicate_events"`
	// Redeliveries counts requests repeating an event already received
	// (at-least-once delivery retried).
	Redeliveries int64 `json:"redeliveries"`
	// UnknownTasks counts task.solved events for tasks the run did not create.
	UnknownTasks int64 `json:"unknown_tasks"`
	// Other counts requests that were not task.solved events.
	Other int64 `json:"other"`
}

// TaskStoreCounts are the scenario's tasks in Carrier's store at the end.
type TaskStoreCounts struct {
	ByStatus    map[string]int64 `json:"by_status"`
	ViaCallback int64            `json:"via_callback"`
	ViaPoll     int64            `json:"via_poll"`
	// Polls sums the tasks' poll counters (a task's result requests that
	// answered "not ready").
	Polls int64 `json:"polls"`
	// DeadLetters counts dead letters by status (pingbacks that arrived before
	// Carrier recorded the task's provider id are kept as dead letters and
	// redriven once it is recorded).
	DeadLetters map[string]int64 `json:"dead_letters"`
	// SubmitLatency is each task's creation to its recorded submission (ms
	// resolution, as stored).
	SubmitLatency Percentiles `json:"submit_latency"`
	// SubmitRate is submitted tasks per second, from the first task's
	// creation to the last task's recorded submission.
	SubmitRate float64 `json:"submit_rate"`
	// PollLateness is, for poll-solved tasks, how long after its first poll
	// was due (submission + CallbackTimeout) the task was recorded solved: the
	// poller's own delay (ms resolution, as stored).
	PollLateness Percentiles `json:"poll_lateness"`
}

// TaskUpstream counts the requests the simulator received.
type TaskUpstream struct {
	Submits int64 `json:"submits"`
	// ResRequests are the res.php requests about tasks; the balance probe's
	// getbalance requests (alerts) are BalanceRequests, not counted in them.
	ResRequests     int64 `json:"res_requests"`
	BalanceRequests int64 `json:"balance_requests"`
	GetRequests     int64 `json:"get_requests"`
	PingbacksSent   int64 `json:"pingbacks_sent"`
	// PingbacksFailed counts pingbacks Carrier did not answer 2xx within the
	// simulator's timeout (the simulator, like real providers, never retries).
	PingbacksFailed int64 `json:"pingbacks_failed"`
	PingbacksLost   int64 `json:"pingbacks_lost"`
	// Requests is Submits + ResRequests: every request Carrier sent upstream
	// for the tasks.
	Requests int64 `json:"requests"`
	// PerSolved is Requests per solved task.
	PerSolved float64 `json:"per_solved"`
	// PerPolled is ResRequests per poll-solved task (the batching factor's inverse).
	PerPolled float64 `json:"res_per_poll_solved,omitempty"`
}

// TaskComputed are request counts of other strategies, computed (not
// measured) from each task's real solve delay d in the simulator, with the
// scenario's PollInterval I and CallbackTimeout T.
type TaskComputed struct {
	// LostPingbackTasks counts tasks whose pingback the simulator never sent.
	LostPingbackTasks int64 `json:"lost_pingback_tasks"`
	// NaiveRequests: the source document's naive poller, every lost-pingback
	// task polled on its own every I from its submission until solved,
	// 1 + ceil(d/I) requests (submit and polls); every other task 1 submit.
	NaiveRequests  int64   `json:"naive_requests"`
	NaivePerSolved float64 `json:"naive_per_solved"`
	// NaivePerLostTask is the naive poller's mean requests per lost-pingback task.
	NaivePerLostTask float64 `json:"naive_per_lost_task,omitempty"`
	// PollOnlyPerTask is the mean 1 + ceil(d/I) over all tasks: no pingbacks
	// at all, every task polled on its own.
	PollOnlyPerTask float64 `json:"poll_only_per_task"`
	// FallbackRequests: the source's callback + fallback poller unbatched, each
	// lost-pingback task polled on its own at T, T+I, … until ready,
	// 2 + max(0, ceil((d-T)/I)) requests; every other task 1 submit.
	FallbackRequests  int64   `json:"fallback_requests"`
	FallbackPerSolved float64 `json:"fallback_per_solved"`
}

// RunTasks runs the task benchmark and returns its report: one scenario per
// TaskOptions.Lost, each with its own Carrier, store (SQLite directory or
// PostgreSQL schema), simulator and sink, all gone when it returns.
func RunTasks(ctx context.Context, o TaskOptions) (*TaskReport, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("bench: tasks: %w", err)
	}
	rep := &TaskReport{
		Machine: machine(), Store: o.Store,
		Params: TaskParams{Tasks: o.Tasks, Rate: o.Rate, Concurrency: o.Concurrency, Lost: o.Lost,
			MinDelayMS: msOf(o.MinDelay), MaxDelayMS: msOf(o.MaxDelay), CallbackTimeoutMS: msOf(o.CallbackTimeout),
			PollIntervalMS: msOf(o.PollInterval), TimeoutS: o.Timeout.Seconds(), Seed: o.Seed},
	}
	for _, lost := range o.Lost {
		sc, err := runTaskScenario(ctx, o, lost, rep)
		if sc != nil {
			rep.Scenarios = append(rep.Scenarios, *sc)
		}
		if err != nil {
			return rep, fmt.Errorf("bench: tasks: scenario lost pingbacks %g: %w", lost, err)
		}
	}
	return rep, nil
}

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

// taskRun is the state of one scenario.
type taskRun struct {
	o    TaskOptions
	lost float64
	r    run // the process plumbing (Carrier, client, sink server, clean-up) of the benchmark
	sim  *simulator.Simulator
	tcfg task.Config
	sink *taskSink

	mu       sync.Mutex
	solvedAt map[string]time.Time // provider id -> the simulator's solve time
	created  map[string]bool      // task ids answered 202
}

func runTaskScenario(ctx context.Context, o TaskOptions, lost float64, rep *TaskReport) (sc *TaskScenario, err error) {
	tr := &taskRun{o: o, lost: lost, solvedAt: make(map[string]time.Time, o.Tasks), created: make(map[string]bool, o.Tasks),
		sink: &taskSink{byTask: make(map[string]*taskArrival, o.Tasks), events: make(map[string]bool, o.Tasks)}}
	defer func() {
		if cerr := tr.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	if err := tr.start(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	rep.Store = tr.r.app.Store.Engine()
	rep.Carrier = TaskCarrier{TickMS: msOf(tr.tcfg.Tick), SubmitConcurrency: tr.tcfg.SubmitConcurrency, PollBudget: tr.tcfg.PollBudget,
		MaxBatch: provider.MaxBatch}
	settle := o.Settle
	if settle == 0 {
		settle = 2 * time.Second
	}
	rep.Params.SettleMS = msOf(settle)

	sc = &TaskScenario{LostPingbacks: lost, LoadBefore: loadAverage()}
	defer func() { sc.LoadAfter = loadAverage() }()
	start, lastAccept := tr.create(ctx, sc)
	if err := ctx.Err(); err != nil {
		return sc, err
	}
	tr.waitSolved(ctx, sc, start, lastAccept)
	if err := ctx.Err(); err != nil {
		return sc, err
	}
	select { // late duplicates would arrive now
	case <-ctx.Done():
		return sc, ctx.Err()
	case <-time.After(settle):
	}
	return sc, tr.collect(ctx, sc)
}

// start starts the simulator, the sink and Carrier, and subscribes the sink to task.solved.
func (tr *taskRun) start(ctx context.Context) error {
	o, r := tr.o, &tr.r
	tr.sim = simulator.New(simulator.Config{Key: simulator.DefaultKey, Balance: 1e9, MinDelay: o.MinDelay, MaxDelay: o.MaxDelay,
		PingbackMethod: http.MethodGet, Seed: o.Seed, Faults: simulator.Faults{LostPingbacks: tr.lost},
		// Generous, so a pingback answered slowly on a loaded machine is not
		// counted as lost: Carrier records it whatever the provider's patience.
		PingbackTimeout: 30 * time.Second})
	tr.sim.OnSolved = tr.onSolved
	simURL, err := tr.sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}

	cfg, err := config.Load("bench", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		return fmt.Errorf("default configuration: %w", err)
	}
	if r.dataDir, err = os.MkdirTemp("", "carrier-bench-tasks-"); err != nil {
		return fmt.Errorf("temporary data dir: %w", err)
	}
	cfg.DataDir = r.dataDir
	if o.Store == "postgres" {
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
	cfg.AllowPrivateNetworks = true // the sink is on loopback
	cfg.LogLevel = "warn"
	cfg.ProviderURL, cfg.ProviderKey = simURL, simulator.DefaultKey
	cfg.CallbackTimeout, cfg.PollInterval, cfg.PollBudget = o.CallbackTimeout, o.PollInterval, o.PollBudget
	// No task may expire during the run.
	cfg.TaskMaxAge = max(cfg.TaskMaxAge, 2*(time.Duration(float64(o.Tasks)/float64(o.Rate)*float64(time.Second))+o.Timeout))
	cfg.SubmitRetryBase = 100 * time.Millisecond

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sink: listen: %w", err)
	}
	r.sinkSrv = &http.Server{Handler: tr.sink, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go r.sinkSrv.Serve(ln)
	sinkURL := "http://" + ln.Addr().String() + "/hook"

	a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), app.Options{
		Tasks: func(c *task.Config) {
			c.Tick = o.Tick
			tr.tcfg = *c
		},
	})
	if err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	if a.Tasks == nil {
		a.Store.Close()
		return errors.New("carrier: the task service is not configured")
	}
	if err := r.serve(ctx, a, o.Concurrency); err != nil {
		return err
	}
	return r.call(ctx, http.MethodPost, "/v1/webhooks", map[string]any{
		"name": "bench-tasks", "webhook_url": sinkURL, "event_types": []string{task.EventSolved},
	}, http.StatusCreated, nil)
}

// close stops Carrier (and removes its store), the sink and the simulator.
func (tr *taskRun) close() error {
	err := tr.r.close()
	if tr.sim != nil {
		err = errors.Join(err, tr.sim.Close())
	}
	return err
}

// onSolved is the simulator's OnSolved hook.
func (tr *taskRun) onSolved(id, _ string, at time.Time) {
	tr.mu.Lock()
	tr.solvedAt[id] = at
	tr.mu.Unlock()
}

// create posts Tasks tasks at Rate, open loop, and returns the scheduled start
// and the time of the last 202.
func (tr *taskRun) create(ctx context.Context, sc *TaskScenario) (start, lastAccept time.Time) {
	o := tr.o
	n := int64(o.Tasks)
	interval := float64(time.Second) / float64(o.Rate)
	pctx, cancel := context.WithTimeout(ctx, time.Duration(float64(n)*interval)+o.Timeout)
	defer cancel()
	var (
		next, accepted, errs, maxLag, last atomic.Int64
		first                              firstError
		wg                                 sync.WaitGroup
		mu                                 sync.Mutex
		lat                                = make([]int64, 0, n)
	)
	start = time.Now().Add(5 * time.Millisecond) // let the clients line up
	for range o.Concurrency {
		wg.Go(func() {
			var local []int64
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for pctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= n {
					return
				}
				sched := start.Add(time.Duration(float64(k) * interval))
				if d := time.Until(sched); d > 0 {
					timer.Reset(d)
					select {
					case <-pctx.Done():
						return
					case <-timer.C:
					}
				}
				atomicMax(&maxLag, int64(time.Since(sched)))
				var out struct {
					TaskID string `json:"task_id"`
				}
				err := tr.r.call(pctx, http.MethodPost, "/v1/tasks", map[string]any{
					"method":   "userrecaptcha",
					"params":   map[string]string{"googlekey": "6Le-carrier-bench", "pageurl": "https://example.com/bench"},
					"metadata": map[string]any{"bench_seq": k},
				}, http.StatusAccepted, &out)
				if err == nil && out.TaskID == "" {
					err = errors.New("POST /v1/tasks: no task_id in the answer")
				}
				if err != nil {
					if pctx.Err() == nil {
						errs.Add(1)
						first.set(fmt.Errorf("task %d: %w", k, err))
					}
					continue
				}
				local = append(local, int64(time.Since(sched)))
				atomicMax(&last, int64(time.Since(start)))
				tr.mu.Lock()
				tr.created[out.TaskID] = true
				tr.mu.Unlock()
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	sc.Created, sc.CreateErrors, sc.FirstError = accepted.Load(), errs.Load(), first.msg
	sc.MaxSendLagMS = ms(maxLag.Load())
	sc.AchievedRate = perSec(sc.Created, time.Duration(last.Load()))
	sc.CreateLatency = percentiles(lat)
	return start, start.Add(time.Duration(last.Load()))
}

// waitSolved waits until every created task's task.solved reached the sink,
// or Timeout passes.
func (tr *taskRun) waitSolved(ctx context.Context, sc *TaskScenario, start, lastAccept time.Time) {
	deadline := time.Now().Add(tr.o.Timeout)
	for ctx.Err() == nil && tr.solvedCreated() < sc.Created {
		if time.Now().After(deadline) {
			sc.TimedOut = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	last := tr.sink.lastFirst()
	if !last.IsZero() {
		sc.SolvedElapsedS = last.Sub(start).Seconds()
		sc.DrainS = max(0, last.Sub(lastAccept).Seconds())
	}
}

// solvedCreated counts created tasks whose task.solved reached the sink.
func (tr *taskRun) solvedCreated() int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.sink.mu.Lock()
	defer tr.sink.mu.Unlock()
	var n int64
	for id := range tr.sink.byTask {
		if tr.created[id] {
			n++
		}
	}
	return n
}

// collect fills in the counts, latencies and computed comparisons.
func (tr *taskRun) collect(ctx context.Context, sc *TaskScenario) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.sink
	s.mu.Lock()
	defer s.mu.Unlock()

	// What the sink saw.
	var cbLat, pollLat []int64
	sc.Sink = TaskSink{Requests: s.requests, Other: s.other, Redeliveries: s.requests - int64(len(s.events))}
	for id, a := range s.byTask {
		if !tr.created[id] {
			sc.Sink.UnknownTasks++
			continue
		}
		sc.Solved++
		sc.Sink.Duplicates += int64(a.requests - 1)
		sc.Sink.DuplicateEvents += int64(a.events - 1)
		solved, ok := tr.solvedAt[a.providerID]
		if !ok {
			sc.NoSolveTime++
		}
		lat := max(0, int64(a.at.Sub(solved)))
		switch a.via {
		case store.ViaCallback:
			sc.ViaCallback++
			if ok {
				cbLat = append(cbLat, lat)
			}
		case store.ViaPoll:
			sc.ViaPoll++
			if ok {
				pollLat = append(pollLat, lat)
			}
		}
	}
	sc.Missing = sc.Created - sc.Solved
	sc.CallbackLatency, sc.PollLatency = percentiles(cbLat), percentiles(pollLat)

	// What the simulator saw.
	st := tr.sim.Stats()
	res := st.ResRequests - st.BalanceRequests
	up := TaskUpstream{Submits: st.Submits, ResRequests: res, BalanceRequests: st.BalanceRequests, GetRequests: st.GetRequests,
		PingbacksSent: st.PingbacksSent, PingbacksFailed: st.PingbacksFailed, PingbacksLost: st.PingbacksLost, Requests: st.Submits + res}
	up.PerSolved = ratio(up.Requests, sc.Solved)
	up.PerPolled = ratio(up.ResRequests, sc.ViaPoll)
	sc.Upstream = up

	// What the store says, and the computed strategies from the real delays.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tasks, err := tr.r.app.Store.ListTasks(cctx, store.TaskFilter{ProjectID: app.DefaultProjectID, Limit: len(tr.created) + 100})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	sc.Store.ByStatus = map[string]int64{}
	var comp TaskComputed
	var naiveLost, pollOnly int64
	var withDelay int64
	I, T := tr.o.PollInterval, tr.o.CallbackTimeout
	var submitLat, pollLate []int64
	var firstCreated, lastSubmitted time.Time
	for _, t := range tasks {
		sc.Store.ByStatus[t.Status]++
		if firstCreated.IsZero() || t.CreatedAt.Before(firstCreated) {
			firstCreated = t.CreatedAt
		}
		if t.SubmittedAt != nil {
			submitLat = append(submitLat, max(0, int64(t.SubmittedAt.Sub(t.CreatedAt))))
			if t.SubmittedAt.After(lastSubmitted) {
				lastSubmitted = *t.SubmittedAt
			}
		}
		sc.Store.Polls += int64(t.Polls)
		switch t.Via {
		case store.ViaCallback:
			sc.Store.ViaCallback++
		case store.ViaPoll:
			sc.Store.ViaPoll++
			if t.SubmittedAt != nil && t.CompletedAt != nil {
				pollLate = append(pollLate, max(0, int64(t.CompletedAt.Sub(t.SubmittedAt.Add(T)))))
			}
		}
		if t.ProviderID == "" {
			continue
		}
		simTask, ok := tr.sim.Task(t.ProviderID)
		if !ok || simTask.SolvedAt.IsZero() {
			continue
		}
		d := simTask.SolvedAt.Sub(simTask.SubmittedAt)
		withDelay++
		naive := 1 + max(1, ceilDiv(d, I))
		pollOnly += naive
		if simTask.Pingbacks == 0 {
			comp.LostPingbackTasks++
			naiveLost += naive
			comp.NaiveRequests += naive
			comp.FallbackRequests += 2 + max(0, ceilDiv(d-T, I))
		} else {
			comp.NaiveRequests++
			comp.FallbackRequests++
		}
	}
	comp.NaivePerSolved = ratio(comp.NaiveRequests, sc.Solved)
	comp.FallbackPerSolved = ratio(comp.FallbackRequests, sc.Solved)
	comp.NaivePerLostTask = ratio(naiveLost, comp.LostPingbackTasks)
	comp.PollOnlyPerTask = ratio(pollOnly, withDelay)
	sc.Computed = comp
	sc.Store.SubmitLatency, sc.Store.PollLateness = percentiles(submitLat), percentiles(pollLate)
	sc.Store.SubmitRate = perSec(int64(len(submitLat)), lastSubmitted.Sub(firstCreated))

	dls, err := tr.r.app.Store.ListDeadLetters(cctx, store.DeadLetterFilter{ProjectID: app.DefaultProjectID, Limit: len(tr.created) + 100})
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	sc.Store.DeadLetters = map[string]int64{}
	for _, d := range dls {
		sc.Store.DeadLetters[d.Status]++
	}
	return nil
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or 0.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}

// ceilDiv is ceil(d/i) for i > 0 (0 or less for d <= 0).
func ceilDiv(d, i time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + i - 1) / i)
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(d)*1000) / 1000
}

// taskSink is the webhook endpoint subscribed to task.solved: it answers 200
// at once and records each task's first arrival.
type taskSink struct {
	mu       sync.Mutex
	byTask   map[string]*taskArrival
	events   map[string]bool // event ids received
	requests int64           // task.solved requests
	other    int64
	last     time.Time // latest first arrival of a task
}

type taskArrival struct {
	at         time.Time // first arrival
	providerID string
	via        string
	requests   int // task.solved requests for the task
	events     int // distinct task.solved events for the task
}

// ServeHTTP records a task.solved delivery and answers 200.
func (s *taskSink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	var p struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			TaskID     string `json:"task_id"`
			ProviderID string `json:"provider_id"`
			Via        string `json:"via"`
		} `json:"data"`
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	s.mu.Lock()
	if err != nil || p.Type != task.EventSolved || p.Data.TaskID == "" {
		s.other++
	} else {
		s.requests++
		a := s.byTask[p.Data.TaskID]
		if a == nil {
			a = &taskArrival{at: at, providerID: p.Data.ProviderID, via: p.Data.Via}
			s.byTask[p.Data.TaskID] = a
			if at.After(s.last) {
				s.last = at
			}
		}
		a.requests++
		if !s.events[p.ID] {
			s.events[p.ID] = true
			a.events++
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *taskSink) lastFirst() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// WriteText prints the report for people: one column per scenario.
func (rep *TaskReport) WriteText(w io.Writer) error {
	var b strings.Builder
	m, p, c := rep.Machine, rep.Params, rep.Carrier
	fmt.Fprintf(&b, "Carrier bench --tasks (store: %s)\n", rep.Store)
	fmt.Fprintf(&b, "  machine   %d CPUs (GOMAXPROCS %d), %s/%s, %s", m.NumCPU, m.GOMAXPROCS, m.GOOS, m.GOARCH, m.GoVersion)
	if m.CPUModel != "" {
		fmt.Fprintf(&b, ", %s", m.CPUModel)
	}
	fmt.Fprintf(&b, "\n  params    %d tasks per scenario created at %d/s by %d clients; simulated solve delay uniform in [%s, %s]\n",
		p.Tasks, p.Rate, p.Concurrency, fmtMS(p.MinDelayMS), fmtMS(p.MaxDelayMS))
	fmt.Fprintf(&b, "  carrier   callback timeout %s, poll interval %s (production defaults 120s / 30s), tick %s, submit concurrency %d,\n",
		fmtMS(p.CallbackTimeoutMS), fmtMS(p.PollIntervalMS), fmtMS(c.TickMS), c.SubmitConcurrency)
	fmt.Fprintf(&b, "            poll budget %d/min, up to %d ids per poll request; listening %s after the last solve for late duplicates\n",
		c.PollBudget, c.MaxBatch, fmtMS(p.SettleMS))

	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	row := func(label string, f func(s TaskScenario) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, s := range rep.Scenarios {
			fmt.Fprintf(tw, "%s\t", f(s))
		}
		fmt.Fprintln(tw)
	}
	b.WriteString("\n")
	row("lost pingbacks (simulator)", func(s TaskScenario) string { return fmt.Sprintf("%g%%", s.LostPingbacks*100) })
	row("load average before / after", func(s TaskScenario) string {
		return fmt.Sprintf("%.2f / %.2f", s.LoadBefore, s.LoadAfter)
	})
	row("tasks created (202)", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Created) })
	row("  create errors", func(s TaskScenario) string { return fmt.Sprintf("%d", s.CreateErrors) })
	row("  achieved rate /s", func(s TaskScenario) string { return fmt.Sprintf("%.1f", s.AchievedRate) })
	row("  create p50 / p99 ms", func(s TaskScenario) string {
		return fmt.Sprintf("%.1f / %.1f", s.CreateLatency.P50, s.CreateLatency.P99)
	})
	row("tasks solved (task.solved at sink)", func(s TaskScenario) string {
		return fmt.Sprintf("%d%s", s.Solved, timedOut(s.TimedOut))
	})
	row("  via callback / via poll", func(s TaskScenario) string { return fmt.Sprintf("%d / %d", s.ViaCallback, s.ViaPoll) })
	row("  missing", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Missing) })
	row("  all solved after (s)", func(s TaskScenario) string { return fmt.Sprintf("%.2f", s.SolvedElapsedS) })
	row("sink: task.solved requests", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Sink.Requests) })
	row("  duplicates (events / redeliveries)", func(s TaskScenario) string {
		return fmt.Sprintf("%d (%d / %d)", s.Sink.Duplicates, s.Sink.DuplicateEvents, s.Sink.Redeliveries)
	})
	row("  unknown tasks / other requests", func(s TaskScenario) string {
		return fmt.Sprintf("%d / %d", s.Sink.UnknownTasks, s.Sink.Other)
	})
	row("pingbacks sent / failed / lost", func(s TaskScenario) string {
		return fmt.Sprintf("%d / %d / %d", s.Upstream.PingbacksSent, s.Upstream.PingbacksFailed, s.Upstream.PingbacksLost)
	})
	row("upstream: submits", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Upstream.Submits) })
	row("  res.php requests (polls)", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Upstream.ResRequests) })
	row("  total requests", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Upstream.Requests) })
	row("  per solved task", func(s TaskScenario) string { return fmt.Sprintf("%.3f", s.Upstream.PerSolved) })
	row("  res.php per poll-solved task", func(s TaskScenario) string { return ratioCell(s.Upstream.PerPolled, s.ViaPoll) })
	row("computed, not measured:", func(TaskScenario) string { return "" })
	row("  naive poller, per solved task", func(s TaskScenario) string { return fmt.Sprintf("%.3f", s.Computed.NaivePerSolved) })
	row("    per lost-pingback task", func(s TaskScenario) string {
		return ratioCell(s.Computed.NaivePerLostTask, s.Computed.LostPingbackTasks)
	})
	row("  unbatched fallback, per solved task", func(s TaskScenario) string {
		return fmt.Sprintf("%.3f", s.Computed.FallbackPerSolved)
	})
	row("  polling only, per task", func(s TaskScenario) string { return fmt.Sprintf("%.3f", s.Computed.PollOnlyPerTask) })
	row("solve -> sink, via callback (ms)", func(s TaskScenario) string { return latencyCell(s.CallbackLatency) })
	row("solve -> sink, via poll (ms)", func(s TaskScenario) string { return latencyCell(s.PollLatency) })
	row("store: solved / other statuses", func(s TaskScenario) string {
		var other int64
		for st, n := range s.Store.ByStatus {
			if st != store.TaskSolved {
				other += n
			}
		}
		return fmt.Sprintf("%d / %d", s.Store.ByStatus[store.TaskSolved], other)
	})
	row("  via callback / via poll", func(s TaskScenario) string {
		return fmt.Sprintf("%d / %d", s.Store.ViaCallback, s.Store.ViaPoll)
	})
	row("  create -> submitted p50 / p99 ms", func(s TaskScenario) string {
		return fmt.Sprintf("%.0f / %.0f", s.Store.SubmitLatency.P50, s.Store.SubmitLatency.P99)
	})
	row("  submissions /s (first create to last)", func(s TaskScenario) string { return fmt.Sprintf("%.1f", s.Store.SubmitRate) })
	row("  poller lateness p50 / p99 / max ms", func(s TaskScenario) string {
		if s.Store.PollLateness.N == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f / %.0f / %.0f", s.Store.PollLateness.P50, s.Store.PollLateness.P99, s.Store.PollLateness.Max)
	})
	row("  not-ready polls", func(s TaskScenario) string { return fmt.Sprintf("%d", s.Store.Polls) })
	row("  dead letters redriven / pending", func(s TaskScenario) string {
		return fmt.Sprintf("%d / %d", s.Store.DeadLetters[store.DeadLetterRedriven], s.Store.DeadLetters[store.DeadLetterPending])
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rep.Scenarios {
		if s.FirstError != "" {
			fmt.Fprintf(&b, "\nfirst create error (lost %g%%): %s\n", s.LostPingbacks*100, s.FirstError)
		}
	}
	iv, T := fmtMS(p.PollIntervalMS), fmtMS(p.CallbackTimeoutMS)
	naive := strconv.Itoa(naiveFor(p.MinDelayMS, p.PollIntervalMS))
	if hi := naiveFor(p.MaxDelayMS, p.PollIntervalMS); strconv.Itoa(hi) != naive {
		naive += "-" + strconv.Itoa(hi)
	}
	fmt.Fprintf(&b, `
Latencies are p50 / p90 / p99 / max in ms, from the simulator's solve to the sink receiving the task's
task.solved. Poll-solved latency is dominated by the callback timeout by design: a task is polled only once
its pingback is %s overdue, counted from its submission, so it waits about %s minus its solve delay, plus
up to one tick; "poller lateness" is the poller's delay beyond that due time.

Upstream requests are what the simulator received (in.php + res.php). The computed rows apply other polling
strategies to the same tasks' solve delays d (interval I = %s, callback timeout T = %s):
  naive poller        each lost-pingback task polled on its own every I from submission until solved,
                      1 + ceil(d/I) requests (the source document's poller); other tasks 1 submit
  unbatched fallback  the source's callback + fallback pattern, each overdue task polled on its own at T,
                      T+I, ...: 2 + ceil((d-T)/I) requests; other tasks 1 submit
  polling only        no pingbacks at all: 1 + ceil(d/I) for every task
The source's "2 calls per task instead of 10+ polling requests" assumes real solves of tens of seconds polled
every few seconds; here d/I is only %.2f-%.2f, so a naive poller needs %s requests per task.
`, T, T, iv, T, p.MinDelayMS/p.PollIntervalMS, p.MaxDelayMS/p.PollIntervalMS, naive)
	_, err := io.WriteString(w, b.String())
	return err
}

// naiveFor is 1 + ceil(d/interval) (at least one poll) for d and interval in ms.
func naiveFor(d, interval float64) int { return 1 + max(1, int(math.Ceil(d/interval))) }

func ratioCell(v float64, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func latencyCell(p Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f (n %d)", p.P50, p.P90, p.P99, p.Max, p.N)
}

// fmtMS renders milliseconds as a short duration: 150ms, 4s, 2.5s.
func fmtMS(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "s"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "ms"
}
