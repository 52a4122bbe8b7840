// Package health decides what a subscription's delivery results mean for the
// subscription: when it is disabled, when it counts as degraded, when it has
// recovered, and which deliveries ran out of retries.
//
// It is pure: Evaluate takes a subscription's counters and the outcomes of
// one batch of attempts and returns the new counters and the signals the
// batch raised. It does no I/O and keeps no state, so the store can run it
// inside the transaction that records the attempts (persisting the counters
// and applying a Disable there, with its webhook.disabled event), and later
// consumers (monitors and alerts) can rely on one definition of "failing" and
// "recovered" instead of each re-deriving it from the attempts. It depends on
// nothing else in Carrier, so any layer may use it, like internal/backoff.
package health

import "time"

// Policy says when a run of failed attempts raises signals.
type Policy struct {
	// DisableAfter is how many consecutive failed attempts deactivate a
	// subscription; 0 or less disables only on an outcome that asks for it.
	DisableAfter int
	// DegradedAfter is how many consecutive failed attempts mark the
	// subscription degraded, a warning before it is disabled; 0 or less
	// never does.
	DegradedAfter int
}

// DefaultDisableAfter is Carrier's failure budget: ten consecutive failed
// attempts deactivate a subscription.
const DefaultDisableAfter = 10

// NewPolicy returns the policy for a failure budget of disableAfter
// consecutive failed attempts, with the degraded warning at half of it.
func NewPolicy(disableAfter int) Policy {
	return Policy{DisableAfter: disableAfter, DegradedAfter: disableAfter / 2}
}

// DefaultPolicy is NewPolicy(DefaultDisableAfter): degraded at 5, disabled at 10.
func DefaultPolicy() Policy { return NewPolicy(DefaultDisableAfter) }

// Counters are what health remembers about one subscription between batches.
// The store persists them with the subscription.
type Counters struct {
	// Active is whether the subscription is active; only an active one is disabled.
	Active bool
	// ConsecutiveFailures counts failed attempts since the last success. It
	// is what DisableAfter and DegradedAfter are judged on, and activating a
	// subscription resets it, so a reactivated endpoint gets a whole budget.
	ConsecutiveFailures int
	// Degraded is set when a run of failures crosses DegradedAfter or the
	// subscription is disabled, and cleared by the next success (which
	// raises Recovered). It survives reactivation: an endpoint that was
	// disabled, reactivated and then answers has recovered.
	Degraded bool
	// RunFailures counts failed attempts since the last success, like
	// ConsecutiveFailures, but is not reset by reactivation: it is the
	// length of the whole failing run that Recovered reports.
	RunFailures int
	// FailingSince is when the run's first failed attempt was made; zero when
	// the subscription is not failing (or the start is not known).
	FailingSince time.Time
}

// Result is what one attempt did to its delivery.
type Result int

// The results of an attempt.
const (
	// Retrying: the attempt failed and the delivery will be tried again
	// (also an attempt refused by the destination's rate limit).
	Retrying Result = iota
	// Delivered: the attempt succeeded.
	Delivered
	// Failed: the attempt failed and the delivery has no retry left.
	Failed
)

// Outcome is one recorded attempt of a subscription's delivery.
type Outcome struct {
	DeliveryID string
	Result     Result
	// Disable asks for the subscription to be deactivated whatever its
	// failure count (the endpoint answered 410 Gone), with DisableReason.
	Disable       bool
	DisableReason string
	// At is when the attempt was made.
	At time.Time
}

// Kind names a signal. The values are the label of
// carrier_health_signals_total.
type Kind string

// The signals Evaluate raises.
const (
	// Disable: deactivate the subscription (Reason says why).
	Disable Kind = "disable"
	// Degraded: consecutive failures crossed DegradedAfter, raised once per
	// failing run, when crossing upward.
	Degraded Kind = "degraded"
	// Recovered: the first success after the subscription was degraded or
	// disabled.
	Recovered Kind = "recovered"
	// RetriesExhausted: a delivery failed for good (DeliveryID).
	RetriesExhausted Kind = "retries_exhausted"
)

// Kinds lists every signal kind, for metrics that start each at zero.
var Kinds = []Kind{Disable, Degraded, Recovered, RetriesExhausted}

// Signal is something a batch of outcomes did to a subscription's health.
type Signal struct {
	Kind Kind
	// At is when the attempt that raised the signal was made (Disable: the
	// batch's last attempt).
	At time.Time
	// Failures is the number of consecutive failed attempts when the signal
	// was raised (Recovered: the failed attempts of the run that ended).
	Failures int
	// Since is when the failing run began (zero when not known); with At,
	// how long the endpoint has been, or was, failing.
	Since time.Time
	// Reason says why a Disable disables.
	Reason string
	// DeliveryID is the delivery a RetriesExhausted is about.
	DeliveryID string
}
