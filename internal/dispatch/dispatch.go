// Package dispatch is the delivery engine. It claims due deliveries with
// leases, sends each through its subscription's lane (bounded concurrency per
// subscription, so one slow endpoint never holds up the others), records every
// attempt and schedules retries, and deactivates endpoints that keep failing.
package dispatch

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"carrier/internal/backoff"
	"carrier/internal/health"
	"carrier/internal/metrics"
	"carrier/internal/store"
)

// Config tunes the engine.
type Config struct {
	// RetryBase is the backoff unit: retry n waits multiplier^(n-1) × RetryBase.
	RetryBase time.Duration
	// RetryAfterCap bounds how long a Retry-After header can push a retry out.
	RetryAfterCap time.Duration
	// LaneConcurrency is the most attempts in flight to one subscription.
	LaneConcurrency int
	// LaneBuffer is how many rounds of LaneConcurrency a lane claims ahead, so
	// a fast endpoint is never waiting for the next claim.
	LaneBuffer int
	// MaxInFlight is the most deliveries this process holds claimed (sending or
	// queued in a lane).
	MaxInFlight int
	// MaxInFlightPerProject is the most of MaxInFlight one project may hold, so
	// a tenant whose endpoints hang cannot take the budget from the others
	// (0: a quarter of MaxInFlight). One claim takes at most a quarter of it
	// for a project, so a project may briefly hold up to 1.25 times it.
	MaxInFlightPerProject int
	// SlowAttempt is how long an attempt may take before its lane counts as
	// slow: a slow lane claims no rounds ahead (LaneBuffer), so deliveries
	// queued behind an endpoint that hangs do not sit on the shared budget.
	SlowAttempt time.Duration
	// ClaimBatch is the most deliveries one claim takes.
	ClaimBatch int
	// Lease is how long a claim holds a delivery; it must exceed the longest timeout.
	Lease time.Duration
	// PollInterval is the longest the engine sleeps without looking for due work.
	PollInterval time.Duration
	// ShutdownGrace is how long in-flight attempts may finish after Stop.
	ShutdownGrace time.Duration
	// RenewInterval is how often the engine extends the leases it holds, so
	// work waiting in a busy lane never outlives its lease while this
	// process is alive. (Leases of dead processes are given back by the
	// leader's lease rescuer, internal/maintenance.)
	RenewInterval time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		RetryBase:       time.Minute,
		RetryAfterCap:   time.Hour,
		LaneConcurrency: 16,
		LaneBuffer:      8,
		MaxInFlight:     4096,
		SlowAttempt:     2 * time.Second,
		ClaimBatch:      512,
		Lease:           5 * time.Minute,
		PollInterval:    250 * time.Millisecond,
		ShutdownGrace:   10 * time.Second,

		RenewInterval: 2 * time.Second,
	}
}

// Sender performs one attempt for a job and reports what happened. The
// engine is handed one for every destination kind: the registry of kinds
// (dest.Registry), which sends each job with its subscription's kind.
type Sender interface {
	Send(ctx context.Context, job store.Job, attemptAt time.Time) Result
}

// Engine runs deliveries for one process.
type Engine struct {
	cfg     Config
	store   store.Store
	sender  Sender
	metrics *metrics.Metrics
	log     *slog.Logger
	owner   string

	wake    chan struct{}
	results chan store.Outcome
	// fifoDone says an outcome of a FIFO subscription waits to be recorded.
	fifoDone atomic.Bool
	// blockedAt is when the store last said work was due that the claim
	// before could not take (its lanes or projects at their share); zero
	// when it did not. Only the claim loop reads and writes it.
	blockedAt time.Time

	mu       sync.Mutex
	lanes    map[string]*lane
	inFlight int
	projects map[string]int        // deliveries claimed per project and not yet finished
	held     map[string]*heldLease // delivery -> the claim this engine renews
	slow     map[string]time.Time  // subscription -> until when its lane counts as slow

	sendCtx    context.Context // cancelled when the shutdown grace runs out
	cancelSend context.CancelFunc
	completer  sync.WaitGroup
	senders    sync.WaitGroup

	onDisable func()                                                    // see OnDisable
	onFailed  func(ctx context.Context, j store.Job, res Result) string // see OnFailed
}

