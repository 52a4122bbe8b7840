package bench

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

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
	// Ceiling is plain net/http on loopback, measured before Carrier starts.
	Ceiling *Ceiling `json:"loopback_ceiling,omitempty"`
	// Paced, Combined and CombinedPaced are the phases published by the
	// separate load generator (PhasePaced, PhaseCombined, PhaseCombinedPaced).
	Paced         *External `json:"paced,omitempty"`
	Combined      *External `json:"combined,omitempty"`
	CombinedPaced *External `json:"combined_paced,omitempty"`
	// DatabaseCPU says which PostgreSQL processes the CPU figures count.
	DatabaseCPU string `json:"database_cpu,omitempty"`
	// PostgresSettings are the server's settings the run had.
	PostgresSettings []Setting `json:"postgres_settings,omitempty"`
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
	// Preload is how many rows (events, deliveries and attempts, a third
	// each) were stored before Carrier started.
	Preload     int     `json:"preload,omitempty"`
	PreloadSecs float64 `json:"preload_secs,omitempty"`
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
	// CPU is per 1,000 accepted events (the publishers run in this process).
	CPU CPU `json:"cpu"`
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
	// CPU is per 1,000 deliveries recorded.
	CPU CPU `json:"cpu"`
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
	// CPU is per 1,000 delivered, until the store recorded them all (the
	// publishers run in this process).
	CPU CPU `json:"cpu"`
}

// Percentiles summarise latencies in milliseconds.
type Percentiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P95  float64 `json:"p95_ms"`
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
	return Percentiles{N: len(ns), Mean: sum / float64(len(ns)) / 1e6, P50: rank(0.50), P90: rank(0.90), P95: rank(0.95), P99: rank(0.99), Max: ms(ns[len(ns)-1])}
}

func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
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
	// CombinedPerSec is events/s published and delivered at once (the lower
	// of the two) in the combined phase.
	CombinedPerSec float64
	// CombinedP99MS is publish -> delivered p99 in the combined paced phase.
	CombinedP99MS float64
	// PacedCPUPerThousand is CPU-s per 1,000 events in the paced phase,
	// Carrier's process plus its database.
	PacedCPUPerThousand float64
}

// DefaultTargets are Carrier's goals on SQLite: 10,000 events/s accepted,
// 5,000 deliveries/s end to end, p99 under 50 ms at 1,000 events/s; 8,000
// events/s published and delivered at once, p99 under 25 ms at 2,000/s, and
// at most 1.0 CPU-s per 1,000 events at 100/s.
var DefaultTargets = Targets{EventsPerSec: 10000, DeliveriesPerSec: 5000, P99MS: 50,
	CombinedPerSec: 8000, CombinedP99MS: 25, PacedCPUPerThousand: 1.0}

// PostgresTargets are the goals on PostgreSQL: within 2x of SQLite's, and
// p99 under 50 ms at 1,000/s after the 20,000-event backlog (phase 3).
var PostgresTargets = Targets{EventsPerSec: 5000, DeliveriesPerSec: 2500, P99MS: 50,
	CombinedPerSec: 4000, CombinedP99MS: 50, PacedCPUPerThousand: 2.0}

