package twocaptcha

import (
	"context"
	"sync"
	"time"

	"carrier/internal/task"
)

// BalanceCacheTTL is how long getbalance answers from cache before asking upstream again.
const BalanceCacheTTL = 15 * time.Second

// balanceCache keeps the provider's last balance, so clients polling
// getbalance do not each cost an upstream request.
type balanceCache struct {
	mu      sync.Mutex
	value   string
	expires time.Time
	call    *balanceCall // the upstream request running now, if any
}

// balanceCall is one upstream balance request that callers wait for together.
type balanceCall struct {
	done  chan struct{} // closed when value and err are set
	value string
	err   error
}

// get answers the provider's balance, asking upstream at most once per
// BalanceCacheTTL. Concurrent callers share one upstream request, and no
// lock is held while it runs, so a slow provider holds up only the callers
// waiting for its answer (each until its own ctx ends).
func (c *balanceCache) get(ctx context.Context, p task.Provider) (string, error) {
	c.mu.Lock()
	if time.Now().Before(c.expires) {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	call := c.call
	if call == nil {
		call = &balanceCall{done: make(chan struct{})}
		c.call = call
		go func() {
			// Not the caller's ctx: the answer serves every waiter and the cache.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			v, err := p.Balance(ctx)
			c.mu.Lock()
			call.value, call.err = v, err
			if err == nil {
				c.value, c.expires = v, time.Now().Add(BalanceCacheTTL)
			}
			c.call = nil
			c.mu.Unlock()
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.value, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
