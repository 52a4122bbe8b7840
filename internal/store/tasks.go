package store

import (
	"context"
	"encoding/json"
	"time"
)

// Task states. A task is pending until the provider accepted it, submitted
// while the provider works on it, and ends solved, failed or expired.
const (
	TaskPending   = "pending"
	TaskSubmitted = "submitted"
	TaskSolved    = "solved"
	TaskFailed    = "failed"
	TaskExpired   = "expired"
)

// How a task's result arrived.
const (
	ViaCallback = "callback"
	ViaPoll     = "poll"
)

// Task is one job sent to an upstream solving provider and tracked until its
// result is in (or it failed or expired).
type Task struct {
	ID        string
	ProjectID string
	Method    string            // provider method, such as "userrecaptcha"
	Params    map[string]string // the method's parameters (googlekey, pageurl, …)
	Metadata  json.RawMessage   // caller's data, carried into the task's events

	Status       string
	ProviderID   string // the provider's id for the task, once submitted
	Solution     string
	Via          string // ViaCallback or ViaPoll, once solved
	ErrorCode    string // the provider's error string when failed (or the last transient one)
	ErrorMessage string
	Cost         string // decimal price the provider reported, "" when unknown

	// CallbackTokenHash is the hex SHA-256 of the unguessable token in the task's
	// pingback URL. The token itself is never stored; each submission try makes
	// a fresh one, so the hash is mutable.
	CallbackTokenHash string

	SubmitAttempts int       // submission tries so far
	NextSubmitAt   time.Time // pending: when the next submission try is due
	NextPollAt     time.Time // submitted: when the fallback poller may ask next
	Polls          int       // result requests made for this task

	LeaseOwner string    // process submitting the task, while it does
	LeaseUntil time.Time // zero when not leased

	// Version increases with every update; UpdateTask uses it to detect races.
	Version int64

	CreatedAt   time.Time
	UpdatedAt   time.Time
	SubmittedAt *time.Time
	CompletedAt *time.Time // solved, failed or expired
	ExpiresAt   time.Time  // after this an unsolved task expires

	// PingbackURL is where the task's result is sent when it is decided (the
	// in.php pingback parameter); "" sends none. It never changes.
	PingbackURL string
}

// Task history kinds.
const (
	TaskCreated     = "created"
	TaskSubmitError = "submit_error" // a submission try failed
	TaskSubmitDone  = "submitted"
	TaskCallback    = "callback"  // a pingback that decided the task
	TaskPolled      = "poll"      // a poll answer that decided or advanced the task
	TaskDuplicate   = "duplicate" // a repeated result with the same answer: nothing changed
	TaskConflict    = "conflict"  // a later result with a different answer: kept, first answer wins
	TaskFinished    = "finished"  // failed or expired
	TaskPingback    = "pingback"  // the result was queued for the task's pingback URL
)

// TaskEntry is one line of a task's history.
type TaskEntry struct {
	ID        string
	TaskID    string
	ProjectID string
	Kind      string
	Message   string
	Detail    json.RawMessage // raw callback, poll answer, error… ("null" when none)
	At        time.Time
}

// TaskFilter selects tasks for listing, newest first.
type TaskFilter struct {
	ProjectID     string
	Status        string // optional
	From, To      *time.Time
	Limit, Offset int
}

// Dead letter states.
const (
	DeadLetterPending  = "pending"  // kept, waiting for a redrive
	DeadLetterRedriven = "redriven" // processed by a redrive
)

// DeadLetter is something that arrived but could not be processed, kept with
// its raw request and the reason until it is redriven.
type DeadLetter struct {
	ID          string
	ProjectID   string
	TaskID      string // the task the request was addressed to, when known
	Source      string // "callback"
	Reason      string // machine code: unknown_provider_id, malformed_callback, processing_failed
	Message     string // human explanation
	Method      string // HTTP method of the raw request
	Query       string // raw query string
	Body        string // raw body
	ContentType string
	Status      string // DeadLetterPending or DeadLetterRedriven
	Redrives    int    // redrive tries
	LastError   string // why the last redrive did not process it
	CreatedAt   time.Time
	UpdatedAt   time.Time
	RedrivenAt  *time.Time
}

