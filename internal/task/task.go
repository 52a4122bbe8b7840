// Package task tracks asynchronous jobs sent to an upstream solving provider
// (the 2captcha/CaptchaAI API) so that no paid-for result is lost: a task is
// committed before it is acknowledged, submitted in the background with
// retries, completed by the provider's pingback or, when that never comes, by
// a batched fallback poller, and every outcome is announced by one event,
// written to the outbox in the transaction that records the outcome.
// Pingbacks that cannot be matched or processed become dead letters.
package task

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"carrier/internal/backoff"
	"carrier/internal/dest/pingback"
	"carrier/internal/ingest"
	"carrier/internal/metrics"
	"carrier/internal/provider"
	"carrier/internal/store"
)

// Config tunes the task service.
type Config struct {
	// PublicURL is where the provider reaches Carrier; pingbacks go to
	// PublicURL + "/callbacks/" + token.
	PublicURL string
	// CallbackTimeout is how long after submission the poller waits for a pingback.
	CallbackTimeout time.Duration
	// PollInterval is how often a task without a result is polled after that.
	PollInterval time.Duration
	// MaxAge is how long a task may take before it expires.
	MaxAge time.Duration
	// SubmitRetryBase is the backoff unit for transient submission errors.
	SubmitRetryBase time.Duration
	// PollBudget is the most result requests the poller sends upstream per minute.
	PollBudget int
	// Tick is how often the background loops look for work when not woken.
	Tick time.Duration
	// SubmitConcurrency is how many submissions run at once in one process.
	SubmitConcurrency int
	// ManualRedrive turns off the automatic redrive of a task's dead letters
	// once its submission is answered (they then wait for an explicit redrive).
	ManualRedrive bool
	// ShutdownGrace is how long submissions in flight when Run's context ends
	// may still take to be answered and recorded (CARRIER_SHUTDOWN_GRACE).
	ShutdownGrace time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{CallbackTimeout: 120 * time.Second, PollInterval: 30 * time.Second, MaxAge: 10 * time.Minute,
		SubmitRetryBase: 5 * time.Second, PollBudget: 60, Tick: time.Second, SubmitConcurrency: 16,
		ShutdownGrace: 10 * time.Second}
}

// recordTimeout bounds recording a provider's answer to a submission, even
// after the shutdown grace ran out: the provider has charged for the task, and
// an answer not recorded means a second submission, paid again.
const recordTimeout = 5 * time.Second

// Event types the service publishes.
const (
	EventSubmitted = "task.submitted"
	EventSolved    = "task.solved"
	EventFailed    = "task.failed"
	EventExpired   = "task.expired"
)

// Dead letter reasons.
const (
	ReasonUnknownProviderID = "unknown_provider_id"
	ReasonMalformed         = "malformed_callback"
	ReasonProcessingFailed  = "processing_failed"
)

// ErrUnknownToken is returned for a pingback to a token no task has.
var ErrUnknownToken = errors.New("unknown callback token")

// ValidationError names the field of a new task that is wrong.
type ValidationError = ingest.ValidationError

// Service runs tasks: creation, submission, pingbacks, polling, expiry, events.
type Service struct {
	cfg      Config
	store    store.Store
	upstream Provider
	events   func() // tells the outbox relay that event rows were written
	metrics  *metrics.Metrics
	log      *slog.Logger
	owner    string
	wake     chan struct{}

	pingbacks Pingbacks

	budgetMu    sync.Mutex
	budgetStart time.Time
	budgetUsed  int
}

// New returns a task service; owner names this process for leases. Task
// events are written to the outbox with the change that causes them; events
// (the relay's Wake, or nil) is called after each such commit.
func New(cfg Config, st store.Store, p Provider, events func(), mx *metrics.Metrics, log *slog.Logger, owner string) *Service {
	d := DefaultConfig()
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = d.CallbackTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = d.PollInterval
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = d.MaxAge
	}
	if cfg.SubmitRetryBase <= 0 {
		cfg.SubmitRetryBase = d.SubmitRetryBase
	}
	if cfg.PollBudget <= 0 {
		cfg.PollBudget = d.PollBudget
	}
	if cfg.Tick <= 0 {
		cfg.Tick = d.Tick
	}
	if cfg.SubmitConcurrency <= 0 {
		cfg.SubmitConcurrency = d.SubmitConcurrency
	}
	if cfg.ShutdownGrace < 0 {
		cfg.ShutdownGrace = 0
	}
	if events == nil {
		events = func() {}
	}
	return &Service{cfg: cfg, store: st, upstream: p, events: events, metrics: mx, log: log, owner: owner, wake: make(chan struct{}, 1)}
}

