package captcha

import (
	"sync"
	"time"
)

// verdictCache keeps verdicts by verification key until their token would
// have expired, bounded in entries.
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

func (c *verdictCache) put(key string, v Verdict, now, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		// Full: drop what has expired; if that is not enough, start over
		// (a lost verdict costs a vendor call, not a wrong answer).
		for k, e := range c.items {
			if !now.Before(e.expires) {
				delete(c.items, k)
			}
		}
		if len(c.items) >= c.max {
			clear(c.items)
		}
	}
	c.items[key] = cachedVerdict{v: v, expires: expires}
}
