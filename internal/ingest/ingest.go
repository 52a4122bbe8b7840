// Package ingest is the one way events enter Carrier: it validates them,
// matches them to subscriptions and commits each event with its deliveries
// before anyone is told it was accepted. Concurrent publishes share one
// transaction (group commit), so they also share one fsync.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"carrier/internal/clock"
	"carrier/internal/match"
	"carrier/internal/metrics"
	"carrier/internal/store"
)

// IdempotencyWindow is how long an idempotency key deduplicates publishes.
const IdempotencyWindow = 24 * time.Hour

// DeduplicationWindow is how long a deduplication id deduplicates publishes
// (as in SNS FIFO topics).
const DeduplicationWindow = 5 * time.Minute

// MaxBatch is the most events one group commit takes.
const MaxBatch = 1000

// ErrClosed is returned by Publish after the publisher has stopped.
var ErrClosed = errors.New("publisher is shut down")

// ValidationError says which field of an event is wrong and why.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Input is an event to publish.
type Input struct {
	ProjectID      string
	Type           string
	Subject        string
	Data           json.RawMessage
	Attributes     Attributes
	IdempotencyKey string
	// OrderingKey orders the event's deliveries to FIFO subscriptions (empty:
	// the subject, else one key for the subscription).
	OrderingKey string
	// DeduplicationID makes a publish within DeduplicationWindow of an earlier
	// one with the same id in the project a duplicate of it.
	DeduplicationID string
	// OnlySubscription, when set, sends the event to that subscription alone,
	// without matching (a webhook's test event).
	OnlySubscription string
	// EventID, when set, is the id the event gets (a spooled publish keeps the
	// id it was acknowledged with); otherwise a new one is made.
	EventID string
	// CapFanout refuses the publish with a *FanoutError when it matches more
	// than the publisher's MaxFanout subscriptions. The transports set it on
	// what a tenant publishes; system events, replays of publishes already
	// acknowledged and test events are not refused.
	CapFanout bool `json:",omitempty"`
}

// Result is what Publish did.
type Result struct {
	EventID    string
	Deliveries int
	Duplicate  bool
}

var typePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:\-/]*$`)

// Validate checks an input's fields.
func Validate(in Input) error {
	switch {
	case in.Type == "":
		return &ValidationError{"type", "is required"}
	case len(in.Type) > 255:
		return &ValidationError{"type", "must be at most 255 characters"}
	case !typePattern.MatchString(in.Type):
		return &ValidationError{"type", "may contain only letters, digits and . _ : - / and must start with a letter or digit"}
	case len(in.Subject) > 255:
		return &ValidationError{"subject", "must be at most 255 characters"}
	case len(in.IdempotencyKey) > 255:
		return &ValidationError{"idempotency_key", "must be at most 255 characters"}
	case strings.HasPrefix(in.IdempotencyKey, store.DedupKeyPrefix):
		return &ValidationError{"idempotency_key", "must not start with " + store.DedupKeyPrefix}
	case len(in.OrderingKey) > 128:
		return &ValidationError{"ordering_key", "must be at most 128 characters"}
	case len(in.DeduplicationID) > 128:
		return &ValidationError{"deduplication_id", "must be at most 128 characters"}
	case len(in.Attributes) > 50:
		return &ValidationError{"attributes", "must have at most 50 entries"}
	}
	if len(in.Data) > 0 && !json.Valid(in.Data) {
		return &ValidationError{"data", "must be valid JSON"}
	}
	return checkStorable(in)
}

// checkStorable refuses text either engine would refuse (see CheckText), so
// an event that passes Validate is stored alike on SQLite and PostgreSQL.
func checkStorable(in Input) error {
	for _, f := range [...]struct{ name, value string }{
		{"type", in.Type}, {"subject", in.Subject}, {"idempotency_key", in.IdempotencyKey},
		{"ordering_key", in.OrderingKey}, {"deduplication_id", in.DeduplicationID},
	} {
		if err := CheckText(f.name, f.value); err != nil {
			return err
		}
	}
	if err := CheckTexts("attributes", in.Attributes); err != nil {
		return err
	}
	return CheckJSON("data", in.Data)
}

type request struct {
	in   Input
	done chan reply
	size int64 // what it holds of Backlog.MaxBytes until committed
}

type reply struct {
	res Result
	err error
}

// Inserter is what the publisher needs of the store: one transaction that
// inserts a group of events with their deliveries.
type Inserter interface {
	InsertEvents(ctx context.Context, events []store.NewEvent, idemSince time.Time) ([]store.InsertResult, error)
}

// Publisher commits events in groups.
type Publisher struct {
	store      Inserter
	matcher    *match.Matcher
	metrics    *metrics.Metrics
	reqs       chan *request
	committers int
	// OnCommit is called after each commit that created deliveries (to wake the dispatcher).
	OnCommit func()
	// MaxFanout is the most deliveries one publish with CapFanout may create
	// (CARRIER_MAX_FANOUT_PER_EVENT; 0: no limit). Set before Start.
	MaxFanout int
	// Backlog bounds what waits to be committed; set before Start.
	Backlog Backlog
	pending pendingBytes

	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
	wg      sync.WaitGroup
}

// NewPublisher returns a publisher; committers is how many group commits may
// run at once (1 for SQLite, whose writes are serialised anyway).
func NewPublisher(s Inserter, m *match.Matcher, mx *metrics.Metrics, committers int) *Publisher {
	if committers < 1 {
		committers = 1
	}
	return &Publisher{store: s, matcher: m, metrics: mx, reqs: make(chan *request, 4*MaxBatch), committers: committers, stopped: make(chan struct{})}
}

// Start runs the committers until Close.
func (p *Publisher) Start() {
	for i := 0; i < p.committers; i++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.commitLoop()
		}()
	}
}

// Close stops accepting events, commits what is queued and waits for the committers.
func (p *Publisher) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.reqs)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Publish validates, matches and durably commits one event, returning once it
// is committed (or failed). A cancelled ctx stops the wait, not the commit.
// When the store falls behind, so that the publish cannot join the commit
// queue within Backlog.MaxWait (the queue is full, or the bytes waiting in
// it are at Backlog.MaxBytes), it is refused with *OverloadedError instead
// of waiting, and memory, without bound.
func (p *Publisher) Publish(ctx context.Context, in Input) (Result, error) {
	if err := Validate(in); err != nil {
		return Result{}, err
	}
	r := &request{in: in, done: make(chan reply, 1), size: int64(len(in.Data) + len(in.Subject) + len(in.Type) + 256)}
	for k, v := range in.Attributes {
		r.size += int64(len(k) + len(v))
	}
	wait := p.Backlog.wait()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	if err := p.pending.acquire(ctx, r.size, p.Backlog.MaxBytes, deadline.C); err != nil {
		if oe, ok := err.(*OverloadedError); ok {
			oe.Waited = wait
		}
		return Result{}, err
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.pending.release(r.size)
		return Result{}, ErrClosed
	}
	select {
	case p.reqs <- r:
	case <-deadline.C:
		p.mu.RUnlock()
		p.pending.release(r.size)
		return Result{}, &OverloadedError{Waited: wait}
	case <-ctx.Done():
		p.mu.RUnlock()
		p.pending.release(r.size)
		return Result{}, ctx.Err()
	}
	p.mu.RUnlock()
	select {
	case rep := <-r.done:
		return rep.res, rep.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (p *Publisher) commitLoop() {
	batch := make([]*request, 0, MaxBatch)
	for first := range p.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < MaxBatch {
			select {
			case r, ok := <-p.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		p.commit(batch)
	}
}

// Ordered says whether a FIFO subscription wants the event of in: such an
// event must not be spooled while the store is unavailable, since on replay it
// would be stored after the same key's events acknowledged later, on this node
// or another.
func (p *Publisher) Ordered(in Input) bool {
	return p.matcher.Index().MatchesFIFO(in.ProjectID, match.Event{Type: in.Type, Subject: in.Subject, Attributes: in.Attributes, Data: in.Data})
}

func (p *Publisher) commit(batch []*request) {
	defer func() {
		for _, r := range batch {
			p.pending.release(r.size)
		}
	}()
	ix := p.matcher.Index()
	now := clock.Now()
	events := make([]store.NewEvent, 0, len(batch))
	kept := batch[:0:0] // the requests of events, in order
	for _, r := range batch {
		in := r.in
		var subs []string
		if in.OnlySubscription != "" {
			subs = []string{in.OnlySubscription}
		} else {
			subs = ix.Match(in.ProjectID, match.Event{Type: in.Type, Subject: in.Subject, Attributes: in.Attributes, Data: in.Data})
		}
		if in.CapFanout && p.MaxFanout > 0 && len(subs) > p.MaxFanout {
			r.done <- reply{err: &FanoutError{Count: len(subs), Max: p.MaxFanout}}
			continue
		}
		ids := make([]string, len(subs))
		for k := range subs {
			ids[k] = clock.NewID()
		}
		data := in.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		id := in.EventID
		if id == "" {
			id = clock.NewID()
		}
		kept = append(kept, r)
		events = append(events, store.NewEvent{
			Event: store.Event{ID: id, ProjectID: in.ProjectID, Type: in.Type, Subject: in.Subject, Data: data,
				Attributes: in.Attributes, IdempotencyKey: in.IdempotencyKey, CreatedAt: now},
			SubscriptionIDs: subs,
			DeliveryIDs:     ids,
			OrderingKey:     in.OrderingKey,
			DeduplicationID: in.DeduplicationID,
			DedupSince:      now.Add(-DeduplicationWindow),
		})
	}
	if len(events) == 0 {
		return
	}
	results, errs := p.insert(events, now.Add(-IdempotencyWindow))
	created, failed := false, false
	for i, r := range kept {
		if err := errs[i]; err != nil {
			failed = true
			r.done <- reply{err: fmt.Errorf("publish: %w", err)}
			continue
		}
		res := results[i]
		if res.Err != nil {
			r.done <- reply{err: fmt.Errorf("publish: %w", res.Err)}
			continue
		}
		if !res.Duplicate && res.Deliveries > 0 {
			created = true
		}
		if p.metrics != nil {
			p.metrics.EventsAccepted.WithLabelValues(fmt.Sprint(res.Duplicate)).Inc()
		}
		r.done <- reply{res: Result{EventID: res.EventID, Deliveries: res.Deliveries, Duplicate: res.Duplicate}}
	}
	if p.metrics != nil && !failed {
		p.metrics.IngestBatch.Observe(float64(len(batch)))
	}
	if created && p.OnCommit != nil {
		p.OnCommit()
	}
}

// insert commits events in one transaction and returns each event's result or
// error. Publishes of every project share a batch, so an event the store
// rejects (a constraint or data error that validation did not foresee) must
// not fail the others: the batch is split in halves, each committed on its
// own, until only the event at fault is left with the error. An unavailable
// store fails the whole batch at once: retrying it would only wait longer.
func (p *Publisher) insert(events []store.NewEvent, idemSince time.Time) ([]store.InsertResult, []error) {
	errs := make([]error, len(events))
	results, err := p.store.InsertEvents(context.Background(), events, idemSince)
	if err == nil {
		return results, errs
	}
	if len(events) == 1 || store.IsUnavailable(err) {
		for i := range errs {
			errs[i] = err
		}
		return make([]store.InsertResult, len(events)), errs
	}
	// The earlier half first: an idempotency key taken by an event of it makes
	// a later event with the same key a duplicate, as in one transaction.
	mid := len(events) / 2
	r1, e1 := p.insert(events[:mid], idemSince)
	r2, e2 := p.insert(events[mid:], idemSince)
	return append(r1, r2...), append(e1, e2...)
}
