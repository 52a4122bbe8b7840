package captcha

import (
	"sync"
	"time"
)

// verdictCache keeps verdicts by verification key until their token would
// have expired, bounded in entries (the oldest half is dropped when full).
// It is per node: an application that retries through another node asks
// the vendor again.
type verdictCache struct {
	mu    sync.Mutex
	max   int
	items map[string]cachedVerdict
}

type cachedVerdict struct {
	v       Verdict
	expires time.Time
}

func newVerdictCache(max int) *verdictCache {
	return &verdictCache{max: max, items: map[string]cachedVerdict{}}
}

func (c *verdictCache) get(key string, now time.Time) (Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok || !now.Before(e.expires) {
		delete(c.items, key)
		return Verdict{}, false
	}
	return e.v, true
}

func (c *verdictCache) put(key string, v Verdict, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		// Drop what expires soonest first: scan once, drop the older half.
		var cut time.Time
		n := 0
		for _, e := range c.items {
			if n == 0 || e.expires.Before(cut) {
				cut = e.expires
			}
			n++
		}
		for k, e := range c.items {
			if len(c.items) < c.max/2 {
				break
			}
			if !e.expires.After(cut.Add(time.Minute)) {
				delete(c.items, k)
			}
		}
		if len(c.items) >= c.max {
			clear(c.items)
		}
	}
	c.items[key] = cachedVerdict{v: v, expires: expires}
}
