package sqs

import (
	"carrier/internal/queue"
	"carrier/internal/store"
)

type batchFailure struct {
	Id          string
	SenderFault bool
	Code        string
	Message     string
}

func failure(id string, e *Error) batchFailure {
	return batchFailure{Id: id, SenderFault: e.Status < 500, Code: e.Code, Message: e.Message}
}

// checkBatch validates batch entry ids.
func checkBatch(ids []string) *Error {
	if len(ids) == 0 {
		return errBatch("EmptyBatchRequest", "There should be at least one entry in the request.")
	}
	if len(ids) > queue.MaxBatch {
		return errBatch("TooManyEntriesInBatchRequest", "Maximum number of entries per request are %d. You have sent %d.", queue.MaxBatch, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		ok := len(id) >= 1 && len(id) <= 80
		for _, r := range id {
			ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}
		if !ok {
			return errBatch("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return errBatch("BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

type handleEntry struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout int64
}

type batchOK struct {
	Id string
}

// handleBatch runs do for each entry of a DeleteMessageBatch or
// ChangeMessageVisibilityBatch request.
func handleBatch(c *call, queueURL string, entries []handleEntry, do func(store.Queue, handleEntry) *Error) ([]batchOK, []batchFailure, *Error) {
	q, e := c.queueByURL(queueURL)
	if e != nil {
		return nil, nil, e
	}
	ids := make([]string, len(entries))
	for i, en := range entries {
		ids[i] = en.Id
	}
	if e := checkBatch(ids); e != nil {
		return nil, nil, e
	}
	ok, failed := []batchOK{}, []batchFailure{}
	for _, en := range entries {
		if e := do(q, en); e != nil {
			failed = append(failed, failure(en.Id, e))
		} else {
			ok = append(ok, batchOK{Id: en.Id})
		}
	}
	return ok, failed, nil
}
