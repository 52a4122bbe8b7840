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
	"regexp"
	"strings"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest/pingback"
	"carrier/internal/ingest"
	"carrier/internal/metrics"
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

// Tick is how often the fallback poller and the expirer run their rounds.
func (s *Service) Tick() time.Duration { return min(s.cfg.Tick, s.cfg.PollInterval) }

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

// Run runs the submitter until ctx is done. The fallback poller and the
// expirer are maintenance services that run on the leader only.
func (s *Service) Run(ctx context.Context) { s.submitLoop(ctx) }

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

// The clock package mints ids and times for every package alike.
var (
	newID      = clock.NewID
	now        = clock.Now
	formatTime = clock.Format
)
