package task

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"carrier/internal/backoff"
	"carrier/internal/provider"
	"carrier/internal/store"
)

func (s *Service) submitLoop(ctx context.Context) {
	sem := make(chan struct{}, s.cfg.SubmitConcurrency)
	// Submissions in flight do not end with ctx: a provider that accepted a
	// task has charged for it, and an answer abandoned at shutdown means the
	// task is submitted (and paid for) again after the restart, and the first
	// submission's result is dead-lettered. They get the shutdown grace,
	// counted from the signal, to be answered and recorded; what is still
	// waiting then is cut off.
	inFlight, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(s.cfg.ShutdownGrace, cutOff) })
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		stopGrace()
		cutOff()
	}()
	for ctx.Err() == nil {
		free := s.cfg.SubmitConcurrency - len(sem)
		var tasks []store.Task
		tokens := map[string]string{} // hash -> token of this claim's tries
		if free > 0 {
			// A fresh token per try: only the provider that receives this
			// submission learns it, and the claim makes its hash durable
			// before the provider can call back.
			hashes := make([]string, free)
			for i := range hashes {
				token := newToken()
				hashes[i] = HashToken(token)
				tokens[hashes[i]] = token
			}
			var err error
			tasks, err = s.store.ClaimTasksToSubmit(ctx, s.owner, hashes, time.Minute, now())
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claim tasks to submit", "err", err)
			}
		}
		for _, t := range tasks {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break // nothing new starts after the signal; these are tried again once their lease runs out
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := s.submit(inFlight, t, tokens[t.CallbackTokenHash]); err != nil {
					s.log.Warn("submit task", "task", t.ID, "err", err)
				}
			}()
		}
		if len(tasks) == free && free > 0 {
			continue // there may be more due right now
		}
		wait := s.cfg.Tick
		if at, ok, err := s.store.NextTaskDueAt(ctx); err == nil && ok {
			if d := time.Until(at); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// submit sends one claimed task to the provider, with the pingback token its
// claim recorded, and records what the provider said. ctx ends only when the
// shutdown grace runs out (see submitLoop).
func (s *Service) submit(ctx context.Context, t store.Task, token string) error {
	sub := provider.Submission{Method: t.Method, Params: t.Params}
	if s.cfg.PublicURL != "" {
		sub.Pingback = s.cfg.PublicURL + "/callbacks/" + token
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	pid, serr := s.upstream.Submit(sctx, sub)
	cancel()
	s.countUpstream("submit", serr)
	if serr != nil && ctx.Err() != nil {
		s.log.Warn("submission cut off by the end of the shutdown grace (CARRIER_SHUTDOWN_GRACE); the task is submitted again once its lease runs out",
			"task", t.ID)
		return nil
	}
	// The answer is in: record it even if the grace runs out meanwhile.
	ctx, cancelRecord := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRecord()
	at := now()
	t.LeaseOwner, t.LeaseUntil, t.UpdatedAt = "", time.Time{}, at
	var entry store.TaskEntry
	switch {
	case serr == nil:
		t.Status, t.ProviderID, t.SubmittedAt = store.TaskSubmitted, pid, &at
		t.NextPollAt = at.Add(s.cfg.CallbackTimeout)
		t.ErrorCode, t.ErrorMessage = "", ""
		entry = entryOf(t, store.TaskSubmitDone, "accepted by the provider as "+pid, map[string]any{"provider_id": pid, "attempt": t.SubmitAttempts})
	case s.upstream.IsTransient(serr):
		t.ErrorCode, t.ErrorMessage = s.codeOf(serr), serr.Error()
		t.NextSubmitAt = at.Add(backoff.Delay(t.SubmitAttempts, 2, s.cfg.SubmitRetryBase, rand.Float64()))
		entry = entryOf(t, store.TaskSubmitError, "transient error, retrying: "+serr.Error(),
			map[string]any{"error_code": t.ErrorCode, "attempt": t.SubmitAttempts, "next_submit_at": t.NextSubmitAt.Format(time.RFC3339Nano)})
	default:
		t.Status, t.CompletedAt = store.TaskFailed, &at
		t.ErrorCode, t.ErrorMessage = s.codeOf(serr), serr.Error()
		entry = entryOf(t, store.TaskSubmitError, "permanent error: "+serr.Error(), map[string]any{"error_code": t.ErrorCode, "attempt": t.SubmitAttempts})
	}
	t, err := s.update(ctx, t, entry)
	if err != nil {
		// Expired meanwhile (conflict), or the store failed: the lease runs out
		// and the poller or a new try sorts it out.
		return fmt.Errorf("record submission result: %w", err)
	}
	if t.Status == store.TaskSubmitted && !s.cfg.ManualRedrive {
		s.redriveForTask(ctx, t)
	}
	return nil
}

// redriveForTask retries the task's pending dead letters now that its provider
// id is known: a pingback that beat the submission answer completes the task.
func (s *Service) redriveForTask(ctx context.Context, t store.Task) {
	dls, err := s.store.ListDeadLetters(ctx, store.DeadLetterFilter{ProjectID: t.ProjectID, TaskID: t.ID, Status: store.DeadLetterPending, Limit: 10})
	if err != nil {
		s.log.Warn("list dead letters of task", "task", t.ID, "err", err)
		return
	}
	for _, d := range dls {
		if _, err := s.Redrive(ctx, t.ProjectID, d.ID); err != nil {
			s.log.Info("automatic redrive did not process dead letter", "dead_letter", d.ID, "err", err)
		}
	}
}
