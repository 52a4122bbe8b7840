package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testBudgetConcurrent: nodes spending one budget at once never spend more
// than its limit in a window; a new window starts from zero; a refund makes
// room again.
func testBudgetConcurrent(t *testing.T, e Storage) {
	f := setup(t, e)
	window := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	const limit = 7
	var spent atomic.Int64
	var wg sync.WaitGroup
	for range 4 { // four nodes
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				ok, err := f.s.SpendBudget(f.ctx, "poll", window, 1, limit)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					spent.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	check(t, "spent in the window by 4 nodes trying 5 each", spent.Load(), int64(limit))
	ok, err := f.s.SpendBudget(f.ctx, "poll", window, 1, limit)
	f.must(err)
	check(t, "spend past the limit", ok, false)
	ok, err = f.s.SpendBudget(f.ctx, "other", window, 1, limit)
	f.must(err)
	check(t, "another budget's spend", ok, true)
	ok, err = f.s.SpendBudget(f.ctx, "poll", window.Add(time.Minute), limit, limit)
	f.must(err)
	check(t, "the next window's spend of the whole limit", ok, true)
	f.must(f.s.RefundBudget(f.ctx, "poll", window, 2))
	ok, err = f.s.SpendBudget(f.ctx, "poll", window, 2, limit)
	f.must(err)
	check(t, "spend after a refund", ok, true)
	ok, err = f.s.SpendBudget(f.ctx, "poll", window, 1, limit)
	f.must(err)
	check(t, "spend past the limit again", ok, false)
}
