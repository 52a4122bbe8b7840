// Package quota shares a resource between projects: one token bucket per
// project, refilled at a rate and holding up to a burst. Carrier bounds with
// it what one tenant can take from the others on a node: events published a
// second, list payload read a second, template rendering time a second.
//
// Two ways to pay: Take, for a cost known before the work (n events), all or
// nothing; Wait then Spend, for a cost known only after it (the bytes of a
// list answer, the time a render took), which may take the balance below
// zero, so the project waits until it has paid its debt back.
package quota

import (
	"sync"
	"time"
)

// Buckets holds each project's bucket. A nil *Buckets allows everything.
type Buckets struct {
	rate, burst float64
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64 // negative after a Spend larger than the balance
	at     time.Time
}

// maxIdleBuckets is how many projects' buckets are kept before full ones
// (projects that have not spent for a while) are forgotten.
const maxIdleBuckets = 4096

// New returns buckets of rate tokens a second holding up to burst, or nil
// when rate is not positive (no limit).
func New(rate, burst float64) *Buckets {
	if rate <= 0 {
		return nil
	}
	return &Buckets{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// Rate is the refill rate, in tokens a second.
func (b *Buckets) Rate() float64 { return b.rate }

// Burst is the most a bucket holds.
func (b *Buckets) Burst() float64 { return b.burst }

// Take takes n tokens from key's bucket, all or none, and answers 0, or how
// long until the bucket holds n (never, for n above the burst: callers check
// that first).
func (b *Buckets) Take(key string, n float64) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.refilled(key)
	if k.tokens >= n {
		k.tokens -= n
		return 0
	}
	return b.until(n - k.tokens)
}

// Wait is how long until key's balance is positive again: 0 while it is.
func (b *Buckets) Wait(key string) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.refilled(key)
	if k.tokens > 0 {
		return 0
	}
	return b.until(-k.tokens + b.rate/1000) // a millisecond's refill past zero
}

// Spend charges n tokens to key's bucket, which may go below zero.
func (b *Buckets) Spend(key string, n float64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refilled(key).tokens -= n
}

// refilled is key's bucket, refilled up to now. The caller holds mu.
func (b *Buckets) refilled(key string) *bucket {
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	k, ok := b.buckets[key]
	if !ok {
		if len(b.buckets) >= maxIdleBuckets {
			b.forgetFull(now)
		}
		k = &bucket{tokens: b.burst, at: now}
		b.buckets[key] = k
	}
	k.tokens = min(b.burst, k.tokens+now.Sub(k.at).Seconds()*b.rate)
	k.at = now
	return k
}

// forgetFull drops the buckets that have refilled: a project that comes back
// starts with a full bucket, as it would have.
func (b *Buckets) forgetFull(now time.Time) {
	for id, k := range b.buckets {
		if k.tokens+now.Sub(k.at).Seconds()*b.rate >= b.burst {
			delete(b.buckets, id)
		}
	}
}

// until is how long the refill of n tokens takes.
func (b *Buckets) until(n float64) time.Duration {
	return time.Duration(n / b.rate * float64(time.Second))
}
