package health

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is the time of the n-th attempt of a test.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// fails returns n retrying outcomes, the first made at at(from).
func fails(from, n int) []Outcome {
	out := make([]Outcome, n)
	for i := range out {
		out[i] = Outcome{DeliveryID: "d", Result: Retrying, At: at(from + i)}
	}
	return out
}

func ok(n int) Outcome { return Outcome{DeliveryID: "d", Result: Delivered, At: at(n)} }

func ptr[T any](v T) *T { return &v }

func concat(parts ...[]Outcome) []Outcome {
	var out []Outcome
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	active := Counters{Active: true}
	failing := func(n int) Counters {
		return Counters{Active: true, ConsecutiveFailures: n, RunFailures: n, Degraded: n >= 5, FailingSince: at(0)}
	}
	gone := Outcome{DeliveryID: "g", Result: Failed, Disable: true, DisableReason: "endpoint returned 410 Gone", At: at(1)}

	tests := []struct {
		name     string
		policy   *Policy // nil: DefaultPolicy
		before   Counters
		outcomes []Outcome
		after    Counters
		signals  []Signal
	}{
		{
			name: "no outcomes change nothing", before: failing(3),
			after: failing(3),
		},
		{
			name: "success on a healthy subscription", before: active, outcomes: []Outcome{ok(1)},
			after: active,
		},
		{
			name: "failures below the threshold raise nothing", before: active, outcomes: fails(0, 4),
			after: Counters{Active: true, ConsecutiveFailures: 4, RunFailures: 4, FailingSince: at(0)},
		},
		{
			name: "crossing half the budget raises degraded", before: failing(4), outcomes: fails(4, 1),
			after:   failing(5),
			signals: []Signal{{Kind: Degraded, At: at(4), Failures: 5, Since: at(0)}},
		},
		{
			name: "degraded once, not on every failure after", before: failing(5), outcomes: fails(5, 3),
			after: failing(8),
		},
		{
			name: "crossing inside a batch raises degraded once, at the crossing attempt", before: failing(3), outcomes: fails(3, 4),
			after:   failing(7),
			signals: []Signal{{Kind: Degraded, At: at(4), Failures: 5, Since: at(0)}},
		},
		{
			name: "counters already past the threshold are no crossing", before: Counters{Active: true, ConsecutiveFailures: 7, RunFailures: 7}, outcomes: fails(7, 1),
			after: Counters{Active: true, ConsecutiveFailures: 8, RunFailures: 8, Degraded: true},
		},
		{
			name: "the tenth consecutive failure disables", before: failing(9), outcomes: fails(9, 1),
			after:   Counters{Active: false, ConsecutiveFailures: 10, RunFailures: 10, Degraded: true, FailingSince: at(0)},
			signals: []Signal{{Kind: Disable, At: at(9), Failures: 10, Since: at(0), Reason: "10 consecutive failed attempts"}},
		},
		{
			name: "a batch past the budget disables once, with the run at its end", before: active, outcomes: fails(0, 12),
			after: Counters{Active: false, ConsecutiveFailures: 12, RunFailures: 12, Degraded: true, FailingSince: at(0)},
			signals: []Signal{
				{Kind: Degraded, At: at(4), Failures: 5, Since: at(0)},
				{Kind: Disable, At: at(11), Failures: 12, Since: at(0), Reason: "12 consecutive failed attempts"},
			},
		},
		{
			name: "an inactive subscription is not disabled again", before: Counters{ConsecutiveFailures: 10, RunFailures: 10, Degraded: true, FailingSince: at(0)},
			outcomes: fails(10, 1),
			after:    Counters{ConsecutiveFailures: 11, RunFailures: 11, Degraded: true, FailingSince: at(0)},
		},
		{
			name: "a 410 disables at once", before: active, outcomes: []Outcome{gone},
			after: Counters{Active: false, ConsecutiveFailures: 1, RunFailures: 1, Degraded: true, FailingSince: at(1)},
			signals: []Signal{
				{Kind: RetriesExhausted, At: at(1), Failures: 1, Since: at(1), DeliveryID: "g"},
				{Kind: Disable, At: at(1), Failures: 1, Since: at(1), Reason: "endpoint returned 410 Gone"},
			},
		},
		{
			name: "a 410 disables even when a success follows it in the batch", before: active, outcomes: []Outcome{gone, ok(2)},
			after: Counters{Active: false, Degraded: true},
			signals: []Signal{
				{Kind: RetriesExhausted, At: at(1), Failures: 1, Since: at(1), DeliveryID: "g"},
				{Kind: Disable, At: at(2), Failures: 0, Reason: "endpoint returned 410 Gone"},
			},
		},
		{
			name: "a 410 on an inactive subscription does not disable again", before: Counters{}, outcomes: []Outcome{gone},
			after:   Counters{ConsecutiveFailures: 1, RunFailures: 1, FailingSince: at(1)},
			signals: []Signal{{Kind: RetriesExhausted, At: at(1), Failures: 1, Since: at(1), DeliveryID: "g"}},
		},
		{
			name: "a delivery out of retries raises retries exhausted", before: failing(1),
			outcomes: []Outcome{{DeliveryID: "x", Result: Failed, At: at(3)}},
			after:    failing(2),
			signals:  []Signal{{Kind: RetriesExhausted, At: at(3), Failures: 2, Since: at(0), DeliveryID: "x"}},
		},
		{
			name: "the first success after degraded recovers", before: failing(6), outcomes: []Outcome{ok(6), ok(7)},
			after:   active,
			signals: []Signal{{Kind: Recovered, At: at(6), Failures: 6, Since: at(0)}},
		},
		{
			name: "a success after failures below the threshold is no recovery", before: failing(4), outcomes: []Outcome{ok(4)},
			after: active,
		},
		{
			name: "failures at the threshold recover without the degraded flag", before: Counters{Active: true, ConsecutiveFailures: 5},
			outcomes: []Outcome{ok(5)},
			after:    active,
			signals:  []Signal{{Kind: Recovered, At: at(5), Failures: 5}},
		},
		{
			name: "the first success after a disable and reactivation recovers",
			// Reactivation reset the consecutive failures; the run goes on.
			before:   Counters{Active: true, Degraded: true, RunFailures: 10, FailingSince: at(0)},
			outcomes: concat(fails(20, 2), []Outcome{ok(22)}),
			after:    active,
			signals:  []Signal{{Kind: Recovered, At: at(22), Failures: 12, Since: at(0)}},
		},
		{
			name: "a success in a batch ends the run", before: active, outcomes: concat(fails(0, 7), []Outcome{ok(7)}, fails(8, 7)),
			after: Counters{Active: true, ConsecutiveFailures: 7, RunFailures: 7, Degraded: true, FailingSince: at(8)},
			signals: []Signal{
				{Kind: Degraded, At: at(4), Failures: 5, Since: at(0)},
				{Kind: Recovered, At: at(7), Failures: 7, Since: at(0)},
				{Kind: Degraded, At: at(12), Failures: 5, Since: at(8)},
			},
		},
		{
			name: "a batch that reaches the budget but ends with a success does not disable", before: failing(8), outcomes: concat(fails(8, 2), []Outcome{ok(10)}),
			after:   active,
			signals: []Signal{{Kind: Recovered, At: at(10), Failures: 10, Since: at(0)}},
		},
		{
			name: "a smaller budget warns at its half", policy: ptr(NewPolicy(4)), before: active, outcomes: fails(0, 4),
			after: Counters{Active: false, ConsecutiveFailures: 4, RunFailures: 4, Degraded: true, FailingSince: at(0)},
			signals: []Signal{
				{Kind: Degraded, At: at(1), Failures: 2, Since: at(0)},
				{Kind: Disable, At: at(3), Failures: 4, Since: at(0), Reason: "4 consecutive failed attempts"},
			},
		},
		{
			name: "no budget never disables by count", policy: &Policy{}, before: active, outcomes: fails(0, 30),
			after: Counters{Active: true, ConsecutiveFailures: 30, RunFailures: 30, FailingSince: at(0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			if tc.policy != nil {
				p = *tc.policy
			}
			got, gotSignals := Evaluate(p, tc.before, tc.outcomes)
			if want := tc.after; !reflect.DeepEqual(got, want) {
				t.Errorf("counters:\n got  %+v\n want %+v", got, want)
			}
			if want := tc.signals; !reflect.DeepEqual(gotSignals, want) {
				t.Errorf("signals:\n got  %+v\n want %+v", gotSignals, want)
			}
		})
	}
}

// TestEvaluateBatching: however a run of failures is split into batches, it
// raises one Degraded, at the fifth failure, and one Disable; only the
// Disable's count depends on where the batch that reached the budget ended.
func TestEvaluateBatching(t *testing.T) {
	const total = 30
	all := fails(0, total)
	for size := 1; size <= total; size++ {
		c := Counters{Active: true}
		var signals []Signal
		for from := 0; from < total; from += size {
			var s []Signal
			c, s = Evaluate(DefaultPolicy(), c, all[from:min(from+size, total)])
			signals = append(signals, s...)
		}
		var degraded, disabled []Signal
		for _, s := range signals {
			switch s.Kind {
			case Degraded:
				degraded = append(degraded, s)
			case Disable:
				disabled = append(disabled, s)
			default:
				t.Errorf("batches of %d: unexpected signal %+v", size, s)
			}
		}
		if want := []Signal{{Kind: Degraded, At: at(4), Failures: 5, Since: at(0)}}; !reflect.DeepEqual(degraded, want) {
			t.Errorf("batches of %d: degraded %+v, want %+v", size, degraded, want)
		}
		// The batch that reaches 10 failures ends at the first multiple of size at or past 10.
		wantFailures := min((DefaultDisableAfter+size-1)/size*size, total)
		if len(disabled) != 1 || disabled[0].Failures != wantFailures {
			t.Errorf("batches of %d: disabled %+v, want one at %d failures", size, disabled, wantFailures)
		}
		if got, want := c.ConsecutiveFailures, total; got != want {
			t.Errorf("batches of %d: consecutive failures %d, want %d", size, got, want)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	if got, want := DefaultPolicy(), (Policy{DisableAfter: 10, DegradedAfter: 5}); got != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", got, want)
	}
}
