package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// The phases that publish from a separate load-generator process, so that
// the publishers' CPU is not Carrier's and publishing competes with delivery
// as it does in production: Carrier and the sink run in this process, the
// clients in another.
const (
	// PhasePaced publishes at a low fixed rate (100/s): the cost per event
	// when every publish, claim and completion is a batch of one.
	PhasePaced = "paced"
	// PhaseCombined publishes as fast as the clients can while delivery runs.
	PhaseCombined = "combined"
	// PhaseCombinedPaced publishes at a fixed high rate (2,000/s) while
	// delivery runs, for publish -> delivered latency under load.
	PhaseCombinedPaced = "combined-paced"
)

// Sink phase numbers of the external phases (1 and 3 are the in-process ones).
const (
	sinkPaced         = 4
	sinkCombined      = 5
	sinkCombinedPaced = 6
	sinkPhases        = 7
)

// LoadGenEnv is set (to 1) in the load generator's environment, so that a
// test binary started as the load generator can tell (see TestMain).
const LoadGenEnv = "CARRIER_BENCH_LOADGEN"

// loadSpec is what the benchmark tells the load generator, as JSON on its stdin.
type loadSpec struct {
	URL         string `json:"url"`
	APIKey      string `json:"api_key"`
	Phase       int    `json:"phase"`
	Rate        int    `json:"rate"` // 0: closed loop, as fast as the clients go
	Concurrency int    `json:"concurrency"`
	DurationNS  int64  `json:"duration_ns"`
	MaxEvents   int64  `json:"max_events"`
	// BaseUnixNS is the benchmark's clock origin: both processes stamp times
	// as wall-clock nanoseconds since it, so latencies cross processes.
	BaseUnixNS int64 `json:"base_unix_ns"`
}

// loadResult is what the load generator saw, as JSON on its stdout.
type loadResult struct {
	Accepted     int64       `json:"accepted"`
	Deliveries   int64       `json:"deliveries"`
	Errors       int64       `json:"errors"`
	FirstError   string      `json:"first_error,omitempty"`
	StartNS      int64       `json:"start_ns"`
	EndNS        int64       `json:"end_ns"`
	LateSends    int64       `json:"late_sends"`
	MaxSendLagMS float64     `json:"max_send_lag_ms"`
	Accept       Percentiles `json:"accept_latency"`
	CPUS         float64     `json:"cpu_s"`
}

// LoadGen is the load-generator process (`carrier bench --loadgen`): it reads
// a loadSpec from in, publishes as it says to a Carrier on loopback, and
// writes a loadResult to out. Publishing is bounded by the spec's duration
// and event count.
func LoadGen(ctx context.Context, in io.Reader, out io.Writer) error {
	var spec loadSpec
	if err := json.NewDecoder(io.LimitReader(in, 1<<20)).Decode(&spec); err != nil {
		return fmt.Errorf("loadgen: read spec: %w", err)
	}
	switch {
	case spec.URL == "" || spec.Concurrency < 1 || spec.DurationNS <= 0 || spec.MaxEvents < 1 || spec.Rate < 0:
		return fmt.Errorf("loadgen: incomplete spec %+v", spec)
	case spec.DurationNS > int64(time.Hour) || spec.MaxEvents > maxSlots:
		return errors.New("loadgen: spec beyond the limits (an hour, 10,000,000 events)")
	}
	r := &run{base: time.Unix(0, spec.BaseUnixNS), baseURL: spec.URL, apiKey: spec.APIKey, client: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns: spec.Concurrency + 16, MaxIdleConnsPerHost: spec.Concurrency + 16,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}}
	defer r.client.CloseIdleConnections()
	cpu0 := processCPU()
	res := r.publishLoop(ctx, spec)
	res.CPUS = (processCPU() - cpu0).Seconds()
	return json.NewEncoder(out).Encode(res)
}

