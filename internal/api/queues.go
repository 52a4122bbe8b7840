package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"carrier/internal/queue"
	"carrier/internal/store"
)

// Pull queues with SQS semantics under /v1/queues: send, receive with a
// visibility timeout and long polling, acknowledge by deleting with the
// receipt handle, dead-letter after max_receive_count receives, redrive.

type queueCountsJSON struct {
	Visible  int64 `json:"visible"`
	InFlight int64 `json:"in_flight"`
	Delayed  int64 `json:"delayed"`
}

type queueJSON struct {
	ID                       string           `json:"id"`
	Name                     string           `json:"name"`
	VisibilityTimeoutSeconds int64            `json:"visibility_timeout_seconds"`
	MaxReceiveCount          int              `json:"max_receive_count"`
	DeadLetterQueueID        *string          `json:"dead_letter_queue_id"`
	RetentionSeconds         int64            `json:"retention_seconds"`
	DelaySeconds             int64            `json:"delay_seconds"`
	FIFO                     bool             `json:"fifo"`
	ContentDedup             bool             `json:"content_based_deduplication"`
	CreatedAt                string           `json:"created_at"`
	ApproximateMessages      *queueCountsJSON `json:"approximate_messages,omitempty"`
}

func queueView(q store.Queue, c *store.QueueCounts) queueJSON {
	v := queueJSON{ID: q.ID, Name: q.Name, VisibilityTimeoutSeconds: int64(q.VisibilityTimeout / time.Second), MaxReceiveCount: q.MaxReceiveCount,
		RetentionSeconds: int64(q.Retention / time.Second), DelaySeconds: int64(q.Delay / time.Second), CreatedAt: formatTime(q.CreatedAt),
		FIFO: q.FIFO, ContentDedup: q.ContentDedup}
	if q.DeadLetterQueueID != "" {
		v.DeadLetterQueueID = &q.DeadLetterQueueID
	}
	if c != nil {
		v.ApproximateMessages = &queueCountsJSON{Visible: c.Visible, InFlight: c.InFlight, Delayed: c.Delayed}
	}
	return v
}

type messageJSON struct {
	ID              string            `json:"id"`
	Body            string            `json:"body"`
	Attributes      map[string]string `json:"attributes"`
	ReceiptHandle   string            `json:"receipt_handle"`
	ReceiveCount    int               `json:"receive_count"`
	SentAt          string            `json:"sent_at"`
	FirstReceivedAt *string           `json:"first_received_at"`
	// FIFO queues only:
	GroupID         string `json:"group_id,omitempty"`
	DeduplicationID string `json:"deduplication_id,omitempty"`
	SequenceNumber  string `json:"sequence_number,omitempty"`
}

func (s *Server) queuesEnabled() error {
	if s.Queues == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "pull queues are not configured"}
	}
	return nil
}

func seconds(p *int64) *time.Duration {
	if p == nil {
		return nil
	}
	d := time.Duration(*p) * time.Second
	return &d
}

// queueRequest is the body of POST /v1/queues.
type queueRequest struct {
	Name                     *string `json:"name"`
	VisibilityTimeoutSeconds *int64  `json:"visibility_timeout_seconds"`
	MaxReceiveCount          *int    `json:"max_receive_count"`
	DeadLetterQueue          *string `json:"dead_letter_queue"`
	RetentionSeconds         *int64  `json:"retention_seconds"`
	DelaySeconds             *int64  `json:"delay_seconds"`
	FIFO                     bool    `json:"fifo"`
	ContentDedup             bool    `json:"content_based_deduplication"`
}

func (s *Server) createQueue(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.queuesEnabled(); err != nil {
		return err
	}
	var req queueRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return invalid("name", "is required")
	}
	in := queue.NewQueue{Name: *req.Name, VisibilityTimeout: seconds(req.VisibilityTimeoutSeconds), Retention: seconds(req.RetentionSeconds),
		Delay: seconds(req.DelaySeconds), FIFO: req.FIFO, ContentDedup: req.ContentDedup}
	if req.MaxReceiveCount != nil {
		in.MaxReceiveCount = *req.MaxReceiveCount
	}
	if req.DeadLetterQueue != nil {
		in.DeadLetterQueue = *req.DeadLetterQueue
	}
	q, err := s.Queues.CreateQueue(r.Context(), k.ProjectID, in)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, queueView(q, &store.QueueCounts{}))
	return nil
}