// Provider is the upstream provider the service submits to.
func (s *Service) Provider() Provider { return s.upstream }

// SetPublicURL sets the base of pingback URLs (known only once Carrier listens).
func (s *Service) SetPublicURL(u string) { s.cfg.PublicURL = strings.TrimRight(u, "/") }

// Pingbacks makes sure the result of a task with a pingback URL reaches that
// URL: the pingback subscription of the URL's host exists, and this
// process's matcher knows it, before the task's event is written.
type Pingbacks interface {
	Ensure(ctx context.Context, projectID, host string) (store.Subscription, error)
}

// SetPingbacks sets who keeps the pingback subscriptions; without one, task
// events still carry the pingback attributes but nothing makes sure a
// subscription wants them.
func (s *Service) SetPingbacks(p Pingbacks) { s.pingbacks = p }

// NewTask is a task to create.
type NewTask struct {
	Method   string
	Params   map[string]string
	Metadata json.RawMessage
	// PingbackURL is where the result is sent when the task is decided (the
	// in.php pingback parameter), in 2captcha's form; "" sends none.
	PingbackURL string
}

var methodPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// reservedParams are set by Carrier itself on every submission.
var reservedParams = map[string]bool{"key": true, "json": true, "pingback": true, "method": true}

// Validate checks a new task's fields.
func Validate(in NewTask) error {
	if in.Method == "" {
		return &ValidationError{Field: "method", Message: "is required (the provider method, such as userrecaptcha)"}
	}
	if !methodPattern.MatchString(in.Method) {
		return &ValidationError{Field: "method", Message: "must be 1-64 letters, digits or underscores"}
	}
	if len(in.Params) > 100 {
		return &ValidationError{Field: "params", Message: "must have at most 100 entries"}
	}
	for k := range in.Params {
		if reservedParams[strings.ToLower(k)] {
			return &ValidationError{Field: "params." + k, Message: "is set by Carrier and cannot be given"}
		}
		if k == "" || len(k) > 64 {
			return &ValidationError{Field: "params", Message: "keys must be 1-64 characters"}
		}
	}
	// Params also come from in.php forms, which no JSON check has seen.
	if err := ingest.CheckTexts("params", in.Params); err != nil {
		return err
	}
	if err := ingest.CheckJSON("metadata", in.Metadata); err != nil {
		return err
	}
	if in.Method == "userrecaptcha" || in.Method == "hcaptcha" || in.Method == "turnstile" {
		key := "googlekey"
		if in.Method != "userrecaptcha" {
			key = "sitekey"
		}
		if in.Params[key] == "" {
			return &ValidationError{Field: "params." + key, Message: "is required for method " + in.Method}
		}
		if in.Params["pageurl"] == "" {
			return &ValidationError{Field: "params.pageurl", Message: "is required for method " + in.Method}
		}
	}
	if in.PingbackURL != "" {
		if _, err := pingback.ParseURL(in.PingbackURL); err != nil {
			return &ValidationError{Field: "pingback", Message: err.Error()}
		}
	}
	if len(in.Metadata) > 0 && string(in.Metadata) != "null" {
		var obj map[string]any
		if err := json.Unmarshal(in.Metadata, &obj); err != nil {
			return &ValidationError{Field: "metadata", Message: "must be a JSON object"}
		}
	}
	return nil
}

