package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets this test binary serve as the load generator: the combined
// phases start os.Executable() with LoadGenEnv set, which here is the test
// binary itself.
func TestMain(m *testing.M) {
	if os.Getenv(LoadGenEnv) == "1" {
		if err := LoadGen(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// TestRunSmall runs the whole benchmark with tiny parameters on SQLite and
// checks that the report adds up.
func TestRunSmall(t *testing.T) { testRun(t, false) }

// TestRunHeld does the same with the deliveries of phase 1 held at the sink,
// the pause used when inactive webhooks get no deliveries.
func TestRunHeld(t *testing.T) { testRun(t, true) }

func testRun(t *testing.T, held bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var phases []string
	rep, err := Run(ctx, Options{
		Store: "sqlite", Events: 200, Concurrency: 8, Webhooks: 2, Rate: 200, Duration: time.Second,
		Timeout: 30 * time.Second, Log: testLog{t}, forceHeld: held,
		CeilingDuration: 200 * time.Millisecond, PacedRate: 50, PacedDuration: 400 * time.Millisecond,
		CombinedRate: 200, CombinedDuration: 400 * time.Millisecond,
		PhaseHook: func(phase string, begin bool) {
			if begin {
				phases = append(phases, phase)
			}
		},
	})
	if rep != nil {
		var text bytes.Buffer
		if err := rep.WriteText(&text, DefaultTargets); err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + text.String())
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got := strings.Join(phases, ","); got != "ceiling,ingest,delivery,latency,paced,combined,combined-paced" {
		t.Errorf("phases = %s", got)
	}
	if held && rep.Carrier.PauseMode != PauseHeld {
		t.Errorf("pause mode %q, want %q", rep.Carrier.PauseMode, PauseHeld)
	}
	if rep.Store != "sqlite" || rep.Machine.NumCPU < 1 || rep.Carrier.PauseMode == "" {
		t.Errorf("header: store %q, cpus %d, pause mode %q", rep.Store, rep.Machine.NumCPU, rep.Carrier.PauseMode)
	}
	in := rep.Ingest
	if in.Accepted != 200 || in.Errors != 0 || in.Deliveries != 400 || in.EventsPerSec <= 0 || in.TimedOut {
		t.Errorf("ingest: %+v", in)
	}
	d := rep.Delivery
	if d.Expected != 400 || d.SinkReceived != 400 || d.StoreDelivered < d.StoreTarget || d.TimedOut ||
		d.DeliveriesPerSec <= 0 || d.SinkPerSec <= 0 {
		t.Errorf("delivery: %+v", d)
	}
	l := rep.Latency
	if l.Scheduled != 200 || l.Accepted != 200 || l.Errors != 0 || l.Expected != 400 || l.Delivered != 400 || l.TimedOut || l.AchievedPer <= 0 {
		t.Errorf("latency: %+v", l)
	}
	if p := l.Delivery; p.N != 400 || p.P50 <= 0 || p.P50 > p.P90 || p.P90 > p.P99 || p.P99 > p.Max {
		t.Errorf("delivery latency percentiles: %+v", p)
	}
	if p := l.Accept; p.N != 200 || p.P50 > p.P99 {
		t.Errorf("accept latency percentiles: %+v", p)
	}
	if c := rep.Ceiling; c == nil || c.Requests == 0 || c.PerSec <= 0 || c.Errors != 0 || c.CPU.ProcessS <= 0 {
		t.Errorf("ceiling: %+v", c)
	}
	if in.CPU.ProcessS <= 0 || in.CPU.PerThousand <= 0 || in.CPU.Events != 200 || l.CPU.PerThousand <= 0 {
		t.Errorf("cpu: ingest %+v, latency %+v", in.CPU, l.CPU)
	}
	external := int64(0)
	for name, e := range map[string]*External{"paced": rep.Paced, "combined": rep.Combined, "combined paced": rep.CombinedPaced} {
		if e == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		if e.Accepted == 0 || e.Errors != 0 || e.Expected != 2*e.Accepted || e.Delivered != e.Expected || e.TimedOut ||
			e.PublishedPerSec <= 0 || e.Delivery.N != int(e.Delivered) || e.CPU.ProcessS <= 0 || e.CPU.PerThousand <= 0 || e.CPU.LoadGenS <= 0 {
			t.Errorf("%s: %+v", name, e)
		}
		external += e.Delivered
	}
	if e := rep.Paced; e != nil && e.Accepted != 20 {
		t.Errorf("paced: %d accepted, want 50/s for 0.4s = 20", e.Accepted)
	}
	// Every event of phases 1 and 3, the external phases and the probe went
	// out to both webhooks, once.
	want := int64(400+400+d.StoreTarget-d.Expected) + external
	if got := rep.FinalStates["delivered"]; got != want {
		t.Errorf("final states %v: want %d delivered", rep.FinalStates, want)
	}
	if n := len(rep.FinalStates); n != 1 {
		t.Errorf("final states %v: want only delivered", rep.FinalStates)
	}
}

func TestPercentiles(t *testing.T) {
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64(100-i) * int64(time.Millisecond)
	}
	p := percentiles(ns)
	if p.N != 100 || p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 || p.Mean != 50.5 {
		t.Errorf("percentiles = %+v", p)
	}
	if p := percentiles(nil); p.N != 0 {
		t.Errorf("empty percentiles = %+v", p)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Store: "mysql"},
		{Store: "postgres"},
		{Store: "postgres", DatabaseURL: "host=localhost"},
		{Events: -1},
		{Events: 20_000_000, Webhooks: 1},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) succeeded", o)
		}
	}
}
