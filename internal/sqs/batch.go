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

func handleBatch(c *call, body []byte, do func(store.Queue, handleEntry) *Error) (any, *Error) {
	var in struct {
		QueueUrl string
		Entries  []handleEntry
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	ids := make([]string, len(in.Entries))
	for i, en := range in.Entries {
		ids[i] = en.Id
	}
	if e := checkBatch(ids); e != nil {
		return nil, e
	}
	ok, failed := []batchOK{}, []batchFailure{}
	for _, en := range in.Entries {
		if e := do(q, en); e != nil {
			failed = append(failed, failure(en.Id, e))
		} else {
			ok = append(ok, batchOK{Id: en.Id})
		}
	}
	return map[string]any{"Successful": ok, "Failed": failed}, nil
}
