package dest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"carrier/internal/dispatch"
	"carrier/internal/quota"
)

// CodeRenderShare is the error code of an attempt put off because its
// project had used up its share of template rendering time on this node
// (CARRIER_TEMPLATE_TIME_PER_SECOND). The delivery keeps its retries.
const CodeRenderShare = "template_time_exceeded"

// RenderShare is each project's share of the time this node spends
// rendering templates (chat messages, email subjects and bodies). A template
// costs CPU on the cores every tenant shares, and its own budget bounds only
// one message: without a share, a project publishing to a template that
// renders for tens of milliseconds takes cores from everyone else's
// deliveries and publishes. So a project renders one message at a time on
// a node (it never holds more than one core, and the time a render takes is
// about the CPU it used), up to perSecond of rendering a second with a burst
// of TemplateTimeLimit (one render its budget stops always fits). Renders
// are paid for after they run; a project in debt has its attempts put off
// (Throttled, keeping their retries, not counted against the endpoint's
// health) until it has paid it back. A nil *RenderShare does not limit.
type RenderShare struct {
	perSecond time.Duration
	buckets   *quota.Buckets // in seconds of rendering

	mu    sync.Mutex
	slots map[string]*renderSlot // the projects rendering or waiting to
}

// renderSlot is one project's right to render, held by one render at a time.
type renderSlot struct {
	held  chan struct{} // a token in it while a render holds the slot
	users int           // renders holding or waiting for it
}

// NewRenderShare returns a share of perSecond of rendering a second per
// project, or nil when perSecond is 0 (no limit).
func NewRenderShare(perSecond time.Duration) *RenderShare {
	if perSecond <= 0 {
		return nil
	}
	return &RenderShare{perSecond: perSecond, buckets: quota.New(perSecond.Seconds(), TemplateTimeLimit.Seconds()),
		slots: map[string]*renderSlot{}}
}

// Acquire waits until project may render (its other renders on this node
// done) and returns done, to call with the time the render took. It returns
// instead the Result of an attempt put off when the project is in debt, or
// cut off when ctx ends while it waits. Waiting does not count against the
// attempt's timeout, which should start once Acquire returns.
func (r *RenderShare) Acquire(ctx context.Context, project string) (done func(took time.Duration), putOff *dispatch.Result) {
	if r == nil {
		return func(time.Duration) {}, nil
	}
	if res := r.inDebt(project); res != nil {
		return nil, res
	}
	r.mu.Lock()
	slot := r.slots[project]
	if slot == nil {
		slot = &renderSlot{held: make(chan struct{}, 1)}
		r.slots[project] = slot
	}
	slot.users++
	r.mu.Unlock()
	select {
	case slot.held <- struct{}{}:
	case <-ctx.Done():
		r.leave(project, slot)
		res := ClassifyNetError(ctx.Err())
		return nil, &res
	}
	// The renders this one waited behind may have spent the share.
	if res := r.inDebt(project); res != nil {
		<-slot.held
		r.leave(project, slot)
		return nil, res
	}
	return func(took time.Duration) {
		<-slot.held
		r.leave(project, slot)
		r.buckets.Spend(project, took.Seconds())
	}, nil
}

// inDebt is the Result of an attempt put off while project has used more
// than its share, or nil.
func (r *RenderShare) inDebt(project string) *dispatch.Result {
	wait := r.buckets.Wait(project)
	if wait <= 0 {
		return nil
	}
	return &dispatch.Result{Throttled: true, Retryable: true, RetryAfter: wait, ErrorCode: CodeRenderShare,
		ErrorMessage: fmt.Sprintf("this project's templates took more than CARRIER_TEMPLATE_TIME_PER_SECOND (%s of rendering a second) on this node; the attempt waits %s and keeps its retries",
			r.perSecond, wait.Round(time.Millisecond))}
}

// leave drops a render from slot, and the slot once no render needs it.
func (r *RenderShare) leave(project string, slot *renderSlot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slot.users--; slot.users == 0 {
		delete(r.slots, project)
	}
}
