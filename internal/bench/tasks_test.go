package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunTasksSmall runs the task benchmark with a hundred tasks and
// sub-second delays on SQLite: every task is solved once, without loss one
// upstream request per task, with 30% lost pingbacks the batched poller adds
// far less than the naive poller would.
//
// The solve delays and the callback timeout are generous so that the figures
// hold under the race detector on a busy two-core machine: a pingback that
// Carrier processes later than the callback timeout is (rightly) polled, and a
// pingback that beats the recording of the submission takes the dead-letter
// path, where a race can leave it pending and the task to the poller (a pending
// dead letter in the failure message points there); either would make the
// no-loss figure exceed 1.0.
func TestRunTasksSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := RunTasks(ctx, TaskOptions{
		Store: "sqlite", Tasks: 100, Rate: 100, Concurrency: 4, Lost: []float64{0, 0.3},
		MinDelay: 500 * time.Millisecond, MaxDelay: 700 * time.Millisecond,
		CallbackTimeout: 3 * time.Second, PollInterval: 500 * time.Millisecond, Tick: 50 * time.Millisecond,
		Timeout: 20 * time.Second, Settle: 300 * time.Millisecond, Log: testLog{t},
	})
	if rep != nil {
		var text bytes.Buffer
		if err := rep.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + text.String())
		if _, err := json.Marshal(rep); err != nil {
			t.Errorf("report does not marshal: %v", err)
		}
	}
	if err != nil {
		t.Fatalf("RunTasks: %v", err)
	}
	if rep.Store != "sqlite" || len(rep.Scenarios) != 2 || rep.Carrier.TickMS != 50 || rep.Carrier.MaxBatch < 1 {
		t.Fatalf("report header: store %q, %d scenarios, carrier %+v", rep.Store, len(rep.Scenarios), rep.Carrier)
	}
	for _, s := range rep.Scenarios {
		if s.Created != 100 || s.CreateErrors != 0 || s.Solved != 100 || s.Missing != 0 || s.TimedOut {
			t.Errorf("lost %g: created %d (%d errors: %s), solved %d, missing %d, timed out %v",
				s.LostPingbacks, s.Created, s.CreateErrors, s.FirstError, s.Solved, s.Missing, s.TimedOut)
		}
		if s.ViaCallback+s.ViaPoll != s.Solved || s.Store.ByStatus["solved"] != 100 ||
			s.Store.ViaCallback != s.ViaCallback || s.Store.ViaPoll != s.ViaPoll {
			t.Errorf("lost %g: via callback %d + poll %d, store %+v", s.LostPingbacks, s.ViaCallback, s.ViaPoll, s.Store)
		}
		if k := s.Sink; k.Requests != 100 || k.Duplicates != 0 || k.DuplicateEvents != 0 || k.Redeliveries != 0 || k.UnknownTasks != 0 {
			t.Errorf("lost %g: sink %+v, want exactly one task.solved per task", s.LostPingbacks, k)
		}
		if s.Upstream.Submits != 100 || s.Upstream.Requests != s.Upstream.Submits+s.Upstream.ResRequests || s.Upstream.PingbacksFailed != 0 {
			t.Errorf("lost %g: upstream %+v", s.LostPingbacks, s.Upstream)
		}
		if s.NoSolveTime != 0 || s.CallbackLatency.N+s.PollLatency.N != 100 {
			t.Errorf("lost %g: latencies for %d + %d tasks, %d without solve time", s.LostPingbacks,
				s.CallbackLatency.N, s.PollLatency.N, s.NoSolveTime)
		}
		if p := s.CallbackLatency; p.N > 0 && (p.P50 > p.P90 || p.P90 > p.P99 || p.P99 > p.Max) {
			t.Errorf("lost %g: callback latency %+v", s.LostPingbacks, p)
		}
	}
	none, lossy := rep.Scenarios[0], rep.Scenarios[1]
	if none.Upstream.PerSolved != 1.0 || none.ViaPoll != 0 || none.Upstream.PingbacksLost != 0 || none.Computed.NaivePerSolved != 1.0 {
		t.Errorf("no loss: %.3f upstream requests per solved task (via poll %d), want 1.000; dead letters %v; upstream %+v, computed %+v",
			none.Upstream.PerSolved, none.ViaPoll, none.Store.DeadLetters, none.Upstream, none.Computed)
	}
	if lossy.Upstream.PerSolved >= 1.5 || lossy.Upstream.PerSolved <= 1.0 {
		t.Errorf("30%% lost: %.3f upstream requests per solved task, want between 1 and 1.5", lossy.Upstream.PerSolved)
	}
	if lossy.Upstream.PingbacksLost == 0 || lossy.ViaPoll < lossy.Upstream.PingbacksLost || lossy.Computed.LostPingbackTasks != lossy.Upstream.PingbacksLost {
		t.Errorf("30%% lost: %d solved by poll, %d pingbacks lost, %d computed lost", lossy.ViaPoll,
			lossy.Upstream.PingbacksLost, lossy.Computed.LostPingbackTasks)
	}
	if lossy.PollLatency.N != int(lossy.ViaPoll) || lossy.Computed.NaivePerSolved <= lossy.Upstream.PerSolved {
		t.Errorf("30%% lost: poll latency %+v, naive %.3f vs measured %.3f per solved task", lossy.PollLatency,
			lossy.Computed.NaivePerSolved, lossy.Upstream.PerSolved)
	}
}

func TestTaskOptionsDefaults(t *testing.T) {
	var o TaskOptions
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if o.Tasks != DefaultTaskCount || o.Rate != DefaultTaskRate || len(o.Lost) != 2 || o.Lost[1] != 0.3 ||
		o.CallbackTimeout != DefaultTaskCallbackTimeout || o.PollInterval != DefaultTaskPollInterval ||
		o.MinDelay != DefaultTaskMinDelay || o.MaxDelay != DefaultTaskMaxDelay {
		t.Errorf("defaults: %+v", o)
	}
	for _, bad := range []TaskOptions{
		{Store: "mysql"}, {Store: "postgres"}, {Lost: []float64{1.5}}, {Lost: []float64{}},
		{MinDelay: 2 * time.Second, MaxDelay: time.Second}, {Tasks: -1},
	} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