// loadQueue reads the {id} queue of the caller's project.
func (s *Server) loadQueue(r *http.Request, k store.APIKey) (store.Queue, error) {
	if err := s.queuesEnabled(); err != nil {
		return store.Queue{}, err
	}
	q, err := s.Store.GetQueue(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return q, notFound("queue")
	}
	return q, err
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.queuesEnabled(); err != nil {
		return err
	}
	qs, err := s.Store.ListQueues(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	out := make([]queueJSON, len(qs))
	for i, q := range qs {
		c, err := s.Store.QueueCounts(r.Context(), k.ProjectID, q.ID, now())
		if err != nil && !isNotFound(err) {
			return err
		}
		out[i] = queueView(q, &c)
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	c, err := s.Store.QueueCounts(r.Context(), k.ProjectID, q.ID, now())
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, queueView(q, &c))
	return nil
}

func (s *Server) deleteQueue(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	if err := s.Store.DeleteQueue(r.Context(), k.ProjectID, q.ID); err != nil {
		if isNotFound(err) {
			return notFound("queue")
		}
		if isConflict(err) {
			return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "queue " + q.Name + " is the dead-letter queue of another queue; delete or change that queue first"}
		}
		return err
	}
	ok(w, http.StatusOK, map[string]any{"id": q.ID, "deleted": true})
	return nil
}

type sendMessageJSON struct {
	Body            *string           `json:"body"`
	Attributes      map[string]string `json:"attributes"`
	GroupID         string            `json:"group_id"`
	DeduplicationID string            `json:"deduplication_id"`
	DelaySeconds    *int64            `json:"delay_seconds"`
}

// sendMessagesRequest is the body of POST /v1/queues/{id}/messages: one message, or a batch in messages.
type sendMessagesRequest struct {
	Body            *string           `json:"body"`
	Attributes      map[string]string `json:"attributes"`
	GroupID         string            `json:"group_id"`
	DeduplicationID string            `json:"deduplication_id"`
	DelaySeconds    *int64            `json:"delay_seconds"`
	Messages        []sendMessageJSON `json:"messages"`
}

func (s *Server) sendMessages(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req sendMessagesRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	var msgs []queue.Message
	switch {
	case req.Messages != nil && (req.Body != nil || req.Attributes != nil || req.GroupID != "" || req.DeduplicationID != "" || req.DelaySeconds != nil):
		return invalid("messages", "cannot be combined with body and attributes: send one message or a batch")
	case req.Messages != nil:
		if len(req.Messages) == 0 || len(req.Messages) > queue.MaxBatch {
			return invalid("messages", "must hold 1-%d messages", queue.MaxBatch)
		}
		for i, m := range req.Messages {
			if m.Body == nil {
				return invalid("messages["+itoa(i)+"].body", "is required")
			}
			msgs = append(msgs, queue.Message{Body: *m.Body, Attributes: m.Attributes, GroupID: m.GroupID, DedupID: m.DeduplicationID,
				Delay: seconds(m.DelaySeconds)})
		}
	default:
		if req.Body == nil {
			return invalid("body", "is required (or messages, a batch of up to %d)", queue.MaxBatch)
		}
		msgs = []queue.Message{{Body: *req.Body, Attributes: req.Attributes, GroupID: req.GroupID, DedupID: req.DeduplicationID,
			Delay: seconds(req.DelaySeconds)}}
	}
	for i, m := range msgs {
		if len(m.Attributes) > 10 {
			field := "attributes"
			if req.Messages != nil {
				field = "messages[" + itoa(i) + "].attributes"
			}
			return invalid(field, "must hold at most 10 attributes")
		}
	}
	out, err := s.Queues.Send(r.Context(), k.ProjectID, q.ID, msgs)
	if err != nil {
		return err
	}
	ids := make([]string, len(out))
	for i, m := range out {
		ids[i] = m.ID
	}
	ok(w, http.StatusCreated, map[string]any{"message_ids": ids})
	return nil
}

