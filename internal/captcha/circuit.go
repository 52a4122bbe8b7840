package captcha

import (
	"sync"
	"time"
)

// Circuit states.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half_open"
)

// BreakerConfig configures a circuit breaker. The defaults are those of
// Tencent Cloud's own SDK circuit breaker: open after at least 5 failures
// making up 75% of the calls within 60 s; stay open 60 s; then let 5 probe
// calls through, and close when they all succeed.
type BreakerConfig struct {
	MinFailures  int
	FailureRatio float64
	Window       time.Duration
	OpenFor      time.Duration
	Probes       int
}

// DefaultBreaker is Tencent's SDK's breaker.
var DefaultBreaker = BreakerConfig{MinFailures: 5, FailureRatio: 0.75, Window: 60 * time.Second, OpenFor: 60 * time.Second, Probes: 5}

// Breaker is a circuit breaker over one site's vendor calls. Only the
// vendor's own failures count as failures; token and configuration errors
// are answers, so they count as successes of the vendor.
type Breaker struct {
	cfg BreakerConfig

	mu          sync.Mutex
	state       string
	windowStart time.Time
	calls       int
	failures    int
	openedAt    time.Time
	probes      int // probes let through in half-open
	probeOK     int
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker { return &Breaker{cfg: cfg, state: CircuitClosed} }

// Allow says whether a call may go to the vendor at now.
func (b *Breaker) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case CircuitOpen:
		if now.Sub(b.openedAt) < b.cfg.OpenFor {
			return false
		}
		b.state, b.probes, b.probeOK = CircuitHalfOpen, 0, 0
		fallthrough
	case CircuitHalfOpen:
		if b.probes >= b.cfg.Probes {
			return false
		}
		b.probes++
		return true
	}
	return true
}

// Record records a call's result and returns the state before and after.
func (b *Breaker) Record(now time.Time, failed bool) (from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from = b.state
	switch b.state {
	case CircuitHalfOpen:
		if failed {
			b.state, b.openedAt = CircuitOpen, now
		} else if b.probeOK++; b.probeOK >= b.cfg.Probes {
			b.state, b.calls, b.failures, b.windowStart = CircuitClosed, 0, 0, now
		}
	case CircuitClosed:
		if now.Sub(b.windowStart) > b.cfg.Window {
			b.windowStart, b.calls, b.failures = now, 0, 0
		}
		b.calls++
		if failed {
			b.failures++
		}
		if b.failures >= b.cfg.MinFailures && float64(b.failures) >= b.cfg.FailureRatio*float64(b.calls) {
			b.state, b.openedAt = CircuitOpen, now
		}
	}
	return from, b.state
}

// State returns the breaker's state at now (open turns half-open once its
// time is up, at the next Allow).
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
