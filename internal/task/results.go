package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"carrier/internal/provider"
	"carrier/internal/store"
)

// Outcome says what a pingback or poll answer did.
type Outcome string

// Outcomes of a result.
const (
	OutcomeApplied      Outcome = "applied"       // it decided the task
	OutcomeDuplicate    Outcome = "duplicate"     // the task already had this result
	OutcomeConflict     Outcome = "conflict"      // the task already had another result; kept in history
	OutcomeDeadLettered Outcome = "dead_lettered" // kept as a dead letter
	OutcomeNotReady     Outcome = "not_ready"     // poll: still working
)

// rejection is why a result cannot be applied to a task.
type rejection struct {
	reason, message string
}

// result is one answer about a task, from a pingback or a poll.
type result struct {
	providerID string
	code       string // answer, or an ERROR_… string
	cost       string
	via        string
	detail     any
}

// HandleCallback processes a pingback addressed to token. It returns
// ErrUnknownToken (change nothing, answer 404) when no task has the token, and
// any other error only when nothing could be recorded (the caller spools it).
func (s *Service) HandleCallback(ctx context.Context, token string, raw RawCallback) (Outcome, error) {
	t, err := s.store.TaskByTokenHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnknownToken
	}
	if err != nil {
		return "", fmt.Errorf("find task by token: %w", err)
	}
	out, rej, err := s.applyCallback(ctx, t, raw)
	if err != nil {
		rej = &rejection{ReasonProcessingFailed, err.Error()}
	}
	if rej != nil {
		d, derr := s.deadLetter(ctx, t, raw, *rej)
		if derr != nil {
			return "", fmt.Errorf("keep dead letter: %w (after: %s)", derr, rej.message)
		}
		if rej.reason == ReasonUnknownProviderID && t.ProviderID == "" && !s.cfg.ManualRedrive {
			// The submitter records the provider id, then looks for dead letters;
			// this side writes the dead letter, then looks at the task again. So
			// one of the two always sees the other, and the pingback is not stranded.
			if now, err := s.store.GetTask(ctx, t.ProjectID, t.ID); err == nil && now.ProviderID != "" {
				if _, err := s.Redrive(ctx, t.ProjectID, d.ID); err == nil {
					return OutcomeApplied, nil
				}
			}
		}
		return OutcomeDeadLettered, nil
	}
	return out, nil
}

func (s *Service) applyCallback(ctx context.Context, t store.Task, raw RawCallback) (Outcome, *rejection, error) {
	cb, perr := ParseCallback(raw)
	if perr != nil {
		return "", &rejection{ReasonMalformed, perr.Error()}, nil
	}
	return s.apply(ctx, t, result{providerID: cb.ID, code: cb.Code, via: store.ViaCallback, detail: raw})
}

// apply records a result on a task: the first result decides it, a repeat is
// a duplicate, a different later answer a conflict. Racing writers are
// resolved by the task's version: exactly one of them decides the task.
func (s *Service) apply(ctx context.Context, t store.Task, r result) (Outcome, *rejection, error) {
	for range 10 {
		if t.ProviderID == "" {
			return "", &rejection{ReasonUnknownProviderID, fmt.Sprintf("provider id %q: the task's submission has not been answered yet", r.providerID)}, nil
		}
		if r.providerID != t.ProviderID {
			return "", &rejection{ReasonUnknownProviderID, fmt.Sprintf("provider id %q does not match the task's provider id %q", r.providerID, t.ProviderID)}, nil
		}
		at := now()
		var entries []store.TaskEntry
		kind := store.TaskCallback
		if r.via == store.ViaPoll {
			kind = store.TaskPolled
		}
		switch t.Status {
		case store.TaskSolved, store.TaskFailed, store.TaskExpired:
			same := (t.Status == store.TaskSolved && r.code == t.Solution) || (t.Status == store.TaskFailed && r.code == t.ErrorCode)
			if same {
				return OutcomeDuplicate, nil, s.store.AppendTaskHistory(ctx, []store.TaskEntry{entryOf(t, store.TaskDuplicate, "repeated "+r.via+" result; nothing changed", r.detail)})
			}
			msg := fmt.Sprintf("%s result differs from the first (%s); the first wins", r.via, t.Status)
			return OutcomeConflict, nil, s.store.AppendTaskHistory(ctx, []store.TaskEntry{entryOf(t, store.TaskConflict, msg, map[string]any{"code": r.code, "raw": r.detail})})
		case store.TaskPending, store.TaskSubmitted:
		default:
			return "", nil, fmt.Errorf("task %s has unknown status %q", t.ID, t.Status)
		}
		switch s.upstream.Interpret(r.code) {
		case provider.NotReady, provider.Waiting:
			// Still being solved, or a transient error about one task (rare): keep waiting.
			return OutcomeNotReady, nil, nil
		case provider.Failed:
			t.Status, t.ErrorCode, t.ErrorMessage = store.TaskFailed, r.code, "provider: "+r.code
			entries = append(entries, entryOf(t, kind, "failed: "+r.code, r.detail))
		default:
			t.Status, t.Solution, t.Via = store.TaskSolved, r.code, r.via
			t.ErrorCode, t.ErrorMessage = "", ""
			entries = append(entries, entryOf(t, kind, "solved by "+r.via, r.detail))
		}
		if r.cost != "" {
			t.Cost = r.cost
		}
		t.CompletedAt, t.UpdatedAt, t.LeaseOwner, t.LeaseUntil = &at, at, "", time.Time{}
		updated, err := s.update(ctx, t, entries...)
		if errors.Is(err, store.ErrConflict) {
			if t, err = s.store.GetTask(ctx, t.ProjectID, t.ID); err != nil {
				return "", nil, fmt.Errorf("reread task: %w", err)
			}
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("record result: %w", err)
		}
		s.countTask(updated.Status, updated.Via)
		return OutcomeApplied, nil, nil
	}
	return "", nil, errors.New("task kept changing under the result; giving up")
}