type lane struct {
	slots   chan struct{}
	claimed int // attempts claimed for this lane and not yet finished
	project string
	sending int       // attempts being sent now
	moved   time.Time // when an attempt last started on an idle lane or finished
}

// New returns an engine that takes leases as node (the cluster's id of this
// process, whose heartbeats keep them). Run runs it.
func New(cfg Config, s store.Store, sender Sender, node string, m *metrics.Metrics, log *slog.Logger) *Engine {
	sendCtx, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg: cfg, store: s, sender: sender, metrics: m, log: log,
		owner:    node,
		wake:     make(chan struct{}, 1),
		results:  make(chan store.Outcome, cfg.MaxInFlight),
		lanes:    map[string]*lane{},
		projects: map[string]int{},
		held:     map[string]*heldLease{},
		slow:     map[string]time.Time{},
		sendCtx:  sendCtx, cancelSend: cancel,
	}
}

// Owner is the lease owner name of this engine.
func (e *Engine) Owner() string { return e.owner }

// Wake tells the engine that new work may be due.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends deliveries until ctx is cancelled, then lets in-flight
// attempts finish (up to ShutdownGrace), records them and releases every lease
// it still holds.
func (e *Engine) Run(ctx context.Context) {
	e.completer.Add(1)
	go func() {
		defer e.completer.Done()
		e.completeLoop()
	}()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renewLoop(ctx)
	}()
	e.claimLoop(ctx)
	<-renewed

	finished := make(chan struct{})
	go func() { e.senders.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(e.cfg.ShutdownGrace):
		e.cancelSend()
		<-finished
	}
	close(e.results)
	e.completer.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.ReleaseLeases(rctx, e.owner); err != nil {
		e.log.Error("release leases at shutdown", "err", err)
	}
	e.cancelSend()
}

// renewLoop extends this engine's leases every RenewInterval.
func (e *Engine) renewLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		due := e.dueLeases(now)
		if err := e.store.RenewLeases(ctx, e.owner, due, now.Add(e.cfg.Lease)); err != nil {
			if ctx.Err() == nil {
				e.log.Error("renew leases", "err", err)
			}
			continue
		}
		e.renewed(due, now)
	}
}

// heldLease is a claim this engine renews: from the claim until its outcome
// is recorded (or could not be), so a lease is never kept alive for work the
// engine has dropped.
type heldLease struct {
	token   int64
	renewed time.Time // when it was claimed or last renewed
}

// dueLeases lists the claims whose lease was taken or renewed a third of a
// lease ago or more: renewing every claim on every round wrote each held row
// every RenewInterval, thousands a second with a long backlog.
func (e *Engine) dueLeases(now time.Time) []store.Lease {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []store.Lease
	for id, h := range e.held {
		if now.Sub(h.renewed) >= e.cfg.Lease/3 {
			out = append(out, store.Lease{DeliveryID: id, Token: h.token})
		}
	}
	return out
}

// renewed notes that leases were renewed at now.
func (e *Engine) renewed(leases []store.Lease, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range leases {
		if h := e.held[l.DeliveryID]; h != nil && h.token == l.Token {
			h.renewed = now
		}
	}
}

// release stops renewing a claim, unless the delivery was claimed again since.
func (e *Engine) release(id string, token int64) {
	e.mu.Lock()
	if h := e.held[id]; h != nil && h.token == token {
		delete(e.held, id)
	}
	e.mu.Unlock()
}

func (e *Engine) claimLoop(ctx context.Context) {
	for ctx.Err() == nil {
		now := time.Now()
		n, limit, err := e.claimOnce(ctx, now)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				e.log.Error("claim deliveries", "err", err)
			}
			e.sleep(ctx, time.Second)
		case limit == 0:
			e.sleep(ctx, e.cfg.PollInterval) // at capacity: a finishing attempt wakes us
		case n == limit:
			// The batch was full: there may be more due work right away.
		default:
			e.sleep(ctx, e.idleWait(ctx, now))
		}
	}
}

