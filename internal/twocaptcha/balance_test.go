package twocaptcha

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/provider"
)

// slowUpstream is a provider whose getbalance answers only when the test
// says, so a test can hold one upstream request open.
type slowUpstream struct {
	calls   atomic.Int64
	entered chan struct{} // one value per getbalance request that arrived
	answers chan int      // the HTTP status each request answers with (200: "12.5")
}

func newSlowUpstream(t *testing.T) (*slowUpstream, *provider.Client) {
	t.Helper()
	u := &slowUpstream{entered: make(chan struct{}, 16), answers: make(chan int)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/res.php" || r.URL.Query().Get("action") != "getbalance" {
			http.NotFound(w, r)
			return
		}
		u.calls.Add(1)
		u.entered <- struct{}{}
		select {
		case status := <-u.answers:
			if status != http.StatusOK {
				w.WriteHeader(status)
				return
			}
			w.Write([]byte(`{"status":1,"request":"12.5"}`))
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return u, provider.New(srv.URL, "key", srv.Client())
}

// waitEntered waits for the next upstream request to arrive.
func (u *slowUpstream) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-u.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no getbalance request reached the upstream")
	}
}

// answer lets the open upstream request answer with status.
func (u *slowUpstream) answer(t *testing.T, status int) {
	t.Helper()
	select {
	case u.answers <- status:
	case <-time.After(30 * time.Second):
		t.Fatal("no getbalance request was waiting for its answer")
	}
}

// TestBalanceSlowUpstreamHoldsOnlyItsWaiters holds one upstream balance
// request open: callers that arrive meanwhile share it (one upstream request
// for all of them), a caller whose context ends leaves at once instead of
// waiting for the upstream (no lock is held across the call), and once the
// answer arrives every waiter has it and later callers read it from cache.
func TestBalanceSlowUpstreamHoldsOnlyItsWaiters(t *testing.T) {
	t.Parallel()
	up, p := newSlowUpstream(t)
	var c balanceCache

	const waiters = 5
	type result struct {
		v   string
		err error
	}
	results := make(chan result, waiters)
	// The deadline only bounds a hang (an implementation that does not share
	// the flight would leave the other waiters unanswered).
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			v, err := c.get(wctx, p)
			results <- result{v, err}
		})
	}
	up.waitEntered(t)

	// While the flight is open, a caller with its own deadline is not held
	// by it: it returns with its context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context while upstream is slow: %v, want context.Canceled", err)
	}

	up.answer(t, http.StatusOK)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil || r.v != "12.5" {
			t.Errorf("waiter got %q, %v; want 12.5", r.v, r.err)
		}
	}
	if v, err := c.get(context.Background(), p); err != nil || v != "12.5" {
		t.Errorf("cached get: %q, %v", v, err)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream saw %d balance requests, want 1 shared by all callers", n)
	}
}

// TestBalanceFailureIsNotCached: an upstream failure reaches the callers of
// that flight only; the next caller asks upstream again and its success is
// cached.
func TestBalanceFailureIsNotCached(t *testing.T) {
	t.Parallel()
	up, p := newSlowUpstream(t)
	var c balanceCache

	errc := make(chan error, 1)
	go func() {
		_, err := c.get(context.Background(), p)
		errc <- err
	}()
	up.waitEntered(t)
	up.answer(t, http.StatusInternalServerError)
	if err := <-errc; err == nil {
		t.Fatal("get succeeded although the upstream answered 500")
	}

	vc := make(chan string, 1)
	go func() {
		v, err := c.get(context.Background(), p)
		if err != nil {
			t.Errorf("get after a failure: %v", err)
		}
		vc <- v
	}()
	up.waitEntered(t)
	up.answer(t, http.StatusOK)
	if v := <-vc; v != "12.5" {
		t.Errorf("get after a failure = %q, want 12.5", v)
	}
	if v, err := c.get(context.Background(), p); err != nil || v != "12.5" {
		t.Errorf("cached get: %q, %v", v, err)
	}
	if n := up.calls.Load(); n != 2 {
		t.Errorf("upstream saw %d balance requests, want 2 (the failure, then one success cached)", n)
	}
}