// publishLoop publishes for the spec: open loop at Rate (each event stamped
// with its scheduled time, so a stall shows as latency), or closed loop
// (stamped with its send time) when Rate is 0.
func (r *run) publishLoop(ctx context.Context, spec loadSpec) loadResult {
	dur := time.Duration(spec.DurationNS)
	total := spec.MaxEvents
	interval := 0.0
	if spec.Rate > 0 {
		total = min(total, max(1, int64(float64(spec.Rate)*dur.Seconds())))
		interval = float64(time.Second) / float64(spec.Rate)
	}
	// Closed loop stops at the duration; open loop has sent everything by
	// then and gets a minute more for answers.
	pctx, cancel := context.WithTimeout(ctx, dur+time.Minute)
	defer cancel()
	var (
		next, accepted, deliveries, errs, late, maxLag, lastAccept atomic.Int64
		first                                                      firstError
		wg                                                         sync.WaitGroup
		mu                                                         sync.Mutex
		acceptLat                                                  = make([]int64, 0, min(total, 1_000_000))
	)
	start := r.now() + int64(5*time.Millisecond) // let the clients line up
	stop := start + int64(dur)
	for range spec.Concurrency {
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
				var sched int64
				if interval > 0 {
					sched = start + int64(float64(k)*interval)
				} else if sched = r.now(); sched >= stop {
					return
				}
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
				buf = appendEvent(buf[:0], spec.Phase, k, sched)
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
	return loadResult{
		Accepted: accepted.Load(), Deliveries: deliveries.Load(), Errors: errs.Load(), FirstError: first.msg,
		StartNS: start, EndNS: max(start, lastAccept.Load()), LateSends: late.Load(), MaxSendLagMS: ms(maxLag.Load()),
		Accept: percentiles(acceptLat),
	}
}

// External is the result of a phase published by the load generator.
type External struct {
	Rate        int     `json:"rate"` // 0: closed loop, as fast as the clients go
	Concurrency int     `json:"concurrency"`
	Webhooks    int     `json:"webhooks"` // deliveries per event
	DurationS   float64 `json:"duration_s"`
	Accepted    int64   `json:"accepted"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Expected    int64   `json:"expected_deliveries"`
	Delivered   int64   `json:"delivered"`
	Duplicates  int64   `json:"duplicates"`
	TimedOut    bool    `json:"timed_out"`
	// PublishedPerSec is accepted events per second of publishing.
	PublishedPerSec float64 `json:"published_per_s"`
	// DeliveredPerSec is deliveries that reached the sink while publishing
	// went on, per second of publishing: delivery concurrent with ingest
	// (Webhooks deliveries per event).
	DeliveredPerSec float64 `json:"delivered_per_s"`
	// DrainedS is the time from the first publish to the last delivery.
	DrainedS     float64 `json:"drained_s"`
	LateSends    int64   `json:"late_sends"`
	MaxSendLagMS float64 `json:"max_send_lag_ms"`
	// Delivery is publish (scheduled time, or send time in closed loop) to
	// arrival at the sink.
	Delivery Percentiles `json:"delivery_latency"`
	Accept   Percentiles `json:"accept_latency"`
	// CPU counts from the load generator's start until the store records
	// every delivery of the phase, per 1,000 delivered.
	CPU CPU `json:"cpu"`
}

// Combined is the lower of the published and the concurrently delivered
// rates, in events per second.
func (e *External) Combined() float64 {
	return min(e.PublishedPerSec, e.DeliveredPerSec/float64(max(1, e.Webhooks)))
}

// external runs one phase from a separate load-generator process.
func (r *run) external(ctx context.Context, sinkPhase, rate int, dur time.Duration) (*External, error) {
	res := &External{Rate: rate, Concurrency: r.o.Concurrency, Webhooks: r.o.Webhooks, DurationS: dur.Seconds()}
	maxEvents := int64(max(1, float64(rate)*dur.Seconds()))
	if rate == 0 {
		// Closed loop: far more than any 2-core machine publishes.
		maxEvents = int64(max(1, 50_000*dur.Seconds()))
	}
	maxEvents = min(maxEvents, maxSlots/int64(r.o.Webhooks))
	t := newTracker(int(maxEvents), r.o.Webhooks, true)
	t.arrivals = make([]atomic.Int64, len(t.slots))
	r.sink.phases[sinkPhase].Store(t)

	spec, err := json.Marshal(loadSpec{
		URL: r.baseURL, APIKey: r.apiKey, Phase: sinkPhase, Rate: rate, Concurrency: r.o.Concurrency,
		DurationNS: int64(dur), MaxEvents: maxEvents, BaseUnixNS: r.base.UnixNano(),
	})
	if err != nil {
		return res, err
	}
	cctx, cancel := context.WithTimeout(ctx, dur+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, r.o.LoadGen[0], r.o.LoadGen[1:]...)
	cmd.Env = append(os.Environ(), LoadGenEnv+"=1")
	cmd.Stdin = bytes.NewReader(spec)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = r.o.Log
	mark := r.cpuMark(ctx)
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("load generator %s: %w", r.o.LoadGen[0], err)
	}
	var lr loadResult
	if err := json.Unmarshal(stdout.Bytes(), &lr); err != nil {
		return res, fmt.Errorf("load generator: read result: %w", err)
	}
	res.Accepted, res.Errors, res.FirstError = lr.Accepted, lr.Errors, lr.FirstError
	res.Expected, res.LateSends, res.MaxSendLagMS, res.Accept = lr.Deliveries, lr.LateSends, lr.MaxSendLagMS, lr.Accept

	// Wait (bounded) for the sink, then for the store to record them all.
	deadline := time.Now().Add(r.o.Timeout)
	for t.count.Load() < res.Expected && ctx.Err() == nil {
		if time.Now().After(deadline) {
			res.TimedOut = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.storeWant += res.Expected
	if err := r.waitStore(ctx, r.storeWant); err != nil {
		return res, err
	}
	res.Delivered, res.Duplicates = t.count.Load(), t.dups.Load()
	res.CPU = r.cpuSince(ctx, mark, res.Delivered)
	res.CPU.LoadGenS = lr.CPUS

	window := time.Duration(lr.EndNS - lr.StartNS)
	res.PublishedPerSec = perSec(res.Accepted, window)
	res.DeliveredPerSec = perSec(t.arrivedBy(lr.EndNS), window)
	res.DrainedS = time.Duration(max(0, t.last.Load()-lr.StartNS)).Seconds()
	res.Delivery = percentiles(t.values())
	return res, nil
}
