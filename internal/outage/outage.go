// Package outage keeps Carrier's promise "persist before acknowledge" while
// its store cannot be written (PostgreSQL restarting, a full disk): pingbacks
// and publishes go to an fsync'd local spool and are acknowledged, and a
// replayer moves them into the store, in order, once it is back.
package outage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"carrier/internal/clock"
	"carrier/internal/ingest"
	"carrier/internal/metrics"
	"carrier/internal/spool"
	"carrier/internal/store"
	"carrier/internal/task"
)

// Record kinds in the spool.
const (
	KindCallback = "callback"
	KindPublish  = "publish"
)

type callbackRecord struct {
	Token string           `json:"token"`
	Raw   task.RawCallback `json:"raw"`
}

// Dead letters of the spool: a record the store refused for good.
const (
	DeadLetterSource = "spool"
	ReasonRejected   = "rejected_by_store"
)

// Store is what the spooler needs of the store: whether it answers, and where
// to keep a record it refuses for good.
type Store interface {
	Ping(ctx context.Context) error
	TaskByTokenHash(ctx context.Context, hash string) (store.Task, error)
	CreateDeadLetter(ctx context.Context, d store.DeadLetter) error
	GetDeadLetter(ctx context.Context, projectID, id string) (store.DeadLetter, error)
	UpdateDeadLetter(ctx context.Context, d store.DeadLetter) error
}

// Spooler writes callbacks and publishes to the spool and replays them.
type Spooler struct {
	spool   *spool.Spool
	tasks   *task.Service // nil when async tasks are off
	pub     *ingest.Publisher
	store   Store
	metrics *metrics.Metrics
	log     *slog.Logger
	wake    chan struct{}
}

// New returns a spooler over an open spool.
func New(sp *spool.Spool, tasks *task.Service, pub *ingest.Publisher, st Store, mx *metrics.Metrics, log *slog.Logger) *Spooler {
	s := &Spooler{spool: sp, tasks: tasks, pub: pub, store: st, metrics: mx, log: log, wake: make(chan struct{}, 1)}
	s.gauge()
	return s
}

// Callback spools a pingback for token.
func (s *Spooler) Callback(token string, raw task.RawCallback) error {
	return s.append(KindCallback, callbackRecord{Token: token, Raw: raw})
}

// Publish spools an event to publish; in.EventID must be set.
func (s *Spooler) Publish(in ingest.Input) error {
	if in.EventID == "" {
		return errors.New("spool publish: event id is required")
	}
	return s.append(KindPublish, in)
}

// Pending is the number of spooled writes not yet replayed.
func (s *Spooler) Pending() int { return s.spool.Len() }

func (s *Spooler) append(kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("spool %s: %w", kind, err)
	}
	if _, err := s.spool.Append(kind, b); err != nil {
		return fmt.Errorf("spool %s: %w", kind, err)
	}
	s.gauge()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *Spooler) gauge() {
	if s.metrics != nil {
		s.metrics.SpoolPending.Set(float64(s.spool.Len()))
	}
}

