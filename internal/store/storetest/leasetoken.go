package storetest

import (
	"testing"
	"time"

	"carrier/internal/store"
)

// testLeaseTokenFences: outcomes and renewals apply only with the token of
// the delivery's current claim. Node A is paused past its lease; B claims
// the delivery and records a retry; A, awake, claims it again; A's first
// claim's late outcome must not be recorded (the owner alone matches), nor
// its renewal extend the lease. The node holding the current claim records.
func testLeaseTokenFences(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	id := f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)[0]
	lease := func(o *store.ClaimOptions) { o.Lease = time.Second }
	one := func(what string, jobs []store.Job) store.Job {
		t.Helper()
		if len(jobs) != 1 {
			t.Fatalf("%s: claimed %d, want 1", what, len(jobs))
		}
		return jobs[0]
	}
	state := func(what, wantState string, wantAttempts int) {
		t.Helper()
		d := f.getDelivery(p.ID, id)
		check(t, what+": state", d.State, wantState)
		check(t, what+": attempts", d.Attempts, wantAttempts)
	}

	a1 := one("A", f.claim("A", f.base, 10, lease))
	b := one("B after A's lease", f.claim("B", f.at(2*time.Second), 10, lease))
	f.complete(f.at(2500*time.Millisecond), outcome(a1, store.StateDelivered, f.at(2500*time.Millisecond)))
	state("A's outcome after B claimed", store.StatePending, 0)
	retry := outcome(b, store.StateRetrying, f.at(2500*time.Millisecond))
	retry.NextAttemptAt = f.at(2500 * time.Millisecond)
	f.complete(f.at(2500*time.Millisecond), retry)
	state("B's retry", store.StateRetrying, 1)

	a2 := one("A again", f.claim("A", f.at(3*time.Second), 10, lease))
	if a2.LeaseToken == a1.LeaseToken {
		t.Fatalf("two claims with one token %d", a1.LeaseToken)
	}
	f.complete(f.at(3100*time.Millisecond), outcome(a1, store.StateDelivered, f.at(3100*time.Millisecond)))
	state("A's first claim's outcome after A claimed again", store.StateRetrying, 1)

	// The first claim's renewal must not extend the second's lease: past it
	// (4 s), C can claim.
	f.must(f.s.RenewLeases(f.ctx, "A", []store.Lease{{DeliveryID: id, Token: a1.LeaseToken}}, f.at(time.Hour)))
	c := one("C after A's stale renewal", f.claim("C", f.at(4500*time.Millisecond), 10, lease))
	// The current claim's renewal does: D cannot claim past its first lease.
	f.must(f.s.RenewLeases(f.ctx, "C", []store.Lease{{DeliveryID: id, Token: c.LeaseToken}}, f.at(10*time.Second)))
	check(t, "D's claim while C's renewed lease holds", len(f.claim("D", f.at(6*time.Second), 10, lease)), 0)

	f.complete(f.at(6*time.Second), outcome(a2, store.StateDelivered, f.at(6*time.Second)))
	state("A's second claim's outcome after C claimed", store.StateRetrying, 1)
	// A stale outcome in the same batch as the current one: only the
	// current one is recorded, as one attempt.
	stale := outcome(c, store.StateFailed, f.at(6*time.Second))
	stale.LeaseToken = a2.LeaseToken
	f.complete(f.at(6*time.Second), stale, outcome(c, store.StateDelivered, f.at(6*time.Second)))
	state("C's outcome", store.StateDelivered, 2)
	attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
	f.must(err)
	check(t, "attempt rows", len(attempts), 2)
}
