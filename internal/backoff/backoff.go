// Package backoff computes retry delays as pure functions.
package backoff

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxDelay caps every computed delay.
const MaxDelay = 24 * time.Hour

// Jitter is the fraction by which a delay is spread either way, so retries of
// many deliveries that failed together do not arrive together.
const Jitter = 0.1

// Delay returns the wait before retry n (n = 1 for the first retry):
// multiplier^(n-1) × base, spread by ±Jitter using r, a number in [0, 1).
func Delay(n int, multiplier float64, base time.Duration, r float64) time.Duration {
	if n < 1 {
		n = 1
	}
	if multiplier < 1 {
		multiplier = 1
	}
	d := math.Pow(multiplier, float64(n-1)) * float64(base)
	d *= 1 + Jitter*(2*r-1)
	if d > float64(MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return MaxDelay
	}
	return time.Duration(d)
}

// RetryAfter parses a Retry-After header value (delay seconds or an HTTP date)
// relative to now, capped at max. ok is false when the value is absent or invalid.
func RetryAfter(value string, now time.Time, max time.Duration) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = time.Duration(secs) * time.Second
		if secs > int64(max/time.Second) {
			d = max
		}
		return d, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, max), true
}