func (s *Service) deadLetter(ctx context.Context, t store.Task, raw RawCallback, rej rejection) (store.DeadLetter, error) {
	at := now()
	d := store.DeadLetter{ID: newID(), ProjectID: t.ProjectID, TaskID: t.ID, Source: "callback", Reason: rej.reason, Message: rej.message,
		Method: raw.Method, Query: raw.Query, Body: raw.Body, ContentType: raw.ContentType, Status: store.DeadLetterPending, CreatedAt: at, UpdatedAt: at}
	if err := s.store.CreateDeadLetter(ctx, d); err != nil {
		return d, fmt.Errorf("create dead letter: %w", err)
	}
	if s.metrics != nil {
		s.metrics.DeadLetters.WithLabelValues(rej.reason).Inc()
	}
	level := slog.LevelWarn
	if rej.reason == ReasonUnknownProviderID && t.ProviderID == "" {
		level = slog.LevelInfo // a pingback that beat the submit answer: redriven once the answer is recorded
	}
	s.log.Log(ctx, level, "callback dead-lettered", "task", t.ID, "reason", rej.reason, "message", rej.message)
	return d, nil
}

// RedriveError says why a dead letter still cannot be processed.
type RedriveError struct{ Reason, Message string }

func (e *RedriveError) Error() string { return e.Reason + ": " + e.Message }

// ErrAlreadyRedriven is returned when a dead letter was already processed.
var ErrAlreadyRedriven = errors.New("dead letter was already redriven")

// Redrive processes a dead letter again. On success it is marked redriven; on
// failure it stays pending with the new reason and a *RedriveError is returned.
func (s *Service) Redrive(ctx context.Context, projectID, id string) (store.DeadLetter, error) {
	d, err := s.store.GetDeadLetter(ctx, projectID, id)
	if err != nil {
		return d, err
	}
	if d.Status != store.DeadLetterPending {
		return d, ErrAlreadyRedriven
	}
	t, err := s.store.GetTask(ctx, projectID, d.TaskID)
	if err != nil {
		return d, fmt.Errorf("task of dead letter: %w", err)
	}
	_, rej, err := s.applyCallback(ctx, t, RawCallback{Method: d.Method, Query: d.Query, Body: d.Body, ContentType: d.ContentType})
	if err != nil {
		return d, err
	}
	at := now()
	d.Redrives++
	d.UpdatedAt = at
	if rej != nil {
		d.LastError = rej.reason + ": " + rej.message
		if err := s.store.UpdateDeadLetter(ctx, d); err != nil {
			return d, err
		}
		return d, &RedriveError{rej.reason, rej.message}
	}
	d.Status, d.RedrivenAt, d.LastError = store.DeadLetterRedriven, &at, ""
	if err := s.store.UpdateDeadLetter(ctx, d); err != nil {
		return d, err
	}
	return d, nil
}