// DeadLetterFilter selects dead letters, newest first.
type DeadLetterFilter struct {
	ProjectID     string
	Status        string // optional
	Reason        string // optional
	TaskID        string // optional
	Source        string // optional
	From, To      *time.Time
	Limit, Offset int
}

// TaskStore is the part of Store that keeps async tasks and dead letters.
type TaskStore interface {
	// CreateTask inserts a task with a "created" history entry.
	CreateTask(ctx context.Context, t Task) error
	GetTask(ctx context.Context, projectID, id string) (Task, error)
	// TaskByTokenHash finds a task of any project by its callback token hash.
	TaskByTokenHash(ctx context.Context, hash string) (Task, error)
	ListTasks(ctx context.Context, f TaskFilter) ([]Task, error)
	// TaskHistory lists a task's entries, oldest first.
	TaskHistory(ctx context.Context, projectID, taskID string) ([]TaskEntry, error)
	// UpdateTask writes every mutable field of t and appends entries, in one
	// transaction, only if the stored version is still version; it then stores
	// version+1. A changed version (someone else updated first) is ErrConflict
	// and nothing is written; a missing task is ErrNotFound. Events are
	// written to the outbox in the same transaction, so a status change and
	// the event announcing it commit together.
	UpdateTask(ctx context.Context, t Task, version int64, entries []TaskEntry, events ...OutboxEvent) (Task, error)
	// AppendTaskHistory adds entries without changing any task.
	AppendTaskHistory(ctx context.Context, entries []TaskEntry) error
	// ClaimTasksToSubmit leases up to len(tokenHashes) pending tasks whose
	// submission is due (and whose lease, if any, has run out) to owner until
	// now+lease, oldest due first, and starts a submission try on each in the
	// same commit: the i-th claimed task gets CallbackTokenHash tokenHashes[i]
	// and SubmitAttempts one higher. Claiming bumps each task's Version: update
	// a claimed task from the Version returned here.
	ClaimTasksToSubmit(ctx context.Context, owner string, tokenHashes []string, lease time.Duration, now time.Time) ([]Task, error)
	// TasksToPoll lists submitted tasks whose next poll is due, most overdue first.
	TasksToPoll(ctx context.Context, now time.Time, limit int) ([]Task, error)
	// TasksToExpire lists pending or submitted tasks whose ExpiresAt has passed
	// (a zero ExpiresAt never does).
	TasksToExpire(ctx context.Context, now time.Time, limit int) ([]Task, error)
	// NextTaskDueAt tells when the earliest pending task's submission is due
	// (for a leased task: when its lease runs out).
	NextTaskDueAt(ctx context.Context) (time.Time, bool, error)

	// TryLock takes or renews the named singleton lock for owner until until.
	// It succeeds when the lock is free, expired (its until is before now) or
	// already owner's.
	TryLock(ctx context.Context, name, owner string, until, now time.Time) (bool, error)
	// Unlock releases the named lock if owner holds it.
	Unlock(ctx context.Context, name, owner string) error
	// SpendBudget spends n of the named cluster-wide budget's limit for the
	// window that starts at window, and reports whether it could.
	SpendBudget(ctx context.Context, name string, window time.Time, n, limit int) (bool, error)
	// RefundBudget gives n back to the named budget's window.
	RefundBudget(ctx context.Context, name string, window time.Time, n int) error

	CreateDeadLetter(ctx context.Context, d DeadLetter) error
	GetDeadLetter(ctx context.Context, projectID, id string) (DeadLetter, error)
	ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// UpdateDeadLetter writes Status, Redrives, LastError, UpdatedAt and RedrivenAt.
	UpdateDeadLetter(ctx context.Context, d DeadLetter) error
	// CountDeadLetters counts dead letters by status across projects.
	CountDeadLetters(ctx context.Context) (Counts, error)
}
