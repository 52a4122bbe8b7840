package sqs

import (
	"carrier/internal/sigv4"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"carrier/internal/ingest"
	"carrier/internal/store"
)

// Error is an SQS error answer: HTTP status, {"__type": "<namespace>#<Code>",
// "message": …} and the x-amzn-query-error header "<QueryCode>;Sender|Receiver"
// that SDKs use for the error code (the code of the older query protocol).
type Error struct {
	Status    int
	Code      string // the JSON protocol's code (__type after '#')
	QueryCode string // x-amzn-query-error code; Code when empty
	Message   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// SQS's own (modeled) errors are in the com.amazonaws.sqs namespace; the
// common errors of every AWS service (authentication, validation) in
// com.amazon.coral.service.
var sqsModeled = map[string]bool{
	"QueueDoesNotExist": true, "QueueNameExists": true, "QueueDeletedRecently": true, "ReceiptHandleIsInvalid": true,
	"MessageNotInflight": true, "EmptyBatchRequest": true, "TooManyEntriesInBatchRequest": true, "BatchEntryIdsNotDistinct": true,
	"InvalidBatchEntryId": true, "BatchRequestTooLong": true, "PurgeQueueInProgress": true, "UnsupportedOperation": true,
	"InvalidAttributeName": true, "InvalidAttributeValue": true, "InvalidMessageContents": true, "InvalidAddress": true,
	"InvalidSecurity": true, "RequestThrottled": true, "OverLimit": true, "InvalidIdFormat": true,
}

func (e *Error) write(w http.ResponseWriter) {
	ns := "com.amazon.coral.service#"
	if sqsModeled[e.Code] {
		ns = "com.amazonaws.sqs#"
	}
	fault := "Sender"
	if e.Status >= 500 {
		fault = "Receiver"
	}
	qc := e.QueryCode
	if qc == "" {
		qc = e.Code
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("x-amzn-query-error", qc+";"+fault)
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"__type": ns + e.Code, "message": e.Message})
}

func newErr(status int, code, query, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, QueryCode: query, Message: fmt.Sprintf(format, args...)}
}

func errQueueDoesNotExist() *Error {
	return newErr(400, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

func errInvalidParameter(format string, args ...any) *Error {
	return newErr(400, "InvalidParameterValue", "", format, args...)
}

func errMissingParameter(name string) *Error {
	return newErr(400, "MissingParameter", "", "The request must contain the parameter %s.", name)
}

func errInvalidAttributeName(name string) *Error {
	return newErr(400, "InvalidAttributeName", "", "Unknown Attribute %s.", name)
}

func errInvalidAttributeValue(format string, args ...any) *Error {
	return newErr(400, "InvalidAttributeValue", "", format, args...)
}

func errReceiptHandleInvalid(handle string) *Error {
	return newErr(400, "ReceiptHandleIsInvalid", "", "The input receipt handle \"%s\" is not a valid receipt handle.", handle)
}

func errBatch(code, format string, args ...any) *Error {
	return newErr(400, code, "AWS.SimpleQueueService."+code, format, args...)
}

func errUnsupported(format string, args ...any) *Error {
	return newErr(400, "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", format, args...)
}

func errInternal() *Error {
	return newErr(500, "InternalFailure", "", "The request processing has failed because of an unknown error, exception or failure.")
}

// authError maps a refused signature to its AWS error (HTTP 403, or 400 for
// an incomplete signature, as AWS answers).
func authError(se *sigv4.Error) *Error {
	status := http.StatusForbidden
	if se.Code == "IncompleteSignature" {
		status = http.StatusBadRequest
	}
	return &Error{Status: status, Code: se.Code, Message: se.Message}
}

func errInvalidClientTokenID() *Error {
	return newErr(403, "InvalidClientTokenId", "", "The security token included in the request is invalid.")
}

// serviceError maps an error of the queue service.
func serviceError(err error) *Error {
	var verr *ingest.ValidationError
	var rate *ingest.RateLimitError
	switch {
	case errors.As(err, &rate):
		// SQS's own throttling answer, which the SDKs retry with backoff.
		return newErr(400, "RequestThrottled", "", "Request is throttled: %s", rate.Error())
	case errors.As(err, &verr):
		return errInvalidParameter("Value for parameter %s is invalid. Reason: %s %s.", verr.Field, verr.Field, verr.Message)
	case errors.Is(err, store.ErrNotFound):
		return errQueueDoesNotExist()
	default:
		return errInternal()
	}
}
