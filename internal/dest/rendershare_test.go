package dest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRenderShare: a project may render while its balance lasts (a burst of
// TemplateTimeLimit, so one render its budget stops always fits); past it,
// its attempts are put off, throttled with their retries kept, for as long
// as paying the debt back takes, naming the setting; other projects render
// on. A nil share admits everything.
func TestRenderShare(t *testing.T) {
	if NewRenderShare(0) != nil {
		t.Fatal("0 made a share")
	}
	ctx := context.Background()
	var off *RenderShare
	done, res := off.Acquire(ctx, "p")
	if res != nil {
		t.Fatalf("nil share: %+v", res)
	}
	done(time.Hour)

	r := NewRenderShare(50 * time.Millisecond)
	render := func(project string, took time.Duration) {
		t.Helper()
		done, res := r.Acquire(ctx, project)
		if res != nil {
			t.Fatalf("%s put off: %+v", project, res)
		}
		done(took)
	}
	render("a", TemplateTimeLimit-time.Millisecond)
	render("a", 51*time.Millisecond) // with a millisecond left: admitted, and 50 ms in debt
	_, res = r.Acquire(ctx, "a")
	if res == nil {
		t.Fatal("a project in debt was admitted")
	}
	if !res.Throttled || !res.Retryable || res.ErrorCode != CodeRenderShare {
		t.Errorf("put off as %+v, want throttled and retryable with code %s", res, CodeRenderShare)
	}
	if res.RetryAfter < 900*time.Millisecond || res.RetryAfter > 1100*time.Millisecond {
		t.Errorf("put off for %v, want about a second (50 ms of debt at 50 ms a second)", res.RetryAfter)
	}
	if !strings.Contains(res.ErrorMessage, "CARRIER_TEMPLATE_TIME_PER_SECOND") {
		t.Errorf("message %q does not name the setting", res.ErrorMessage)
	}
	render("b", time.Millisecond) // another project renders on
	if got := len(r.slots); got != 0 {
		t.Errorf("%d render slots kept with no render running, want none", got)
	}
}

// TestRenderShareOneAtATime: a project's renders on a node run one after
// the other, so it never holds more than one core; another project's render
// does not wait for them; a render waiting for its turn gives up when its
// context ends.
func TestRenderShareOneAtATime(t *testing.T) {
	r := NewRenderShare(time.Second)
	ctx := context.Background()
	var running, most atomic.Int32
	finished := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { finished <- struct{}{} }()
			done, res := r.Acquire(ctx, "a")
			if res != nil {
				t.Errorf("put off: %+v", res)
				return
			}
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			done(time.Millisecond)
		}()
	}
	// Meanwhile another project is not held up.
	other, res := r.Acquire(ctx, "b")
	if res != nil {
		t.Fatalf("another project put off: %+v", res)
	}
	other(0)
	for range 8 {
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("the renders did not finish")
		}
	}
	if got := most.Load(); got != 1 {
		t.Errorf("%d renders of one project ran at once, want 1", got)
	}

	hold, _ := r.Acquire(ctx, "a")
	cut, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, res := r.Acquire(cut, "a"); res == nil || res.Delivered {
		t.Errorf("a render waiting past its context: %+v, want it cut off", res)
	}
	hold(0)
}