// Run replays the spool whenever it holds records and the store answers,
// checking every interval, until ctx is done.
func (s *Spooler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.spool.Len() > 0 {
			if n, err := s.ReplayOnce(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("spool replay stopped; will try again", "replayed", n, "pending", s.spool.Len(), "err", err)
			} else if n > 0 {
				s.log.Info("spool replayed into the store", "replayed", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			// A fresh record means the store just failed: give it a moment.
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

// ReplayOnce moves spooled records into the store, oldest first, stopping at
// the first one the store cannot take yet. A record the store refuses for
// good becomes a dead letter and replay goes on past it: it would be refused
// on every try, and every later record (other tenants' included) would wait
// behind it for ever.
func (s *Spooler) ReplayOnce(ctx context.Context) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := s.store.Ping(pctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("store not reachable: %w", err)
	}
	defer s.gauge()
	return s.spool.Replay(ctx, func(r spool.Record) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := s.replay(rctx, r)
		if err == nil || !refused(ctx, err) {
			return err
		}
		return s.deadLetter(rctx, r, err)
	})
}

// refused tells whether a replay error is for good: not an unavailable store,
// not a shutdown, not the replay being stopped.
func refused(ctx context.Context, err error) bool {
	return !store.IsUnavailable(err) && !errors.Is(err, ingest.ErrClosed) && ctx.Err() == nil &&
		!errors.Is(err, context.Canceled)
}

// deadLetter keeps a refused record as a dead letter of its project, visible
// in /v1/dead-letters and counted in the dead-letter metrics. A pingback keeps
// its raw request and task, so it can be redriven like any dead pingback.
func (s *Spooler) deadLetter(ctx context.Context, r spool.Record, cause error) error {
	now := time.Now().UTC()
	d := store.DeadLetter{ID: clock.NewID(), Source: DeadLetterSource, Reason: ReasonRejected,
		Message: ingest.Storable(fmt.Sprintf("spooled %s refused by the store: %v", r.Kind, cause)),
		Status:  store.DeadLetterPending, Body: ingest.Storable(string(r.Payload)), ContentType: "application/json",
		CreatedAt: now, UpdatedAt: now}
	switch r.Kind {
	case KindPublish:
		var in ingest.Input
		if json.Unmarshal(r.Payload, &in) == nil {
			d.ProjectID = in.ProjectID
		}
	case KindCallback:
		var c callbackRecord
		if json.Unmarshal(r.Payload, &c) == nil {
			d.Method, d.Query, d.ContentType = c.Raw.Method, ingest.Storable(c.Raw.Query), ingest.Storable(c.Raw.ContentType)
			d.Body = ingest.Storable(c.Raw.Body)
			t, err := s.store.TaskByTokenHash(ctx, task.HashToken(c.Token))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("dead letter for spool record %d: find task: %w", r.Seq, err)
			}
			d.ProjectID, d.TaskID = t.ProjectID, t.ID
		}
	}
	if err := s.store.CreateDeadLetter(ctx, d); err != nil {
		if store.IsUnavailable(err) {
			return fmt.Errorf("dead letter for spool record %d: %w", r.Seq, err)
		}
		// Not even the sanitised copy is accepted: keep it in the log rather
		// than stall every record behind it.
		s.log.Error("spooled record refused by the store, and so was its dead letter; dropped", "seq", r.Seq, "kind", r.Kind,
			"payload", string(r.Payload), "err", cause, "dead_letter_err", err)
		return nil
	}
	s.log.Error("spooled record refused by the store; kept as a dead letter", "seq", r.Seq, "kind", r.Kind,
		"project", d.ProjectID, "dead_letter", d.ID, "err", cause)
	if s.metrics != nil {
		s.metrics.DeadLetters.WithLabelValues(ReasonRejected).Inc()
	}
	return nil
}

func (s *Spooler) replay(ctx context.Context, r spool.Record) error {
	switch r.Kind {
	case KindCallback:
		var c callbackRecord
		if err := json.Unmarshal(r.Payload, &c); err != nil {
			s.log.Error("spooled callback unreadable; dropped", "seq", r.Seq, "err", err)
			return nil
		}
		if s.tasks == nil {
			s.log.Error("spooled callback dropped: async tasks are not configured", "seq", r.Seq)
			return nil
		}
		if err := task.CheckRaw(c.Raw); err != nil {
			return err // spooled before the door checked it: a dead letter
		}
		_, err := s.tasks.HandleCallback(ctx, c.Token, c.Raw)
		if errors.Is(err, task.ErrUnknownToken) {
			// Accepted while the store could not say whether the token exists.
			s.log.Warn("spooled callback for an unknown token dropped", "seq", r.Seq)
			return nil
		}
		return err
	case KindPublish:
		var in ingest.Input
		if err := json.Unmarshal(r.Payload, &in); err != nil {
			s.log.Error("spooled publish unreadable; dropped", "seq", r.Seq, "err", err)
			return nil
		}
		// An invalid publish (spooled before validation refused NUL and
		// invalid UTF-8) comes back as a validation error: a dead letter too.
		_, err := s.pub.Publish(ctx, in)
		return err
	}
	s.log.Error("spool record of unknown kind dropped", "seq", r.Seq, "kind", r.Kind)
	return nil
}

// ErrNotRedrivable is returned by Redrive for a dead letter that needs the
// async tasks service (a pingback's) while it is off.
var ErrNotRedrivable = errors.New("this dead letter is a pingback's, and async tasks are off (no CARRIER_PROVIDER_URL)")

// IsSpooledPublish tells whether a dead letter holds a spooled publish (its
// body the ingest.Input as spooled); a spooled pingback keeps its request's
// method, as every dead pingback does.
func IsSpooledPublish(d store.DeadLetter) bool {
	return d.Source == DeadLetterSource && d.Method == "" && d.TaskID == ""
}

// Redrive processes a project's dead letter again: a spooled publish is
// published again (with the event id and idempotency key it was
// acknowledged with, so redriving twice stores it once), every other dead
// letter goes to the tasks service. On success the dead letter is marked
// redriven; when the publish is still refused it stays pending with the
// refusal as its last error, and a *task.RedriveError is returned. An
// unavailable store is returned as it is, changing nothing.
func (s *Spooler) Redrive(ctx context.Context, projectID, id string) (store.DeadLetter, error) {
	d, err := s.store.GetDeadLetter(ctx, projectID, id)
	if err != nil {
		return d, err
	}
	if !IsSpooledPublish(d) {
		if s.tasks == nil {
			return d, ErrNotRedrivable
		}
		return s.tasks.Redrive(ctx, projectID, id)
	}
	if d.Status != store.DeadLetterPending {
		return d, task.ErrAlreadyRedriven
	}
	var in ingest.Input
	err = json.Unmarshal([]byte(d.Body), &in)
	switch {
	case err != nil:
		err = &ingest.ValidationError{Field: "body", Message: "is not a spooled publish: " + err.Error()}
	case in.ProjectID != projectID:
		err = &ingest.ValidationError{Field: "body", Message: "is a publish of another project"}
	default:
		// Acknowledged when it was spooled: stored whatever its fan-out now.
		in.CapFanout = false
		_, err = s.pub.Publish(ctx, in)
	}
	if err != nil && !refused(ctx, err) {
		return d, err
	}
	at := time.Now().UTC()
	d.Redrives++
	d.UpdatedAt = at
	if err != nil {
		d.LastError = ingest.Storable(err.Error())
		if uerr := s.store.UpdateDeadLetter(ctx, d); uerr != nil {
			return d, uerr
		}
		return d, &task.RedriveError{Reason: ReasonRejected, Message: err.Error()}
	}
	d.Status, d.RedrivenAt, d.LastError = store.DeadLetterRedriven, &at, ""
	if err := s.store.UpdateDeadLetter(ctx, d); err != nil {
		return d, err
	}
	return d, nil
}
