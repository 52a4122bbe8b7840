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

	"carrier/internal/ingest"
	"carrier/internal/metrics"
	"carrier/internal/spool"
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

// Spooler writes callbacks and publishes to the spool and replays them.
type Spooler struct {
	spool   *spool.Spool
	tasks   *task.Service // nil when async tasks are off
	pub     *ingest.Publisher
	ping    func(ctx context.Context) error
	metrics *metrics.Metrics
	log     *slog.Logger
	wake    chan struct{}
}

// New returns a spooler over an open spool. ping tells whether the store answers.
func New(sp *spool.Spool, tasks *task.Service, pub *ingest.Publisher, ping func(ctx context.Context) error, mx *metrics.Metrics, log *slog.Logger) *Spooler {
	s := &Spooler{spool: sp, tasks: tasks, pub: pub, ping: ping, metrics: mx, log: log, wake: make(chan struct{}, 1)}
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
// the first one the store cannot take yet.
func (s *Spooler) ReplayOnce(ctx context.Context) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := s.ping(pctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("store not reachable: %w", err)
	}
	defer s.gauge()
	return s.spool.Replay(ctx, func(r spool.Record) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.replay(rctx, r)
	})
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
		_, err := s.pub.Publish(ctx, in)
		var verr *ingest.ValidationError
		if errors.As(err, &verr) {
			s.log.Error("spooled publish invalid; dropped", "seq", r.Seq, "err", err)
			return nil
		}
		return err
	}
	s.log.Error("spool record of unknown kind dropped", "seq", r.Seq, "kind", r.Kind)
	return nil
}
