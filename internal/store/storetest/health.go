package storetest

import (
	"strings"
	"testing"
	"time"

	"carrier/internal/health"
	"carrier/internal/store"
)

// testHealthSignals: CompleteAttemptsWithSignals evaluates each batch against
// the counters persisted by the batches before it, so a run of failures split
// over several calls is degraded once, at its fifth failure, and recovers at
// the first success; a delivery out of retries raises RetriesExhausted; a 410
// disables at once, and the degraded state outlives the deactivation, so the
// first success after the subscription is activated again recovers. Only the
// Disable is written to the outbox (as webhook.disabled).
func testHealthSignals(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	other := f.subscription(p.ID)
	for i := range 10 {
		f.publish(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub.ID)
	}
	f.publish(p.ID, "t", f.at(-time.Minute), other.ID)
	var jobs []store.Job
	var otherJob store.Job
	for _, j := range f.claim("w", f.base, 100) {
		if j.Subscription.ID == sub.ID {
			jobs = append(jobs, j)
		} else {
			otherJob = j
		}
	}
	if len(jobs) != 10 || otherJob.Delivery.ID == "" {
		t.Fatalf("claimed %d jobs of the subscription and %q of the other, want 10 and one", len(jobs), otherJob.Delivery.ID)
	}
	sec := func(n int) time.Time { return f.at(time.Duration(n) * time.Second) }
	complete := func(now time.Time, outs ...store.Outcome) []store.HealthSignal {
		t.Helper()
		signals, err := f.s.CompleteAttemptsWithSignals(f.ctx, outs, now)
		f.must(err)
		return signals
	}
	signal := func(s health.Signal) []store.HealthSignal {
		return []store.HealthSignal{{ProjectID: p.ID, SubscriptionID: sub.ID, Signal: s}}
	}

	var outs []store.Outcome
	for i := range 4 {
		outs = append(outs, outcome(jobs[i], store.StateRetrying, sec(1+i)))
	}
	check(t, "signals after four failures", complete(sec(4), outs...), []store.HealthSignal(nil))
	check(t, "signals at the fifth failure", complete(sec(5), outcome(jobs[4], store.StateRetrying, sec(5))),
		signal(health.Signal{Kind: health.Degraded, At: sec(5), Failures: 5, Since: sec(1)}))
	check(t, "signals at the sixth failure (and the other subscription's first)",
		complete(sec(6), outcome(jobs[5], store.StateRetrying, sec(6)), outcome(otherJob, store.StateRetrying, sec(6))), []store.HealthSignal(nil))
	check(t, "signals at the first success", complete(sec(7), outcome(jobs[6], store.StateDelivered, sec(7))),
		signal(health.Signal{Kind: health.Recovered, At: sec(7), Failures: 6, Since: sec(1)}))
	check(t, "consecutive failures after the success", f.getSub(p.ID, sub.ID).ConsecutiveFailures, 0)

	check(t, "signals for a delivery out of retries", complete(sec(8), outcome(jobs[7], store.StateFailed, sec(8))),
		signal(health.Signal{Kind: health.RetriesExhausted, At: sec(8), Failures: 1, Since: sec(8), DeliveryID: jobs[7].Delivery.ID}))

	gone := outcome(jobs[8], store.StateFailed, sec(9))
	gone.Attempt.StatusCode, gone.Disable, gone.DisableReason = 410, true, "endpoint returned 410 Gone"
	check(t, "signals for a 410", complete(sec(9), gone), []store.HealthSignal{
		{ProjectID: p.ID, SubscriptionID: sub.ID, Signal: health.Signal{Kind: health.RetriesExhausted, At: sec(9), Failures: 2, Since: sec(8), DeliveryID: jobs[8].Delivery.ID}},
		{ProjectID: p.ID, SubscriptionID: sub.ID, Signal: health.Signal{Kind: health.Disable, At: sec(9), Failures: 2, Since: sec(8), Reason: "endpoint returned 410 Gone"}},
	})
	got := f.getSub(p.ID, sub.ID)
	check(t, "active after the 410", got.Active, false)
	check(t, "reason after the 410", got.DisabledReason, "endpoint returned 410 Gone")

	f.must(f.s.SetSubscriptionActive(f.ctx, p.ID, sub.ID, true, "", sec(10)))
	check(t, "signals at the first success after activation", complete(sec(11), outcome(jobs[9], store.StateDelivered, sec(11))),
		signal(health.Signal{Kind: health.Recovered, At: sec(11), Failures: 2, Since: sec(8)}))

	// The Disable and the two recoveries became system events, in order;
	// Degraded and RetriesExhausted did not.
	rows := f.claimOutbox("n", f.at(time.Hour), 10)
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
		check(t, "outbox subject", r.Subject, sub.ID)
	}
	check(t, "outbox types", strings.Join(types, ","), "endpoint.recovered,webhook.disabled,endpoint.recovered")
}
