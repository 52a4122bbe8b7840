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

func deleteMessage(c *call) (any, *Error) {
	var in struct{ QueueUrl, ReceiptHandle string }
	if e := c.decode(&in); e != nil {
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

type deleteBatchResult struct {
	Successful []batchOK      `query:"DeleteMessageBatchResultEntry"`
	Failed     []batchFailure `query:"BatchResultErrorEntry"`
}

func deleteMessageBatch(c *call) (any, *Error) {
	var in struct {
		QueueUrl string
		Entries  []handleEntry `query:"DeleteMessageBatchRequestEntry"`
	}
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	ok, failed, e := handleBatch(c, in.QueueUrl, in.Entries, func(q store.Queue, en handleEntry) *Error { return c.deleteOne(q, en.ReceiptHandle) })
	if e != nil {
		return nil, e
	}
	return deleteBatchResult{ok, failed}, nil
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

func changeVisibility(c *call) (any, *Error) {
	var in struct {
		QueueUrl, ReceiptHandle string
		VisibilityTimeout       *int64
	}
	if e := c.decode(&in); e != nil {
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

type changeBatchResult struct {
	Successful []batchOK      `query:"ChangeMessageVisibilityBatchResultEntry"`
	Failed     []batchFailure `query:"BatchResultErrorEntry"`
}

func changeVisibilityBatch(c *call) (any, *Error) {
	var in struct {
		QueueUrl string
		Entries  []handleEntry `query:"ChangeMessageVisibilityBatchRequestEntry"`
	}
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	ok, failed, e := handleBatch(c, in.QueueUrl, in.Entries, func(q store.Queue, en handleEntry) *Error {
		return c.changeOne(q, en.ReceiptHandle, en.VisibilityTimeout)
	})
	if e != nil {
		return nil, e
	}
	return changeBatchResult{ok, failed}, nil
}