// Create validates and commits a new task, then wakes the submitter. The task
// is durable when Create returns.
func (s *Service) Create(ctx context.Context, projectID string, in NewTask) (store.Task, error) {
	if err := Validate(in); err != nil {
		return store.Task{}, err
	}
	now := now()
	meta := in.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("null")
	}
	params := in.Params
	if params == nil {
		params = map[string]string{}
	}
	t := store.Task{ID: newID(), ProjectID: projectID, Method: in.Method, Params: params, Metadata: meta,
		Status: store.TaskPending, NextSubmitAt: now, Version: 1, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.MaxAge),
		PingbackURL: in.PingbackURL}
	if err := s.store.CreateTask(ctx, t); err != nil {
		return store.Task{}, fmt.Errorf("create task: %w", err)
	}
	s.Wake()
	return t, nil
}

// Wake tells the submitter that a task may be due.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the submitter and the fallback poller (with expiry) until ctx is
// done.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.submitLoop(ctx) }()
	go func() { defer wg.Done(); s.pollLoop(ctx) }()
	wg.Wait()
}

// --- submission ---

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

// --- results: pingbacks and polls ---

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

// --- fallback poller and expiry ---

// PollerLock is the singleton lock the fallback poller holds across nodes.
const PollerLock = "task-poller"