// idleWait is how long to sleep when nothing more can be claimed now: until the
// next retry falls due, at most PollInterval; not at all when it fell due after
// the claim at claimedAt looked. Work that was already due then but was not
// claimable sits in a full lane or a project at its share (or another node
// holds it); a finishing attempt wakes the engine for that, and the wait is
// PollInterval. While that lasts the store is asked at most once a
// PollInterval: the engine is woken by every publish and every finished
// attempt, and asking each time (a hanging tenant's due backlog never goes
// away) cost a fifth of the process's CPU while telling it nothing new.
func (e *Engine) idleWait(ctx context.Context, claimedAt time.Time) time.Duration {
	wait := e.cfg.PollInterval
	if !e.blockedAt.IsZero() && claimedAt.Sub(e.blockedAt) < wait {
		return wait
	}
	e.blockedAt = time.Time{}
	next, ok, err := e.store.NextDueAt(ctx)
	switch {
	case err != nil || !ok:
	case next.After(claimedAt):
		wait = min(wait, max(time.Until(next), 0))
	default:
		e.blockedAt = claimedAt
	}
	return wait
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-e.wake:
	case <-t.C:
	}
}

// claimOnce claims what capacity allows and starts sending it. It returns how
// many it claimed and how many it asked for (0 when at capacity).
func (e *Engine) claimOnce(ctx context.Context, now time.Time) (n, limit int, err error) {
	e.mu.Lock()
	free := e.cfg.MaxInFlight - e.inFlight
	var exclude, excludeProjects []string
	for id, until := range e.slow {
		if now.After(until) {
			delete(e.slow, id)
		}
	}
	for id, l := range e.lanes {
		if l.sending > 0 && now.Sub(l.moved) >= e.cfg.SlowAttempt && e.cfg.SlowAttempt > 0 {
			// Attempts in flight and none finished for a while: an endpoint
			// that hangs is slow before its first attempt times out.
			e.slow[id] = now.Add(time.Minute)
		}
		if l.claimed >= e.laneCap(id) {
			exclude = append(exclude, id)
		}
	}
	share := e.projectShare()
	for p, n := range e.projects {
		if n >= share {
			excludeProjects = append(excludeProjects, p)
		}
	}
	e.mu.Unlock()
	if free <= 0 {
		return 0, 0, nil
	}
	limit = min(free, e.cfg.ClaimBatch)
	jobs, err := e.store.ClaimDeliveries(ctx, store.ClaimOptions{
		Owner: e.owner, Limit: limit, PerSubscription: e.cfg.LaneConcurrency * max(e.cfg.LaneBuffer, 1), Exclude: exclude,
		PerProject: max(share/4, 1), ExcludeProjects: excludeProjects,
		Lease: e.cfg.Lease, Now: now,
	})
	if err != nil {
		return 0, limit, err
	}
	e.mu.Lock()
	for _, j := range jobs {
		l := e.lanes[j.Subscription.ID]
		if l == nil {
			l = &lane{slots: make(chan struct{}, e.cfg.LaneConcurrency), project: j.Delivery.ProjectID}
			e.lanes[j.Subscription.ID] = l
		}
		l.claimed++
		e.held[j.Delivery.ID] = &heldLease{token: j.LeaseToken, renewed: now}
		e.inFlight++
		e.projects[l.project]++
		e.senders.Add(1)
		go e.run(j, l)
	}
	e.mu.Unlock()
	return len(jobs), limit, nil
}

// laneCap is the most deliveries the lane of subscription id holds claimed:
// LaneBuffer rounds ahead, or one round while the lane is slow. It must be
// called with e.mu held.
func (e *Engine) laneCap(id string) int {
	if _, slow := e.slow[id]; slow {
		return e.cfg.LaneConcurrency
	}
	return e.cfg.LaneConcurrency * max(e.cfg.LaneBuffer, 1)
}

// projectShare is the most deliveries one project may hold claimed.
func (e *Engine) projectShare() int {
	if e.cfg.MaxInFlightPerProject > 0 {
		return e.cfg.MaxInFlightPerProject
	}
	return max(e.cfg.MaxInFlight/4, 1)
}