// TargetsFor returns the targets of a store engine.
func TargetsFor(store string) Targets {
	if store == "postgres" {
		return PostgresTargets
	}
	return DefaultTargets
}

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
	if p.Preload > 0 {
		fmt.Fprintf(&b, "  preload   %d rows stored before the start (events, deliveries, attempts), loaded in %.0f s\n", p.Preload, p.PreloadSecs)
	}
	fmt.Fprintf(&b, "  carrier   lane concurrency %d, max in flight %d, claim batch %d, poll %gms; phase 1 pause: %s\n",
		c.LaneConcurrency, c.MaxInFlight, c.ClaimBatch, c.PollIntervalMS, c.PauseMode)

	if len(rep.PostgresSettings) > 0 {
		kv := make([]string, 0, len(rep.PostgresSettings))
		for _, st := range rep.PostgresSettings {
			kv = append(kv, st.Name+"="+st.Value)
		}
		fmt.Fprintf(&b, "  postgres  %s\n", strings.Join(kv, ", "))
	}
	if rep.DatabaseCPU != "" {
		fmt.Fprintf(&b, "  database CPU counted: %s\n", rep.DatabaseCPU)
	}
	fmt.Fprintf(&b, "  process CPU counted: this process (Carrier and the sink; in phases 1-3 also the publishers)\n")

	ceil := rep.Ceiling
	if ceil != nil {
		fmt.Fprintf(&b, "\nloopback ceiling  plain net/http, %d keep-alive clients, %d-byte POSTs, %.1fs\n", ceil.Concurrency, ceil.BodyBytes, ceil.ElapsedS)
		fmt.Fprintf(&b, "  %d requests = %.0f requests/s (%d errors), %.3f CPU-s per 1,000 requests\n", ceil.Requests, ceil.PerSec, ceil.Errors, ceil.CPU.PerThousand)
		if ceil.FirstError != "" {
			fmt.Fprintf(&b, "  first error: %s\n", ceil.FirstError)
		}
	}

	in := rep.Ingest
	fmt.Fprintf(&b, "\nphase 1  ingest (durable, %d clients)\n", p.Concurrency)
	fmt.Fprintf(&b, "  %d events accepted in %.3fs = %.0f events/s%s (%d deliveries created, %d errors%s)\n",
		in.Accepted, in.ElapsedS, in.EventsPerSec, ofCeiling(in.EventsPerSec, ceil), in.Deliveries, in.Errors, timedOut(in.TimedOut))
	fmt.Fprintf(&b, "  request latency  %s\n", in.Accept)
	fmt.Fprintf(&b, "  %s\n", in.CPU)
	if in.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", in.FirstError)
	}

	d := rep.Delivery
	fmt.Fprintf(&b, "\nphase 2  delivery end to end\n")
	fmt.Fprintf(&b, "  sink received %d/%d in %.3fs = %.0f/s (%d duplicates)\n", d.SinkReceived, d.Expected, d.SinkElapsedS, d.SinkPerSec, d.SinkDuplicates)
	fmt.Fprintf(&b, "  store recorded %d/%d delivered in %.3fs = %.0f deliveries/s%s%s\n", d.StoreDelivered, d.StoreTarget, d.StoreElapsedS, d.DeliveriesPerSec, ofCeiling(d.DeliveriesPerSec, ceil), timedOut(d.TimedOut))
	fmt.Fprintf(&b, "  %s\n", d.CPU)

	l := rep.Latency
	fmt.Fprintf(&b, "\nphase 3  latency at %d events/s for %gs (open loop, from scheduled send time)\n", l.TargetRate, p.DurationS)
	fmt.Fprintf(&b, "  %d/%d events accepted, achieved %.1f events/s, %d errors, %d sends >1ms late (max lag %.3fms)\n",
		l.Accepted, l.Scheduled, l.AchievedPer, l.Errors, l.LateSends, l.MaxSendLagMS)
	fmt.Fprintf(&b, "  publish -> delivered  %s  (%d/%d delivered, %d duplicates%s)\n", l.Delivery, l.Delivered, l.Expected, l.Duplicates, timedOut(l.TimedOut))
	fmt.Fprintf(&b, "  publish -> 202        %s\n", l.Accept)
	fmt.Fprintf(&b, "  %s\n", l.CPU)
	if l.FirstError != "" {
		fmt.Fprintf(&b, "  first error: %s\n", l.FirstError)
	}
	writeExternal(&b, "paced", "from the load generator", rep.Paced, ceil)
	writeExternal(&b, "combined", "publish and delivery at once, from the load generator", rep.Combined, ceil)
	writeExternal(&b, "combined paced", "publish and delivery at once, from the load generator", rep.CombinedPaced, ceil)
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
	if c := rep.Combined; c != nil && t.CombinedPerSec > 0 {
		fmt.Fprintf(&b, "  combined >= %.0f events/s      %s (%.0f: %.0f published, %.0f deliveries/s at once)\n", t.CombinedPerSec,
			pass(c.Combined() >= t.CombinedPerSec && c.Errors == 0 && !c.TimedOut), c.Combined(), c.PublishedPerSec, c.DeliveredPerSec)
	}
	if c := rep.CombinedPaced; c != nil && t.CombinedP99MS > 0 {
		fmt.Fprintf(&b, "  combined p99 < %.0f ms          %s (%.3f ms at %d/s)\n", t.CombinedP99MS,
			pass(c.Delivery.N > 0 && c.Delivery.P99 < t.CombinedP99MS && !c.TimedOut && c.Errors == 0), c.Delivery.P99, c.Rate)
	}
	if c := rep.Paced; c != nil && t.PacedCPUPerThousand > 0 {
		fmt.Fprintf(&b, "  paced CPU <= %.1f s/1,000 events %s (%.3f at %d/s)\n", t.PacedCPUPerThousand,
			pass(c.Delivered > 0 && c.CPU.PerThousand <= t.PacedCPUPerThousand && !c.TimedOut), c.CPU.PerThousand, c.Rate)
	}
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

// writeExternal prints a phase published by the load generator.
func writeExternal(b *strings.Builder, name, what string, e *External, ceil *Ceiling) {
	if e == nil {
		return
	}
	rate := "as fast as the clients go"
	if e.Rate > 0 {
		rate = fmt.Sprintf("at %d events/s", e.Rate)
	}
	fmt.Fprintf(b, "\n%s  %s, %d clients, %s for %gs\n", name, what, e.Concurrency, rate, e.DurationS)
	fmt.Fprintf(b, "  published %d = %.0f events/s%s, %d errors", e.Accepted, e.PublishedPerSec, ofCeiling(e.PublishedPerSec, ceil), e.Errors)
	if e.Rate > 0 {
		fmt.Fprintf(b, ", %d sends >1ms late (max lag %.3fms)", e.LateSends, e.MaxSendLagMS)
	}
	fmt.Fprintf(b, "\n  delivered while publishing: %.0f deliveries/s%s; all %d/%d delivered %.3fs after the first publish (%d duplicates%s)\n",
		e.DeliveredPerSec, ofCeiling(e.DeliveredPerSec, ceil), e.Delivered, e.Expected, e.DrainedS, e.Duplicates, timedOut(e.TimedOut))
	fmt.Fprintf(b, "  publish -> delivered  %s\n", e.Delivery)
	fmt.Fprintf(b, "  publish -> 202        %s\n", e.Accept)
	fmt.Fprintf(b, "  %s\n", e.CPU)
	if e.FirstError != "" {
		fmt.Fprintf(b, "  first error: %s\n", e.FirstError)
	}
}
