package auth

import (
	"sync"
	"time"

	"carrier/internal/store"
)

// KeyTTL is how long a key the store found is used without asking again;
// a key revoked on another node keeps working there for at most this long.
const KeyTTL = 5 * time.Second

// KeyOutageGrace bounds how long a key keeps working while the store cannot
// be reached, counted from when the store last confirmed it, so publishes
// are spooled through a short outage but a key revoked just before a long
// one does not work for its whole length.
const KeyOutageGrace = 5 * time.Minute

// MaxCachedKeys bounds the key cache. Only keys the store found are cached,
// so the bound matters only for deployments with more keys in use than
// this; the key confirmed longest ago makes room.
const MaxCachedKeys = 10000

// cache holds keys the store confirmed, by hash.
type cache struct {
	ttl    time.Duration // used without asking the store
	outage time.Duration // used while the store cannot be reached
	max    int
	clock  func() time.Time

	mu      sync.Mutex
	entries map[string]cachedKey
	// gen changes whenever a key is revoked, so a lookup that raced with
	// the revocation does not cache the key again.
	gen uint64
}

type cachedKey struct {
	key       store.APIKey
	confirmed time.Time // when the store last found the key
	expires   time.Time // until when it is used without asking the store
}

func newCache(ttl, outage time.Duration, max int, clock func() time.Time) *cache {
	return &cache{ttl: ttl, outage: outage, max: max, clock: clock, entries: map[string]cachedKey{}}
}

func (c *cache) get(hash string) (cachedKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	return e, ok
}

// generation is read before asking the store, and handed to put.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches k as confirmed at t, unless a key was revoked since gen was
// read. A full cache first drops the keys too old to help through an
// outage, then, if none is, the one confirmed longest ago.
func (c *cache) put(hash string, k store.APIKey, t time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.entries[hash]; !ok && len(c.entries) >= c.max {
		oldest, oldestAt := "", time.Time{}
		for h, e := range c.entries {
			if t.Sub(e.confirmed) > c.outage {
				delete(c.entries, h)
				continue
			}
			if oldest == "" || e.confirmed.Before(oldestAt) {
				oldest, oldestAt = h, e.confirmed
			}
		}
		if len(c.entries) >= c.max {
			delete(c.entries, oldest)
		}
	}
	c.entries[hash] = cachedKey{key: k, confirmed: t, expires: t.Add(c.ttl)}
}

func (c *cache) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, hash)
}

// forget drops every cached key, and keeps lookups already under way from
// caching what they found.
func (c *cache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