// run sends one job once its lane has a free slot.
func (e *Engine) run(j store.Job, l *lane) {
	defer e.senders.Done()
	select {
	case l.slots <- struct{}{}:
	case <-e.sendCtx.Done():
		e.release(j.Delivery.ID, j.LeaseToken)
		e.finish(j.Subscription.ID, l)
		return // never sent: the lease is released at shutdown
	}
	now := time.Now()
	e.mu.Lock()
	if l.sending == 0 {
		l.moved = now
	}
	l.sending++
	e.mu.Unlock()
	res := e.sender.Send(e.sendCtx, j, now)
	e.mu.Lock()
	l.sending--
	l.moved = time.Now()
	e.mu.Unlock()
	<-l.slots
	e.markSpeed(j.Subscription.ID, time.Since(now))
	if e.sendCtx.Err() != nil && res.Retryable && res.StatusCode == 0 {
		// Cut off by shutdown, not by the endpoint: leave it to the lease release.
		e.release(j.Delivery.ID, j.LeaseToken)
		e.finish(j.Subscription.ID, l)
		return
	}
	o := e.outcome(j, res, now)
	if o.State == store.StateFailed && e.onFailed != nil {
		// Before the failure is recorded: should the process die in
		// between, the delivery is claimed again and fails again, and the
		// hook's work is done at least once.
		if note := e.onFailed(e.sendCtx, j, res); note != "" {
			o.Attempt.ErrorMessage = strings.TrimSpace(o.Attempt.ErrorMessage + " (" + note + ")")
		}
	}
	if j.Subscription.Ordering == store.OrderingFIFO {
		e.fifoDone.Store(true)
	}
	e.results <- o
	e.finish(j.Subscription.ID, l)
}

func (e *Engine) finish(subID string, l *lane) {
	e.mu.Lock()
	l.claimed--
	e.inFlight--
	if e.projects[l.project]--; e.projects[l.project] <= 0 {
		delete(e.projects, l.project)
	}
	if l.claimed == 0 {
		delete(e.lanes, subID)
	}
	e.mu.Unlock()
	e.Wake()
}

// markSpeed remembers, for a minute, that a subscription's endpoint answers
// slowly (an attempt took SlowAttempt or more), and forgets it as soon as an
// attempt is fast again.
func (e *Engine) markSpeed(subID string, took time.Duration) {
	if e.cfg.SlowAttempt <= 0 {
		return
	}
	e.mu.Lock()
	if took >= e.cfg.SlowAttempt {
		e.slow[subID] = time.Now().Add(time.Minute)
	} else {
		delete(e.slow, subID)
	}
	e.mu.Unlock()
}

