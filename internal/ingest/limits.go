package ingest

import (
	"fmt"
	"math"
	"time"

	"carrier/internal/quota"
)

// FanoutError refuses a publish that matches more subscriptions than
// CARRIER_MAX_FANOUT_PER_EVENT allows. Nothing of it is stored.
type FanoutError struct {
	Count, Max int
}

func (e *FanoutError) Error() string {
	return fmt.Sprintf("the event matches %d subscriptions, more than CARRIER_MAX_FANOUT_PER_EVENT (%d) allows; nothing was stored (narrow the subscriptions' event types or filters, or raise the setting)", e.Count, e.Max)
}

// RateLimitError refuses a publish over the project's publish rate on this
// node (CARRIER_PUBLISH_RATE, CARRIER_PUBLISH_BURST).
type RateLimitError struct {
	Rate, Burst, Events int
	// RetryAfter is when the project may publish Events again.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	if e.Events > e.Burst {
		return fmt.Sprintf("a batch of %d events is more than CARRIER_PUBLISH_BURST (%d) allows at once; send smaller batches", e.Events, e.Burst)
	}
	return fmt.Sprintf("this project published more than CARRIER_PUBLISH_RATE (%d events a second, bursts of CARRIER_PUBLISH_BURST %d) allows; retry in %d s",
		e.Rate, e.Burst, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter in whole seconds, at least 1 (for a
// Retry-After header).
func (e *RateLimitError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// RateLimiter is each project's publish allowance on this node: a token
// bucket per project refilled with rate events a second and holding up to
// burst. What a tenant sends (REST and SNS publishes, queue sends over REST
// and SQS) takes from it; system events and replays do not. A nil
// RateLimiter allows everything.
type RateLimiter struct {
	rate, burst int
	buckets     *quota.Buckets
}

// NewRateLimiter returns a limiter of rate events a second per project with
// bursts of burst (0: twice rate, at least 10), or nil when rate is 0 (no limit).
func NewRateLimiter(rate, burst int) *RateLimiter {
	if rate <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(2*rate, 10) // an SQS or SNS batch always fits
	}
	return &RateLimiter{rate: rate, burst: burst, buckets: quota.New(float64(rate), float64(burst))}
}

// Allow takes n events from the project's allowance, all or none, and
// answers a *RateLimitError saying when to come back when it holds fewer.
func (l *RateLimiter) Allow(projectID string, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	if n > l.burst {
		return &RateLimitError{Rate: l.rate, Burst: l.burst, Events: n}
	}
	if wait := l.buckets.Take(projectID, float64(n)); wait > 0 {
		return &RateLimitError{Rate: l.rate, Burst: l.burst, Events: n, RetryAfter: wait}
	}
	return nil
}