func (s *Service) pollLoop(ctx context.Context) {
	tick := min(s.cfg.Tick, s.cfg.PollInterval)
	t := time.NewTicker(tick)
	defer t.Stop()
	defer s.store.Unlock(context.Background(), PollerLock, s.owner)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := now()
		got, err := s.store.TryLock(ctx, PollerLock, s.owner, at.Add(max(3*tick, 5*time.Second)), at)
		if err != nil || !got {
			continue
		}
		if err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("expire tasks", "err", err)
		}
		if err := s.PollDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("poll tasks", "err", err)
		}
	}
}

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
		if !s.takeBudget() {
			return nil
		}
		// Tasks coming due shortly ride along with overdue ones, so they share
		// requests; nothing is asked before at least one task is overdue.
		at := now()
		horizon := at.Add(min(s.cfg.PollInterval/2, s.cfg.CallbackTimeout/4))
		tasks, err := s.store.TasksToPoll(ctx, horizon, s.upstream.BatchLimit())
		if err != nil {
			s.returnBudget()
			return err
		}
		if len(tasks) == 0 || tasks[0].NextPollAt.After(at) {
			s.returnBudget()
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
		if !s.takeBudget() {
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

// takeBudget spends one upstream request of this minute's budget.
func (s *Service) takeBudget() bool {
	s.budgetMu.Lock()
	defer s.budgetMu.Unlock()
	if time.Since(s.budgetStart) >= time.Minute {
		s.budgetStart, s.budgetUsed = time.Now(), 0
	}
	if s.budgetUsed >= s.cfg.PollBudget {
		return false
	}
	s.budgetUsed++
	return true
}

func (s *Service) returnBudget() {
	s.budgetMu.Lock()
	s.budgetUsed--
	s.budgetMu.Unlock()
}

// --- events ---

// EventData is the data of every task event.
type EventData struct {
	TaskID       string          `json:"task_id"`
	Status       string          `json:"status"`
	Method       string          `json:"method"`
	ProviderID   string          `json:"provider_id,omitempty"`
	Solution     string          `json:"solution,omitempty"`
	Via          string          `json:"via,omitempty"`
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	Cost         string          `json:"cost,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	CreatedAt    string          `json:"created_at"`
	SubmittedAt  string          `json:"submitted_at,omitempty"`
	CompletedAt  string          `json:"completed_at,omitempty"`
}

// update writes t (read at t.Version) with entries and, when its status
// changed to one that is announced, the event announcing it, in one
// transaction; then it wakes the outbox relay.
func (s *Service) update(ctx context.Context, t store.Task, entries ...store.TaskEntry) (store.Task, error) {
	var events []store.OutboxEvent
	if e, ok := s.eventOf(ctx, t); ok {
		events = append(events, e)
		if pb, ok := s.pingbackEntry(ctx, t, e.ID); ok {
			entries = append(entries, pb)
		}
	}
	updated, err := s.store.UpdateTask(ctx, t, t.Version, entries, events...)
	if err == nil && len(events) > 0 {
		s.events()
	}
	return updated, err
}

// eventOf is the event announcing t's status (task.submitted, task.solved,
// task.failed or task.expired), deduplicated by an idempotency key per task
// and status; ok is false for a pending task, which is not announced.
func (s *Service) eventOf(ctx context.Context, t store.Task) (store.OutboxEvent, bool) {
	if t.Status == store.TaskPending {
		return store.OutboxEvent{}, false
	}
	d := EventData{TaskID: t.ID, Status: t.Status, Method: t.Method, ProviderID: t.ProviderID, Solution: t.Solution, Via: t.Via,
		ErrorCode: t.ErrorCode, ErrorMessage: t.ErrorMessage, Cost: t.Cost, CreatedAt: formatTime(t.CreatedAt)}
	if t.Status == store.TaskSubmitted {
		d.ErrorCode, d.ErrorMessage = "", ""
	}
	if string(t.Metadata) != "null" {
		d.Metadata = t.Metadata
	}
	if t.SubmittedAt != nil {
		d.SubmittedAt = formatTime(*t.SubmittedAt)
	}
	if t.CompletedAt != nil {
		d.CompletedAt = formatTime(*t.CompletedAt)
	}
	data, _ := json.Marshal(d)
	attrs := map[string]string{"method": t.Method, "status": t.Status}
	if u, err := pingback.ParseURL(t.PingbackURL); t.PingbackURL != "" && err == nil {
		attrs[pingback.AttrURL], attrs[pingback.AttrHost] = t.PingbackURL, pingback.HostOf(u)
	}
	return store.OutboxEvent{ID: newID(), ProjectID: t.ProjectID, Type: "task." + t.Status, Subject: t.ID, Data: data,
		Attributes: attrs, IdempotencyKey: "task:" + t.ID + ":" + t.Status, CreatedAt: t.UpdatedAt}, true
}

// pingbackEntry makes sure the pingback subscription of a decided task's
// pingback URL exists (del_pingback may have removed it since in.php made it)
// and returns the history entry saying the result is queued for that URL as
// event eventID. ok is false when the task has no pingback URL, is not
// decided, or the subscription cannot be made (the event is still written:
// what the subscription does not get stays visible in the task's history).
func (s *Service) pingbackEntry(ctx context.Context, t store.Task, eventID string) (store.TaskEntry, bool) {
	if s.pingbacks == nil || t.PingbackURL == "" || t.Status == store.TaskSubmitted {
		return store.TaskEntry{}, false
	}
	u, err := pingback.ParseURL(t.PingbackURL)
	if err != nil {
		return store.TaskEntry{}, false
	}
	host := pingback.HostOf(u)
	sub, err := s.pingbacks.Ensure(ctx, t.ProjectID, host)
	if err != nil {
		s.log.Warn("make pingback subscription; the result is not sent to the pingback URL", "task", t.ID, "host", host, "err", err)
		return store.TaskEntry{}, false
	}
	return entryOf(t, store.TaskPingback, "result queued for the pingback URL "+t.PingbackURL+" (event "+eventID+")",
		map[string]any{"event_id": eventID, "subscription_id": sub.ID, "url": t.PingbackURL}), true
}

// --- small helpers ---

func (s *Service) countUpstream(action string, err error) {
	if s.metrics == nil {
		return
	}
	res := "ok"
	if err != nil {
		res = "error"
	}
	s.metrics.UpstreamRequests.WithLabelValues(action, res).Inc()
}

func (s *Service) countTask(status, via string) {
	if s.metrics != nil {
		s.metrics.Tasks.WithLabelValues(status, via).Inc()
	}
}

func entryOf(t store.Task, kind, msg string, detail any) store.TaskEntry {
	raw, err := json.Marshal(detail)
	if err != nil {
		raw = []byte("null")
	}
	return store.TaskEntry{ID: newID(), TaskID: t.ID, ProjectID: t.ProjectID, Kind: kind, Message: msg, Detail: raw, At: now()}
}

func (s *Service) codeOf(err error) string {
	if c := s.upstream.ErrorCode(err); c != "" {
		return c
	}
	return "error"
}

// HashToken returns the stored form of a callback token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newToken() string {
	b := make([]byte, 24)
	if _, err := crand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