// completeLoop records outcomes in batches, one transaction each.
func (e *Engine) completeLoop() {
	batch := make([]store.Outcome, 0, 512)
	for o := range e.results {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < cap(batch) {
			select {
			case o, ok := <-e.results:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		e.record(batch)
		for _, o := range batch {
			e.release(o.DeliveryID, o.LeaseToken)
		}
		if e.fifoDone.Swap(false) {
			// The next event of a FIFO key becomes its head only now that
			// this one is recorded. The wake when the attempt finished came
			// too early for it, and the claim loop would otherwise wait for
			// its poll (a second on PostgreSQL): a key moved about one event
			// a second.
			e.Wake()
		}
	}
}

func (e *Engine) record(batch []store.Outcome) {
	var signals []store.HealthSignal
	var err error
	for try := 0; try < 5; try++ {
		signals, err = e.store.CompleteAttemptsWithSignals(context.Background(), batch, time.Now())
		if err == nil {
			break
		}
		e.log.Error("record attempts", "err", err, "try", try+1)
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	if err != nil && len(batch) > 1 {
		// One bad outcome must not hold back the rest: record them one by one.
		signals = nil
		var failed int
		for _, o := range batch {
			sig, oerr := e.store.CompleteAttemptsWithSignals(context.Background(), []store.Outcome{o}, time.Now())
			if oerr != nil {
				failed++
				e.log.Error("record attempt", "delivery", o.DeliveryID, "err", oerr)
				continue
			}
			signals = append(signals, sig...)
		}
		if failed < len(batch) {
			err = nil
		}
	}
	if err != nil {
		// The leases expire and the deliveries are sent again: at least once holds.
		return
	}
	if e.metrics != nil {
		for _, o := range batch {
			e.metrics.Deliveries.WithLabelValues(o.State).Inc()
			e.metrics.AttemptDuration.WithLabelValues(o.State).Observe(float64(o.Attempt.DurationMS) / 1000)
		}
	}
	// The store applied the health signals in the transaction that recorded
	// the attempts (a Disable deactivated the subscription and wrote its
	// webhook.disabled to the outbox); here they are counted and logged.
	disabled := false
	for _, s := range signals {
		if e.metrics != nil {
			e.metrics.HealthSignals.WithLabelValues(string(s.Kind)).Inc()
		}
		switch s.Kind {
		case health.Disable:
			disabled = true
			e.log.Warn("subscription disabled", "project", s.ProjectID, "subscription", s.SubscriptionID, "reason", s.Reason)
		case health.Degraded:
			e.log.Warn("subscription degraded", "project", s.ProjectID, "subscription", s.SubscriptionID, "consecutive_failures", s.Failures, "failing_since", s.Since)
		case health.Recovered:
			e.log.Info("subscription recovered", "project", s.ProjectID, "subscription", s.SubscriptionID, "failed_attempts", s.Failures, "failing_since", s.Since)
		}
	}
	// The relay publishes webhook.disabled from the outbox, and is woken here
	// so that it need not wait for its slow poll.
	if disabled && e.onDisable != nil {
		e.onDisable()
	}
}

// OnDisable sets f to be called, from the engine's goroutine, after attempts
// deactivated subscriptions (their webhook.disabled events then wait in the
// outbox). f must not block. Call it before Run.
func (e *Engine) OnDisable(f func()) { e.onDisable = f }

// OnFailed sets f to be called, from the attempt's goroutine, when an
// attempt leaves its delivery failed for good (no retry left, or not
// retryable), before that is recorded; what f returns is added to the
// attempt's error message. SNS subscriptions move such messages to their
// RedrivePolicy's dead-letter queue with it. Call it before Run.
func (e *Engine) OnFailed(f func(ctx context.Context, j store.Job, res Result) string) {
	e.onFailed = f
}

// outcome turns an attempt's result into the delivery's next state.
func (e *Engine) outcome(j store.Job, res Result, at time.Time) store.Outcome {
	d := j.Delivery
	sub := j.Subscription
	url := sub.URL
	if res.URL != "" {
		url = res.URL
	}
	o := store.Outcome{
		DeliveryID: d.ID, ProjectID: d.ProjectID, SubscriptionID: sub.ID, LeaseOwner: j.LeaseOwner, LeaseToken: j.LeaseToken,
		Attempt: store.Attempt{
			ID: uuid.Must(uuid.NewV7()).String(), DeliveryID: d.ID, ProjectID: d.ProjectID, URL: url,
			StatusCode: res.StatusCode, DurationMS: res.Duration.Milliseconds(), ErrorCode: res.ErrorCode,
			ErrorMessage: res.ErrorMessage, ResponseBody: res.ResponseBody, ResponseHeaders: res.ResponseHeaders, CreatedAt: at.UTC(),
		},
		Disable: res.Disable, DisableReason: res.ErrorMessage,
	}
	switch {
	case res.Delivered:
		o.State = store.StateDelivered
	case res.Throttled:
		// The destination's rate limit: wait as asked, and keep the retry.
		o.State, o.SpareRetry = store.StateRetrying, true
		o.NextAttemptAt = at.Add(res.Duration + max(min(res.RetryAfter, e.cfg.RetryAfterCap), time.Second))
	case res.Retryable && d.Attempts-d.BudgetStart < sub.MaxRetries:
		retry := d.Attempts - d.BudgetStart + 1
		delay := backoff.Delay(retry, sub.BackoffMultiplier, e.cfg.RetryBase, rand.Float64())
		if res.RetryAfter > 0 {
			delay = max(delay, min(res.RetryAfter, e.cfg.RetryAfterCap))
		}
		o.State = store.StateRetrying
		o.NextAttemptAt = at.Add(res.Duration + delay)
	default:
		o.State = store.StateFailed
	}
	return o
}