// receiveRequest is the body of POST /v1/queues/{id}/receive.
type receiveRequest struct {
	MaxMessages              *int   `json:"max_messages"`
	VisibilityTimeoutSeconds *int64 `json:"visibility_timeout_seconds"`
	WaitTimeSeconds          *int64 `json:"wait_time_seconds"`
}

func (s *Server) receiveMessages(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req receiveRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	opts := queue.ReceiveOptions{Max: 1, Visibility: seconds(req.VisibilityTimeoutSeconds)}
	if req.MaxMessages != nil {
		opts.Max = *req.MaxMessages
	}
	if req.WaitTimeSeconds != nil {
		opts.Wait = time.Duration(*req.WaitTimeSeconds) * time.Second
	}
	got, err := s.Queues.Receive(r.Context(), k.ProjectID, q.ID, opts)
	if err != nil {
		return err
	}
	out := make([]messageJSON, len(got))
	for i, m := range got {
		out[i] = messageJSON{ID: m.ID, Body: m.Body, Attributes: m.Attributes, ReceiptHandle: m.ReceiptHandle, ReceiveCount: m.ReceiveCount,
			SentAt: formatTime(m.SentAt), FirstReceivedAt: formatTimePtr(m.FirstReceivedAt)}
		if q.FIFO {
			out[i].GroupID, out[i].DeduplicationID, out[i].SequenceNumber = m.GroupID, m.DedupID, strconv.FormatInt(m.Seq, 10)
		}
	}
	ok(w, http.StatusOK, map[string]any{"messages": out})
	return nil
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	if err := s.Store.DeleteMessage(r.Context(), k.ProjectID, q.ID, r.PathValue("receiptHandle")); err != nil {
		if isNotFound(err) {
			return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: "receipt_handle",
				Message: "receipt_handle is unknown or stale (the message was deleted or received again)"}
		}
		return err
	}
	ok(w, http.StatusOK, map[string]any{"deleted": true})
	return nil
}

// visibilityRequest is the body of POST /v1/queues/{id}/visibility.
type visibilityRequest struct {
	ReceiptHandle            *string `json:"receipt_handle"`
	VisibilityTimeoutSeconds *int64  `json:"visibility_timeout_seconds"`
}

func (s *Server) changeVisibility(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req visibilityRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	if req.ReceiptHandle == nil || *req.ReceiptHandle == "" {
		return invalid("receipt_handle", "is required")
	}
	if req.VisibilityTimeoutSeconds == nil {
		return invalid("visibility_timeout_seconds", "is required")
	}
	if err := s.Queues.ChangeVisibility(r.Context(), k.ProjectID, q.ID, *req.ReceiptHandle, *seconds(req.VisibilityTimeoutSeconds)); err != nil {
		if isNotFound(err) {
			return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: "receipt_handle",
				Message: "receipt_handle is unknown or stale (the message was deleted or received again)"}
		}
		return err
	}
	ok(w, http.StatusOK, map[string]any{"visibility_timeout_seconds": *req.VisibilityTimeoutSeconds})
	return nil
}

func (s *Server) purgeQueue(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	n, err := s.Store.PurgeQueue(r.Context(), k.ProjectID, q.ID)
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{"purged": n})
	return nil
}

// queueRedriveRequest is the body of POST /v1/queues/{id}/redrive.
type queueRedriveRequest struct {
	MaxMessages *int `json:"max_messages"`
}

func (s *Server) redriveQueue(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req queueRedriveRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	q, err := s.loadQueue(r, k)
	if err != nil {
		return err
	}
	max := 1000
	if req.MaxMessages != nil {
		if *req.MaxMessages < 1 || *req.MaxMessages > 10000 {
			return invalid("max_messages", "must be 1-10000")
		}
		max = *req.MaxMessages
	}
	total := 0
	for total < max {
		n, err := s.Queues.Redrive(r.Context(), k.ProjectID, q.ID, min(100, max-total))
		if err != nil {
			return err
		}
		total += n
		if n == 0 {
			break
		}
	}
	ok(w, http.StatusOK, map[string]any{"redriven": total})
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }
