package store

import (
	"context"
	"time"
)

// Queue is a pull queue with SQS semantics: at-least-once delivery, a
// visibility timeout per receive, and an optional dead-letter queue that
// takes messages received MaxReceiveCount times without being deleted.
type Queue struct {
	ID                string
	ProjectID         string
	Name              string // unique per project
	VisibilityTimeout time.Duration
	MaxReceiveCount   int    // 0: no dead-letter queue
	DeadLetterQueueID string // a queue of the same project, with MaxReceiveCount > 0
	Retention         time.Duration
	Delay             time.Duration // how long a new message stays invisible
	// FIFO queues order the messages of a message group (QueueMessage.GroupID)
	// and deduplicate sends by DedupID within FIFODedupWindow.
	FIFO bool
	// ContentDedup (FIFO only) makes the SHA-256 of the body the
	// deduplication id of a message sent without one.
	ContentDedup bool
	CreatedAt    time.Time
}

// FIFODedupWindow is how long a FIFO queue remembers a deduplication id.
const FIFODedupWindow = 5 * time.Minute

// QueueMessage is one message in a queue.
type QueueMessage struct {
	ID              string
	QueueID         string
	ProjectID       string
	Seq             int64 // order within the queue, oldest first
	Body            string
	Attributes      map[string]string
	SentAt          time.Time
	VisibleAt       time.Time // receivable from this time on
	ExpiresAt       time.Time // removed at this time (retention)
	ReceiveCount    int
	ReceiptHandle   string // random, new with every receive; "" before the first
	FirstReceivedAt *time.Time
	// SourceQueueID is the queue a dead-lettered message came from ("" otherwise).
	SourceQueueID string
	// DedupID, when set, makes a second send with the same id to the same queue
	// a no-op (a retried delivery does not enqueue twice): on a standard queue
	// while the message is in the queue, on a FIFO queue for FIFODedupWindow
	// after the first send (even if the message was deleted).
	DedupID string
	// GroupID is a FIFO queue message's message group ("" on standard queues).
	GroupID string
	// Duplicate is set on a SendMessages result whose DedupID was already
	// in the queue: nothing was inserted and ID is the existing message's.
	Duplicate bool
}

// QueueCounts are a queue's approximate message counts.
type QueueCounts struct {
	Visible  int64 // receivable now
	InFlight int64 // received and not yet visible again
	Delayed  int64 // never received and not yet visible (send delay)
}

// QueueStore is the part of Store that keeps pull queues and their messages.
// Every method confines itself to projectID: another project's queue is
// ErrNotFound.
type QueueStore interface {
	// CreateQueue inserts a queue; a name already used in the project is
	// ErrConflict, a DeadLetterQueueID not in the project ErrNotFound.
	CreateQueue(ctx context.Context, q Queue) error
	GetQueue(ctx context.Context, projectID, id string) (Queue, error)
	QueueByName(ctx context.Context, projectID, name string) (Queue, error)
	// ListQueues lists a project's queues by name.
	ListQueues(ctx context.Context, projectID string) ([]Queue, error)
	// DeleteQueue removes a queue with its messages. A queue that is another
	// queue's dead-letter queue is ErrConflict.
	DeleteQueue(ctx context.Context, projectID, id string) error

	// SendMessages inserts messages (ID, Body, Attributes, SentAt, VisibleAt,
	// DedupID, GroupID are used) into a queue in one transaction and returns
	// them as stored; ExpiresAt is SentAt plus the queue's retention. On a
	// FIFO queue GroupID is required, DedupID defaults to the body's SHA-256
	// hex with ContentDedup (else it is required), and a DedupID sent to the
	// queue less than FIFODedupWindow before SentAt makes the message a
	// Duplicate carrying the first message's ID.
	SendMessages(ctx context.Context, projectID, queueID string, msgs []QueueMessage) ([]QueueMessage, error)
	// ReceiveMessages leases up to max visible, unexpired messages, oldest
	// first: each gets a new receipt handle, one more receive and
	// VisibleAt = now + visibility. In the same transaction any candidate whose
	// receive count already reached the queue's MaxReceiveCount is moved to
	// the dead-letter queue (receive count reset, SourceQueueID recorded)
	// instead of being returned. Concurrent receivers never get one message.
	// On a FIFO queue a message is a candidate only while every earlier
	// message of its group is visible too: a group with a message in flight
	// (or delayed) yields nothing, and one receive may return consecutive
	// messages of a group, in order.
	ReceiveMessages(ctx context.Context, projectID, queueID string, max int, visibility time.Duration, now time.Time) ([]QueueMessage, error)
	// NextVisibleAt tells when the queue's earliest unexpired message is (or
	// became) visible, reading only: a long poll looks with it and receives
	// (a write) only when something may be there, so an idle receiver writes
	// nothing.
	NextVisibleAt(ctx context.Context, projectID, queueID string, now time.Time) (time.Time, bool, error)
	// DeleteMessage deletes the message whose current receipt handle is
	// handle; an unknown or stale handle is ErrNotFound.
	DeleteMessage(ctx context.Context, projectID, queueID, handle string) error
	// ChangeVisibility sets VisibleAt of the message whose current receipt
	// handle is handle; an unknown or stale handle is ErrNotFound.
	ChangeVisibility(ctx context.Context, projectID, queueID, handle string, visibleAt time.Time) error
	// PurgeQueue deletes every message of a queue and returns how many.
	PurgeQueue(ctx context.Context, projectID, queueID string) (int, error)
	QueueCounts(ctx context.Context, projectID, queueID string, now time.Time) (QueueCounts, error)
	// OldestQueueMessage is when the queue's first unexpired message in
	// queue order was sent (false when the queue is empty), read through the
	// queue's order index without counting.
	OldestQueueMessage(ctx context.Context, projectID, queueID string, now time.Time) (time.Time, bool, error)
	// RedriveDeadLetters moves up to max visible messages of a dead-letter
	// queue back to the queues they came from (visible now, receive count 0)
	// and returns their source queue ids, one per moved message.
	RedriveDeadLetters(ctx context.Context, projectID, dlqID string, max int, now time.Time) ([]string, error)
	// PruneQueueMessages deletes up to limit messages whose retention ended
	// at or before now, across projects, and returns how many.
	PruneQueueMessages(ctx context.Context, now time.Time, limit int) (int, error)
}
