package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"carrier/internal/provider"
	"carrier/internal/store"
)

// The fallback poller and the expirer: ExpireDue and PollDue are rounds of
// the leader-only maintenance services (internal/maintenance), so one node
// of the cluster runs them at a time.

// ExpireDue expires every unfinished task older than its maximum age.
func (s *Service) ExpireDue(ctx context.Context) error {
	for range 100 {
		tasks, err := s.store.TasksToExpire(ctx, now(), 100)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			at := now()
			t.Status, t.CompletedAt, t.UpdatedAt, t.LeaseOwner, t.LeaseUntil = store.TaskExpired, &at, at, "", time.Time{}
			if t.ErrorCode == "" {
				t.ErrorCode = "expired"
			}
			t.ErrorMessage = fmt.Sprintf("no result within the maximum age of %v", s.cfg.MaxAge)
			updated, err := s.update(ctx, t, entryOf(t, store.TaskFinished, t.ErrorMessage, nil))
			if errors.Is(err, store.ErrConflict) {
				continue // decided meanwhile
			}
			if err != nil {
				return err
			}
			s.countTask(updated.Status, "")
		}
		if len(tasks) < 100 {
			return nil
		}
	}
	return nil
}

// PollDue asks the provider about submitted tasks whose pingback is overdue,
// up to the provider's batch limit of ids a request, within the upstream request budget.
func (s *Service) PollDue(ctx context.Context) error {
	for ctx.Err() == nil {
		if !s.takeBudget(ctx) {
			return nil
		}
		// Tasks coming due shortly ride along with overdue ones, so they share
		// requests; nothing is asked before at least one task is overdue.
		at := now()
		horizon := at.Add(min(s.cfg.PollInterval/2, s.cfg.CallbackTimeout/4))
		tasks, err := s.store.TasksToPoll(ctx, horizon, s.upstream.BatchLimit())
		if err != nil {
			s.returnBudget(ctx)
			return err
		}
		if len(tasks) == 0 || tasks[0].NextPollAt.After(at) {
			s.returnBudget(ctx)
			return nil
		}
		ids := make([]string, len(tasks))
		for i, t := range tasks {
			ids[i] = t.ProviderID
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		results, err := s.upstream.GetMany(pctx, ids)
		cancel()
		s.countUpstream("get", err)
		if s.upstream.IsBatchMismatch(err) {
			// An answer contained the batch separator: ask one by one.
			results, err = s.getEach(ctx, ids)
		}
		if err != nil {
			// Try the whole batch again after the interval.
			for _, t := range tasks {
				s.deferPoll(ctx, t, err)
			}
			if s.upstream.IsTransient(err) {
				return nil
			}
			return fmt.Errorf("poll provider: %w", err)
		}
		for i, t := range tasks {
			r := results[i]
			code := r.Answer()
			out, rej, err := s.apply(ctx, t, result{providerID: t.ProviderID, code: code, cost: r.Cost, via: store.ViaPoll,
				detail: map[string]any{"answer": code}})
			switch {
			case err != nil:
				s.log.Warn("record poll result", "task", t.ID, "err", err)
			case rej != nil:
				s.log.Warn("poll result rejected", "task", t.ID, "reason", rej.message)
			case out == OutcomeNotReady:
				s.deferPoll(ctx, t, nil)
			}
		}
		if len(tasks) < s.upstream.BatchLimit() {
			return nil
		}
	}
	return nil
}

// getEach asks about each id with its own request, within the budget; ids
// beyond the budget come back not ready.
func (s *Service) getEach(ctx context.Context, ids []string) ([]provider.Result, error) {
	out := make([]provider.Result, len(ids))
	for i, id := range ids {
		out[i] = provider.Result{ID: id}
		if !s.takeBudget(ctx) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := s.upstream.Get(pctx, id)
		cancel()
		s.countUpstream("get", err)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// deferPoll moves a task's next poll one interval on.
func (s *Service) deferPoll(ctx context.Context, t store.Task, cause error) {
	t.Polls++
	t.NextPollAt = now().Add(s.cfg.PollInterval)
	if cause != nil {
		t.ErrorCode = s.codeOf(cause)
	}
	if _, err := s.store.UpdateTask(ctx, t, t.Version, nil); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("defer poll", "task", t.ID, "err", err)
	}
}

// PollBudget names the fallback poller's budget of upstream requests per
// minute, shared by the whole cluster (CARRIER_POLL_BUDGET).
const PollBudget = "task-poll"

// takeBudget spends one upstream request of this minute's budget, counted
// in the store so that the budget holds for the cluster however leadership
// moves. A store that cannot be asked spends nothing.
func (s *Service) takeBudget(ctx context.Context) bool {
	ok, err := s.store.SpendBudget(ctx, PollBudget, time.Now().UTC().Truncate(time.Minute), 1, s.cfg.PollBudget)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("poll budget", "err", err)
	}
	return err == nil && ok
}

// returnBudget gives back a spend that sent no request.
func (s *Service) returnBudget(ctx context.Context) {
	if err := s.store.RefundBudget(ctx, PollBudget, time.Now().UTC().Truncate(time.Minute), 1); err != nil && ctx.Err() == nil {
		s.log.Warn("poll budget refund", "err", err)
	}
}
