// Package store defines Carrier's records and the storage interface that both
// engines (SQLite and PostgreSQL) implement. The delivery row is the job: its
// state, attempt count, next attempt time and lease live in the database, so no
// in-flight work exists only in memory.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"carrier/internal/health"
)

// ErrNotFound is returned when a record does not exist or belongs to another project.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique constraint (for example a name) is violated.
var ErrConflict = errors.New("conflict")

// ErrInvalid is returned when a write breaks a rule the store enforces itself
// (callers validate first; for example a FIFO queue message without a group id).
var ErrInvalid = errors.New("invalid")

// Delivery states. A delivery is pending until its first attempt, retrying
// between attempts, and ends delivered or failed. Replay puts it back to pending.
const (
	StatePending   = "pending"
	StateRetrying  = "retrying"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// Project is a tenant: every other record belongs to exactly one project.
type Project struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is a credential for one project. Only the SHA-256 hash of the key is stored.
type APIKey struct {
	ID        string
	ProjectID string
	Name      string
	Prefix    string // the first characters of the key, for recognising it in listings
	Hash      string // hex SHA-256 of the full key
	Admin     bool   // admin keys may create projects and manage keys
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Subscription says which events a project wants sent where. A webhook is a
// subscription whose destination kind is "webhook" (HTTP).
type Subscription struct {
	ID          string
	ProjectID   string
	Name        string
	Description string
	Kind        string // destination kind: "webhook", "discord", "slack", "email" or "log"
	URL         string // webhook: the endpoint
	// Destination holds the settings of kinds other than webhook, as JSON
	// (each kind's package parses and validates it).
	Destination json.RawMessage
	// FilterPolicy is an SNS-style filter policy (JSON); empty matches every event.
	FilterPolicy json.RawMessage
	// FilterScope says what the policy looks at: "attributes" (the event's
	// attributes, the default) or "body" (its JSON data).
	FilterScope string
	// Ordering is "fifo" (deliveries of one ordering key are sent one at a
	// time, in publish order) or "" (none).
	Ordering   string
	EventTypes []string
	Scope      string   // "all" or "specific"
	SubjectIDs []string // with scope "specific": the event subjects (task ids) wanted
	Headers    map[string]string
	Tags       []string
	Metadata   json.RawMessage

	TimeoutSeconds    int
	MaxRetries        int
	BackoffMultiplier float64

	Secret               string     // current signing secret (whsec_…)
	PreviousSecret       string     // kept signing alongside Secret until PreviousSecretUntil
	PreviousSecretUntil  *time.Time // zero when there is no previous secret
	Active               bool
	DisabledReason       string
	ConsecutiveFailures  int
	TotalDeliveries      int64
	SuccessfulDeliveries int64
	FailedDeliveries     int64
	LastSuccessAt        *time.Time
	LastFailureAt        *time.Time
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// Event is an accepted message. Its payload is stored once, however many
// deliveries it fans out to.
type Event struct {
	ID             string
	ProjectID      string
	Type           string
	Subject        string
	Data           json.RawMessage
	Attributes     map[string]string
	IdempotencyKey string
	CreatedAt      time.Time
}

// OrderingFIFO is the Subscription.Ordering that sends the deliveries of each
// ordering key one at a time, in publish order.
const OrderingFIFO = "fifo"

// DefaultOrderingKey is the ordering key of a FIFO subscription's delivery
// whose event has neither an ordering key nor a subject.
const DefaultOrderingKey = "_"

// DedupKeyPrefix namespaces deduplication ids in the idempotency key table;
// idempotency keys may not start with it.
const DedupKeyPrefix = "carrier-dedup:"

// NewEvent is an event to insert together with the subscriptions it matched.
type NewEvent struct {
	Event Event
	// OrderingKey orders the event's deliveries to FIFO subscriptions; empty
	// falls back to the subject, then to DefaultOrderingKey.
	OrderingKey string
	// DeduplicationID, when set, makes the event a duplicate of an event of the
	// project published with the same id since DedupSince.
	DeduplicationID string
	DedupSince      time.Time
	// SubscriptionIDs receive one delivery each, created in the same transaction.
	SubscriptionIDs []string
	// DeliveryIDs are the ids for those deliveries, index for index.
	DeliveryIDs []string
}

// InsertResult tells what InsertEvents did with one NewEvent.
type InsertResult struct {
	EventID    string
	Duplicate  bool // the idempotency key was already used within its window: nothing was created
	Deliveries int  // deliveries created (for a duplicate: the original event's count)
	Err        error
}

// Delivery is one event on its way to one subscription.
type Delivery struct {
	ID             string
	ProjectID      string
	SubscriptionID string
	EventID        string
	EventType      string
	OrderingKey    string // "" unless the subscription orders its deliveries (FIFO)
	State          string
	Attempts       int // attempts made so far, over the delivery's whole life
	BudgetStart    int // Attempts when the delivery was last (re)started; retries are counted from here
	NextAttemptAt  time.Time
	LastStatus     int
	LastError      string
	LastErrorCode  string
	LastDurationMS int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeliveredAt    *time.Time
	URL            string // destination URL at the time of the last attempt
}

// Attempt records one try at sending a delivery.
type Attempt struct {
	ID           string
	DeliveryID   string
	ProjectID    string
	Number       int
	URL          string
	StatusCode   int
	DurationMS   int64
	ErrorCode    string
	ErrorMessage string
	ResponseBody string // at most the first 4 KiB
	// ResponseHeaders are the answer's headers, "Name: value" lines, at
	// most 2 KiB, credentials redacted.
	ResponseHeaders string
	CreatedAt       time.Time
}

// Job is a claimed delivery with everything needed to send it.
type Job struct {
	Delivery     Delivery
	Event        Event
	Subscription Subscription
	LeaseOwner   string
	// LeaseToken names this claim: its outcome and renewals apply only while
	// no later claim of the delivery was made (by any node, this one too).
	LeaseToken int64
}

// Lease is one claim a process holds: renewals name each claim.
type Lease struct {
	DeliveryID string
	Token      int64
}

// Outcome is the result of an attempt, to be recorded by CompleteAttempts.
type Outcome struct {
	DeliveryID     string
	ProjectID      string
	SubscriptionID string
	LeaseOwner     string
	LeaseToken     int64 // the claim's (Job.LeaseToken): any other is refused
	Attempt        Attempt
	// State is the delivery's new state: delivered, retrying or failed.
	State string
	// NextAttemptAt is when to try again (State retrying).
	NextAttemptAt time.Time
	// SpareRetry records the attempt without using up one of the delivery's
	// retries (a destination's rate limit refused it).
	SpareRetry bool
	// Disable deactivates the subscription whatever its failure count (HTTP 410).
	Disable       bool
	DisableReason string
}

// Disabled reports a subscription that CompleteAttempts just deactivated.
type Disabled struct {
	ProjectID      string
	SubscriptionID string
	Reason         string
	Failures       int
}

// HealthSignal is a signal that recording a batch of attempts raised for one
// subscription (health.Evaluate over its persisted counters).
type HealthSignal struct {
	ProjectID      string
	SubscriptionID string
	health.Signal
}

// DisabledBy returns the subscriptions that the Disable signals among signals
// deactivated, in order.
func DisabledBy(signals []HealthSignal) []Disabled {
	var out []Disabled
	for _, s := range signals {
		if s.Kind == health.Disable {
			out = append(out, Disabled{ProjectID: s.ProjectID, SubscriptionID: s.SubscriptionID, Reason: s.Reason, Failures: s.Failures})
		}
	}
	return out
}

// OutboxEvent is a system event written in the transaction of the change that
// caused it, waiting for the relay to publish it.
type OutboxEvent struct {
	// ID is stable across relay attempts: the published event's id and
	// idempotency key derive from it, so a second publish is a duplicate.
	ID        string
	ProjectID string
	Type      string
	Subject   string
	Data      json.RawMessage
	// Attributes are the event's attributes (filter policies match them).
	Attributes map[string]string
	// IdempotencyKey, when set, is the published event's idempotency key (an
	// event with a natural one: task:<id>:<status>); otherwise the relay uses
	// outbox:<ID>.
	IdempotencyKey string
	CreatedAt      time.Time
}

// OutboxStore holds the outbox of system events. CompleteAttempts writes a
// webhook.disabled row in the transaction that deactivates a subscription
// (the other health signals are returned, not written: see
// CompleteAttemptsWithSignals).
type OutboxStore interface {
	// ClaimOutbox leases up to limit rows whose lease has run out (or that
	// never had one) to owner until now+lease, oldest first. PostgreSQL skips
	// rows another claimer has locked; SQLite's single writer serialises claims.
	// RescueLeases releases the leases of owners that stopped heartbeating.
	ClaimOutbox(ctx context.Context, owner string, lease time.Duration, now time.Time, limit int) ([]OutboxEvent, error)
	// DeleteOutbox removes a row once its event is published (a missing row is no error).
	DeleteOutbox(ctx context.Context, id string) error
}

// DeliveryFilter selects deliveries for listing.
type DeliveryFilter struct {
	ProjectID      string
	SubscriptionID string // optional
	EventID        string // optional
	State          string // optional
	From, To       *time.Time
	Limit, Offset  int
}

// RecoverFilter selects failed deliveries of one subscription to replay.
type RecoverFilter struct {
	ProjectID      string
	SubscriptionID string
	From, To       time.Time
	EventTypes     []string // empty: all types
}

// ClaimOptions controls ClaimDeliveries.
type ClaimOptions struct {
	Owner string
	Limit int
	// PerSubscription caps how many deliveries of one subscription a single claim takes.
	PerSubscription int
	// Exclude lists subscriptions whose lanes are full; none of their deliveries are claimed.
	Exclude []string
	// PerProject caps how many deliveries of one project a single claim takes.
	PerProject int
	// ExcludeProjects lists projects that hold their share of the claimer's
	// budget; none of their deliveries are claimed.
	ExcludeProjects []string
	Lease           time.Duration
	Now             time.Time
}

// Counts is the number of deliveries in each state, for metrics.
type Counts map[string]int64

// Store is everything Carrier persists. Every method that takes a project id
// confines itself to that project: another project's ids behave as missing.
type Store interface {
	TaskStore
	QueueStore
	CredentialStore
	OutboxStore
	AlertStore
	CaptchaStore
	TopicStore
	SigningKeyStore
	Transactor

	// Migrate applies the embedded schema migrations (under a lock on PostgreSQL).
	Migrate(ctx context.Context) error
	Close() error
	Ping(ctx context.Context) error
	// Engine names the engine: "sqlite" or "postgres".
	Engine() string

	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, id string) (Project, error)
	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeyByHash finds an unrevoked key by its hash.
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	// LookupAPIKey finds a key by its hash, revoked or not (RevokedAt set).
	LookupAPIKey(ctx context.Context, hash string) (APIKey, error)
	// GetAPIKey reads a project's key by id, revoked or not (RevokedAt set).
	GetAPIKey(ctx context.Context, projectID, keyID string) (APIKey, error)
	RevokeAPIKey(ctx context.Context, projectID, keyID string, at time.Time) error
	// SetAPIKeyHash replaces a key's stored hash (found by key id).
	SetAPIKeyHash(ctx context.Context, keyID, hash string) error
	// CountAPIKeys counts every key, revoked or not, across projects.
	CountAPIKeys(ctx context.Context) (int, error)

	CreateSubscription(ctx context.Context, s Subscription) error
	GetSubscription(ctx context.Context, projectID, id string) (Subscription, error)
	ListSubscriptions(ctx context.Context, projectID string) ([]Subscription, error)
	// AllActiveSubscriptions lists every active subscription of every project.
	AllActiveSubscriptions(ctx context.Context) ([]Subscription, error)
	// AllSubscriptions lists every subscription of every project, active or not,
	// for the matcher: an inactive subscription still gets deliveries, which wait
	// as pending until it is activated.
	AllSubscriptions(ctx context.Context) ([]Subscription, error)
	// UpdateSubscription writes the editable fields (name, description, URL, event types,
	// scope, subject ids, headers, tags, metadata, timeout, retries, multiplier, secrets).
	UpdateSubscription(ctx context.Context, s Subscription) error
	// SetSubscriptionActive activates (resetting the failure count) or deactivates a subscription.
	SetSubscriptionActive(ctx context.Context, projectID, id string, active bool, reason string, at time.Time) error
	// DeleteSubscription removes a subscription with its deliveries and attempts.
	DeleteSubscription(ctx context.Context, projectID, id string) error
	// SubscriptionsVersion changes whenever any subscription is created, changed or deleted.
	SubscriptionsVersion(ctx context.Context) (int64, error)

	// InsertEvents inserts events and their deliveries in one transaction (group
	// commit). Events with an idempotency key already used in the project since
	// idemSince, or a deduplication id used since their own DedupSince, are
	// duplicates: nothing is created for them.
	InsertEvents(ctx context.Context, events []NewEvent, idemSince time.Time) ([]InsertResult, error)
	GetEvent(ctx context.Context, projectID, id string) (Event, error)
	// ListEvents lists a project's events, newest first: at most limit, and fewer
	// once they hold ListBytes of payload.
	ListEvents(ctx context.Context, projectID string, limit, offset int) ([]Event, error)
	// EventTypeExamples is the newest event of each type among the project's
	// newest scan events (the catalogue of the types seen lately, each with an
	// example payload), by type: at most limit, and fewer once they hold
	// ListBytes of payload. scan bounds the work whatever the events' number.
	EventTypeExamples(ctx context.Context, projectID string, scan, limit int) ([]Event, error)

	GetDelivery(ctx context.Context, projectID, id string) (Delivery, error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// DeliveryLog returns one page of a project's delivery log (see
	// DeliveryQuery), by keyset: no count, no offset.
	DeliveryLog(ctx context.Context, q DeliveryQuery) ([]Delivery, error)
	// DeliveryMinutes counts a project's deliveries created since since by
	// minute and state.
	DeliveryMinutes(ctx context.Context, projectID string, since time.Time) ([]MinuteStat, error)
	// DeliveryStates counts a project's deliveries in each state given,
	// each count cut at limit, with the oldest one's time.
	DeliveryStates(ctx context.Context, projectID string, states []string, limit int) ([]StateCount, error)
	ListAttempts(ctx context.Context, projectID, deliveryID string) ([]Attempt, error)

	// ClaimDeliveries leases due deliveries (pending or retrying, next attempt due,
	// no live lease, subscription active) to opts.Owner until now+opts.Lease.
	// A delivery with an ordering key is claimed only while it is the head of
	// its (subscription, ordering key): no earlier delivery of that key, in
	// publish order (created_at, then id), is pending or retrying.
	ClaimDeliveries(ctx context.Context, opts ClaimOptions) ([]Job, error)
	// CompleteAttempts records attempts and moves their deliveries on, in one
	// transaction, and only where the caller still holds the lease. It returns the
	// subscriptions that were deactivated as a result; for each it writes a
	// webhook.disabled row to the outbox in that same transaction. It is
	// CompleteAttemptsWithSignals reporting only the Disable signals.
	CompleteAttempts(ctx context.Context, outcomes []Outcome, now time.Time) ([]Disabled, error)
	// CompleteAttemptsWithSignals is CompleteAttempts returning every health
	// signal the recorded attempts raised. In the same transaction it reads
	// the counters of each subscription concerned, runs health.Evaluate over
	// its outcomes (in batch order), writes the new counters and applies the
	// Disable signals: the subscription is deactivated, its waiting deliveries
	// held, and webhook.disabled written to the outbox. A Recovered signal
	// writes endpoint.recovered to the outbox (it resolves the alert the
	// disabling raised). Degraded and RetriesExhausted are only returned (the
	// counters that raise them are persisted): they are not published as
	// events, so a failing endpoint is not sent news of itself on every retry.
	// Signals are grouped by subscription, in order of first appearance.
	CompleteAttemptsWithSignals(ctx context.Context, outcomes []Outcome, now time.Time) ([]HealthSignal, error)
	// RenewLeases extends the leases owner holds, each named by its claim's
	// token, to until, so work that waits in a busy lane never outlives its
	// lease while its process is alive. A lease claimed again since (by any
	// node) is not extended.
	RenewLeases(ctx context.Context, owner string, leases []Lease, until time.Time) error
	// ReleaseLeases gives back every lease held by owner, so others can take the work.
	ReleaseLeases(ctx context.Context, owner string) error
	// Heartbeat records that the process owner is alive.
	Heartbeat(ctx context.Context, owner string, now time.Time) error
	// RemoveNode forgets a process that is shutting down.
	RemoveNode(ctx context.Context, owner string) error
	// RescueLeases gives back the delivery, task and outbox leases of every owner other
	// than self whose last heartbeat is older than staleBefore (or who never
	// sent one), forgets those owners, and returns how many deliveries it released.
	RescueLeases(ctx context.Context, self string, staleBefore time.Time) (int, error)
	// NextDueAt tells when the earliest pending or retrying delivery of an active
	// subscription is due, leaving out FIFO deliveries that are not their key's head.
	NextDueAt(ctx context.Context) (time.Time, bool, error)

	// ReplayDelivery puts a delivery back to pending with a fresh retry budget.
	ReplayDelivery(ctx context.Context, projectID, subscriptionID, deliveryID string, now time.Time) (Delivery, error)
	// RecoverDeliveries replays every failed delivery that matches f and returns how many.
	RecoverDeliveries(ctx context.Context, f RecoverFilter, now time.Time) (int, error)

	// CountDeliveries counts deliveries by state across projects.
	CountDeliveries(ctx context.Context) (Counts, error)
	// CountBacklog counts pending and retrying deliveries by state across
	// projects, from an index over those rows only: cheap enough for every
	// metrics scrape however much finished history retention keeps.
	CountBacklog(ctx context.Context) (Counts, error)
	// Prune deletes, each created or finished before cutoff and at most limit of
	// each per call: events (with their deliveries and attempts), completed
	// tasks (with their history) and redriven dead letters. It returns the
	// largest of the three counts, so a caller loops while it equals limit.
	Prune(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Partitions is what a store whose history is partitioned by time
// (PostgreSQL's attempts) offers its leader: create the partitions of the
// days until now+ahead, and drop those that retention has passed whole.
type Partitions interface {
	MaintainPartitions(ctx context.Context, now time.Time, ahead, retention time.Duration) (PartitionReport, error)
}

// PartitionReport is what one MaintainPartitions call did.
type PartitionReport struct {
	Created, Dropped []string
	Kept             int // attempts moved to the default partition when theirs was dropped
}

// DeliveryQuery selects one page of a project's delivery log. Empty fields
// do not filter.
type DeliveryQuery struct {
	ProjectID      string
	States         []string // any of these
	SubscriptionID string
	EventType      string
	// StatusClass is the class of the last answer: 2 to 5 for 2xx to 5xx,
	// -1 for no answer (a network error, or no attempt yet); 0 does not filter.
	StatusClass int
	From, To    *time.Time // created_at, From inclusive, To exclusive
	// Search is a delivery id, an event id or an event subject.
	Search string
	// Oldest lists oldest first; the default is newest first.
	Oldest bool
	// After continues a listing after the last row of its previous page.
	After *DeliveryCursor
	Limit int // 1 to 500; 0 means 50
}

// DeliveryCursor is a position in the delivery log.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}

// MinuteStat is how many of a project's deliveries created in one minute
// are in one state now.
type MinuteStat struct {
	Minute time.Time
	State  string
	Count  int64
}

// StateCount is a count of a project's deliveries in a state, cut at a
// limit (Capped) so it never scans more than that.
type StateCount struct {
	State  string
	Count  int64
	Capped bool
	Oldest *time.Time // created_at of the oldest delivery in the state
}
