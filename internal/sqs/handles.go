package sqs

import (
	"errors"
	"strings"
	"time"

	"carrier/internal/queue"
	"carrier/internal/store"
)

// checkHandle rejects what cannot be a receipt handle.
func checkHandle(h string) *Error {
	if h == "" {
		return errMissingParameter("ReceiptHandle")
	}
	if len(h) > 1024 || strings.ContainsAny(h, " \t\r\n") {
		return errReceiptHandleInvalid(h)
	}
	return nil
}

// deleteOne deletes by receipt handle. As in SQS, a well-formed handle that is
// stale or already deleted succeeds without deleting anything.
func (c *call) deleteOne(q store.Queue, handle string) *Error {
	if e := checkHandle(handle); e != nil {
		return e
	}
	if err := c.h.Store.DeleteMessage(c.ctx, c.project, q.ID, handle); err != nil && !errors.Is(err, store.ErrNotFound) {
		return errInternal()
	}
	return nil
}

func deleteMessage(c *call, body []byte) (any, *Error) {
	var in struct{ QueueUrl, ReceiptHandle string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	if e := c.deleteOne(q, in.ReceiptHandle); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

func deleteMessageBatch(c *call, body []byte) (any, *Error) {
	return handleBatch(c, body, func(q store.Queue, en handleEntry) *Error { return c.deleteOne(q, en.ReceiptHandle) })
}

func (c *call) changeOne(q store.Queue, handle string, timeout int64) *Error {
	if e := checkHandle(handle); e != nil {
		return e
	}
	if timeout < 0 || timeout > int64(queue.MaxVisibility/time.Second) {
		return errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", timeout)
	}
	err := c.h.Queues.ChangeVisibility(c.ctx, c.project, q.ID, handle, time.Duration(timeout)*time.Second)
	if errors.Is(err, store.ErrNotFound) {
		return errInvalidParameter("Value %s for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.", handle)
	}
	if err != nil {
		return serviceError(err)
	}
	return nil
}

func changeVisibility(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueUrl, ReceiptHandle string
		VisibilityTimeout       *int64
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	if in.VisibilityTimeout == nil {
		return nil, errMissingParameter("VisibilityTimeout")
	}
	if e := c.changeOne(q, in.ReceiptHandle, *in.VisibilityTimeout); e != nil {
		return nil, e
	}
	return struct{}{}, nil
}

func changeVisibilityBatch(c *call, body []byte) (any, *Error) {
	return handleBatch(c, body, func(q store.Queue, en handleEntry) *Error {
		return c.changeOne(q, en.ReceiptHandle, en.VisibilityTimeout)
	})
}
