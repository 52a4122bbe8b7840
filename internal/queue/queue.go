// Package queue runs pull queues with SQS semantics on top of the store:
// validation, long polling (a receive waits until a send to the queue in this
// process wakes it, or a short poll finds a message sent by another process),
// dead-letter redrive, and enqueueing for the queue destination.
package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"carrier/internal/ingest"
	"carrier/internal/store"
)

// Limits and defaults (those of SQS).
const (
	MaxNameLength      = 80
	DefaultVisibility  = 30 * time.Second
	MaxVisibility      = 12 * time.Hour
	DefaultRetention   = 4 * 24 * time.Hour
	MinRetention       = 60 * time.Second
	MaxRetention       = 14 * 24 * time.Hour
	MaxDelay           = 15 * time.Minute
	MaxBodyBytes       = 256 << 10
	MaxBatch           = 10
	MaxWait            = 20 * time.Second
	MaxReceiveCountCap = 1000
	// DefaultPollInterval is how often a long poll looks at the store for
	// messages sent by other processes.
	DefaultPollInterval = 250 * time.Millisecond
)

// Service is the pull-queue service of one process.
type Service struct {
	store store.Store
	// PollInterval bounds how long a waiting receiver misses a message sent
	// by another process whose notification was lost. Each poll is a read.
	PollInterval time.Duration
	// Broadcast, when set, tells the other nodes that the queue has a
	// message (cluster notifier); they call Wake.
	Broadcast func(queueID string)
	// Limit is each project's allowance of sends (the publish rate), taken
	// by Send; deliveries into a queue (Enqueue) do not take from it.
	Limit *ingest.RateLimiter
	now   func() time.Time

	mu      sync.Mutex
	waiters map[string]chan struct{} // queue id -> closed (and replaced) on the next send

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: waiting receives return at once
}

// New returns a Service on st.
func New(st store.Store) *Service {
	return &Service{store: st, PollInterval: DefaultPollInterval, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
		waiters: map[string]chan struct{}{}, closing: make(chan struct{})}
}

// Close ends every long poll in progress (they answer with what they have,
// nothing) and makes later ones return without waiting: for a graceful
// shutdown that need not wait out 20 s polls.
func (s *Service) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

func invalid(field, format string, args ...any) error {
	return &ingest.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// NewQueue is what CreateQueue takes; nil fields take their defaults.
type NewQueue struct {
	Name              string
	VisibilityTimeout *time.Duration
	MaxReceiveCount   int
	DeadLetterQueue   string // id or name of a queue of the same project
	Retention         *time.Duration
	Delay             *time.Duration
	// FIFO makes a FIFO queue; its name must end in FIFOSuffix.
	FIFO bool
	// ContentDedup (FIFO only) deduplicates messages sent without a
	// deduplication id by the SHA-256 of their body.
	ContentDedup bool
}

// FIFOSuffix ends the name of every FIFO queue, and only theirs.
const FIFOSuffix = ".fifo"

// MaxGroupIDLength bounds message group and deduplication ids (SQS's limit).
const MaxGroupIDLength = 128

// CheckName reports whether name is a valid queue name: 1-MaxNameLength
// letters, digits, '-' and '_', and for a FIFO queue (only) ending in FIFOSuffix.
func CheckName(name string, fifo bool) error {
	if l := len(name); l < 1 || l > MaxNameLength {
		return invalid("name", "must be 1-%d characters", MaxNameLength)
	}
	base, hasSuffix := strings.CutSuffix(name, FIFOSuffix)
	switch {
	case fifo && !hasSuffix:
		return invalid("name", "of a FIFO queue must end in %q", FIFOSuffix)
	case !fifo && hasSuffix:
		return invalid("name", "ending in %q is reserved for FIFO queues (set fifo)", FIFOSuffix)
	case fifo && base == "":
		return invalid("name", "must have characters before %q", FIFOSuffix)
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return invalid("name", "may contain only letters, digits, '-' and '_' (and end in %q for a FIFO queue)", FIFOSuffix)
		}
	}
	return nil
}

// CreateQueue validates and creates a queue.
func (s *Service) CreateQueue(ctx context.Context, projectID string, in NewQueue) (store.Queue, error) {
	if err := CheckName(in.Name, in.FIFO); err != nil {
		return store.Queue{}, err
	}
	if in.ContentDedup && !in.FIFO {
		return store.Queue{}, invalid("content_based_deduplication", "applies only to FIFO queues")
	}
	q := store.Queue{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID, Name: in.Name,
		VisibilityTimeout: DefaultVisibility, Retention: DefaultRetention, CreatedAt: s.now(), FIFO: in.FIFO, ContentDedup: in.ContentDedup}
	if in.VisibilityTimeout != nil {
		if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > MaxVisibility {
			return q, invalid("visibility_timeout_seconds", "must be 0-%d", int(MaxVisibility.Seconds()))
		}
		q.VisibilityTimeout = *in.VisibilityTimeout
	}
	if in.Retention != nil {
		if *in.Retention < MinRetention || *in.Retention > MaxRetention {
			return q, invalid("retention_seconds", "must be %d-%d", int(MinRetention.Seconds()), int(MaxRetention.Seconds()))
		}
		q.Retention = *in.Retention
	}
	if in.Delay != nil {
		if *in.Delay < 0 || *in.Delay > MaxDelay {
			return q, invalid("delay_seconds", "must be 0-%d", int(MaxDelay.Seconds()))
		}
		q.Delay = *in.Delay
	}
	if in.MaxReceiveCount < 0 || in.MaxReceiveCount > MaxReceiveCountCap {
		return q, invalid("max_receive_count", "must be 0-%d (0: no dead-letter queue)", MaxReceiveCountCap)
	}
	switch {
	case in.MaxReceiveCount > 0 && in.DeadLetterQueue == "":
		return q, invalid("dead_letter_queue", "is required with max_receive_count")
	case in.MaxReceiveCount == 0 && in.DeadLetterQueue != "":
		return q, invalid("max_receive_count", "must be at least 1 with a dead_letter_queue")
	case in.DeadLetterQueue != "":
		dlq, err := s.Resolve(ctx, projectID, in.DeadLetterQueue)
		if errors.Is(err, store.ErrNotFound) {
			return q, invalid("dead_letter_queue", "names no queue of this project")
		}
		if err != nil {
			return q, err
		}
		if dlq.FIFO != q.FIFO {
			if q.FIFO {
				return q, invalid("dead_letter_queue", "of a FIFO queue must be a FIFO queue")
			}
			return q, invalid("dead_letter_queue", "of a standard queue must be a standard queue")
		}
		q.MaxReceiveCount, q.DeadLetterQueueID = in.MaxReceiveCount, dlq.ID
	}
	if err := s.store.CreateQueue(ctx, q); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return q, fmt.Errorf("%w: a queue named %q already exists", store.ErrConflict, in.Name)
		}
		return q, err
	}
	return q, nil
}

// Resolve finds a project's queue by id or, failing that, by name.
func (s *Service) Resolve(ctx context.Context, projectID, ref string) (store.Queue, error) {
	q, err := s.store.GetQueue(ctx, projectID, ref)
	if errors.Is(err, store.ErrNotFound) {
		return s.store.QueueByName(ctx, projectID, ref)
	}
	return q, err
}

// Message is a message to send.
type Message struct {
	Body       string
	Attributes map[string]string
	// DedupID makes a second send with the same id a no-op (on a FIFO queue:
	// within store.FIFODedupWindow; required there unless the queue has
	// content-based deduplication).
	DedupID string
	// GroupID is the message group; required on FIFO queues, refused on
	// standard ones.
	GroupID string
	// Delay, when set, replaces the queue's delay for this message
	// (0-MaxDelay); not allowed on FIFO queues.
	Delay *time.Duration
}

// Send validates and enqueues up to MaxBatch messages in one transaction and
// wakes receivers waiting on the queue. The queue's delay applies.
// A send over the project's rate is refused whole with a
// *ingest.RateLimitError.
func (s *Service) Send(ctx context.Context, projectID, queueID string, msgs []Message) ([]store.QueueMessage, error) {
	if len(msgs) == 0 || len(msgs) > MaxBatch {
		return nil, invalid("messages", "must hold 1-%d messages", MaxBatch)
	}
	if err := s.Limit.Allow(projectID, len(msgs)); err != nil {
		return nil, err
	}
	return s.send(ctx, projectID, queueID, msgs)
}

func (s *Service) send(ctx context.Context, projectID, queueID string, msgs []Message) ([]store.QueueMessage, error) {
	q, err := s.store.GetQueue(ctx, projectID, queueID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	in := make([]store.QueueMessage, len(msgs))
	for i, m := range msgs {
		field := "body"
		if len(msgs) > 1 {
			field = fmt.Sprintf("messages[%d].body", i)
		}
		if m.Body == "" {
			return nil, invalid(field, "is required")
		}
		if len(m.Body) > MaxBodyBytes {
			return nil, invalid(field, "must be at most %d bytes", MaxBodyBytes)
		}
		// One rule with events and every other stored text: no NUL, valid
		// UTF-8 (PostgreSQL refuses both; SQLite would keep them).
		if err := ingest.CheckText(field, m.Body); err != nil {
			return nil, err
		}
		prefix := strings.TrimSuffix(field, "body")
		if err := ingest.CheckTexts(prefix+"attributes", m.Attributes); err != nil {
			return nil, err
		}
		if q.FIFO {
			if m.Delay != nil {
				return nil, invalid(prefix+"delay_seconds", "is not allowed on FIFO queues (set the queue's delay)")
			}
			if m.GroupID == "" {
				return nil, invalid(prefix+"group_id", "is required on a FIFO queue")
			}
			if m.DedupID == "" && !q.ContentDedup {
				return nil, invalid(prefix+"deduplication_id", "is required on a FIFO queue without content-based deduplication")
			}
			if err := checkID(prefix+"group_id", m.GroupID); err != nil {
				return nil, err
			}
			if m.DedupID != "" {
				if err := checkID(prefix+"deduplication_id", m.DedupID); err != nil {
					return nil, err
				}
			}
		} else if m.GroupID != "" {
			return nil, invalid(prefix+"group_id", "applies only to FIFO queues")
		}
		delay := q.Delay
		if m.Delay != nil {
			if *m.Delay < 0 || *m.Delay > MaxDelay {
				return nil, invalid(prefix+"delay_seconds", "must be 0-%d", int(MaxDelay.Seconds()))
			}
			delay = *m.Delay
		}
		in[i] = store.QueueMessage{ID: uuid.Must(uuid.NewV7()).String(), Body: m.Body, Attributes: m.Attributes,
			SentAt: now, VisibleAt: now.Add(delay), DedupID: m.DedupID, GroupID: m.GroupID}
	}
	out, err := s.store.SendMessages(ctx, projectID, q.ID, in)
	if err != nil {
		return nil, err
	}
	s.notify(q.ID)
	return out, nil
}

// checkID validates a message group or deduplication id: 1-MaxGroupIDLength
// printable ASCII characters (as SQS).
func checkID(field, id string) error {
	if len(id) > MaxGroupIDLength {
		return invalid(field, "must be at most %d characters", MaxGroupIDLength)
	}
	for _, c := range id {
		if c < '!' || c > '~' {
			return invalid(field, "may contain only printable ASCII characters without spaces")
		}
	}
	return nil
}

// Enqueue sends one message to the queue named by ref (id or name), with
// dedupID guarding against a second copy. It is what the queue destination
// uses. groupID is the message group when the queue is FIFO (ignored
// otherwise; "" there becomes store.DefaultOrderingKey).
func (s *Service) Enqueue(ctx context.Context, projectID, ref, body string, attrs map[string]string, dedupID, groupID string) (store.QueueMessage, error) {
	q, err := s.Resolve(ctx, projectID, ref)
	if err != nil {
		return store.QueueMessage{}, err
	}
	m := Message{Body: body, Attributes: attrs, DedupID: dedupID}
	if q.FIFO {
		m.GroupID = groupID
		if m.GroupID == "" {
			m.GroupID = store.DefaultOrderingKey
		}
		if len(m.GroupID) > MaxGroupIDLength {
			m.GroupID = m.GroupID[:MaxGroupIDLength]
		}
	}
	out, err := s.send(ctx, projectID, q.ID, []Message{m})
	if err != nil {
		return store.QueueMessage{}, err
	}
	return out[0], nil
}

// ReceiveOptions are a receive's settings.
type ReceiveOptions struct {
	Max        int            // 1-10
	Visibility *time.Duration // nil: the queue's visibility timeout
	Wait       time.Duration  // 0-20 s: how long to wait for a message
}

// Receive leases up to opts.Max messages. When none is visible it waits up to
// opts.Wait for one: a send in this process wakes it at once, and a poll
// every PollInterval picks up sends from other processes.
func (s *Service) Receive(ctx context.Context, projectID, queueID string, opts ReceiveOptions) ([]store.QueueMessage, error) {
	if opts.Max < 1 || opts.Max > MaxBatch {
		return nil, invalid("max_messages", "must be 1-%d", MaxBatch)
	}
	if opts.Wait < 0 || opts.Wait > MaxWait {
		return nil, invalid("wait_time_seconds", "must be 0-%d", int(MaxWait.Seconds()))
	}
	q, err := s.store.GetQueue(ctx, projectID, queueID)
	if err != nil {
		return nil, err
	}
	vis := q.VisibilityTimeout
	if opts.Visibility != nil {
		if *opts.Visibility < 0 || *opts.Visibility > MaxVisibility {
			return nil, invalid("visibility_timeout_seconds", "must be 0-%d", int(MaxVisibility.Seconds()))
		}
		vis = *opts.Visibility
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		// Take the wake-up channel before looking, so a send between the look
		// and the wait is not missed.
		wake := s.waiter(q.ID)
		// Look before receiving: a receive is a write transaction, and an
		// idle long poll should cost reads only.
		wait := s.PollInterval
		next, any, err := s.store.NextVisibleAt(ctx, projectID, q.ID, s.now())
		if err != nil {
			return nil, err
		}
		if any && !next.After(s.now()) {
			got, err := s.store.ReceiveMessages(ctx, projectID, q.ID, opts.Max, vis, s.now())
			if err != nil || len(got) > 0 {
				return got, err
			}
			// Visible but not receivable (a FIFO group's head in flight):
			// look again at the next poll or wake-up.
		} else if any {
			wait = min(wait, time.Until(next)) // a delayed or in-flight message comes due
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []store.QueueMessage{}, nil
		}
		timer := time.NewTimer(max(min(left, wait), time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return []store.QueueMessage{}, nil
		case <-s.closing:
			timer.Stop()
			return []store.QueueMessage{}, nil
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (s *Service) waiter(queueID string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[queueID]
	if !ok {
		ch = make(chan struct{})
		s.waiters[queueID] = ch
	}
	return ch
}

// notify wakes every receiver waiting on the queue, here and, through
// Broadcast, on the other nodes.
func (s *Service) notify(queueID string) {
	s.Wake(queueID)
	if s.Broadcast != nil {
		s.Broadcast(queueID)
	}
}

// Wake wakes the receivers of this process waiting on the queue (another
// node sent to it; "" wakes every waiting receiver, after notifications may
// have been lost).
func (s *Service) Wake(queueID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if queueID == "" {
		for id, ch := range s.waiters {
			close(ch)
			delete(s.waiters, id)
		}
		return
	}
	if ch, ok := s.waiters[queueID]; ok {
		close(ch)
		delete(s.waiters, queueID)
	}
}

// ChangeVisibility makes the message with the receipt handle visible again
// after timeout (0: at once).
func (s *Service) ChangeVisibility(ctx context.Context, projectID, queueID, handle string, timeout time.Duration) error {
	if handle == "" {
		return invalid("receipt_handle", "is required")
	}
	if timeout < 0 || timeout > MaxVisibility {
		return invalid("visibility_timeout_seconds", "must be 0-%d", int(MaxVisibility.Seconds()))
	}
	if err := s.store.ChangeVisibility(ctx, projectID, queueID, handle, s.now().Add(timeout)); err != nil {
		return err
	}
	if timeout == 0 {
		s.notify(queueID)
	}
	return nil
}

// Redrive moves up to max visible messages of a dead-letter queue back to
// their source queues and returns how many it moved.
func (s *Service) Redrive(ctx context.Context, projectID, dlqID string, max int) (int, error) {
	moved, err := s.store.RedriveDeadLetters(ctx, projectID, dlqID, max, s.now())
	if err != nil {
		return 0, err
	}
	done := map[string]bool{}
	for _, id := range moved {
		if !done[id] {
			done[id] = true
			s.notify(id)
		}
	}
	return len(moved), nil
}

// Prune deletes messages past their queue's retention, in batches, and
// returns how many it deleted.
func (s *Service) Prune(ctx context.Context) (int, error) {
	total := 0
	for i := 0; i < 100; i++ {
		n, err := s.store.PruneQueueMessages(ctx, s.now(), 500)
		total += n
		if err != nil || n < 500 {
			return total, err
		}
	}
	return total, nil
}
