package sns

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"carrier/internal/dest"
	"carrier/internal/ingest"
	"carrier/internal/sigv4"
	"carrier/internal/store"
	"carrier/internal/topic"
)

// Error is an SNS error answer: HTTP status and
// <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorXML `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type errorXML struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// Encode is the error's XML document.
func (e *Error) Encode(requestID string) []byte {
	fault := "Sender"
	if e.Status >= 500 {
		fault = "Receiver"
	}
	b, _ := xml.Marshal(errorResponse{Xmlns: Namespace, Error: errorXML{Type: fault, Code: e.Code, Message: e.Message}, RequestID: requestID})
	return append([]byte(xml.Header), b...)
}

func (e *Error) write(w http.ResponseWriter, requestID string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	w.Write(e.Encode(requestID))
}

func newErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) *Error {
	return newErr(400, "InvalidParameter", format, args...)
}

// errParam is SNS's answer for a bad or missing parameter.
func errParam(name string) *Error { return errInvalid("Invalid parameter: %s", name) }

func errInternal() *Error {
	return newErr(500, "InternalError", "The request processing has failed because of an unknown error, exception or failure.")
}

func errNotFound(what string) *Error { return newErr(404, "NotFound", "%s does not exist", what) }

// sigError maps a refused signature to its AWS error (403, or 400 for an
// incomplete signature, as AWS answers).
func sigError(err error) *Error {
	se, ok := sigv4.AsError(err)
	if !ok {
		return errInternal()
	}
	status := http.StatusForbidden
	if se.Code == "IncompleteSignature" {
		status = http.StatusBadRequest
	}
	return &Error{Status: status, Code: se.Code, Message: se.Message}
}

// serviceError maps an error of the topics service.
func serviceError(err error) *Error {
	var fe *dest.FieldError
	var nf *topic.NotFoundError
	var be *topic.BatchError
	var rate *ingest.RateLimitError
	var fanout *ingest.FanoutError
	var overloaded *ingest.OverloadedError
	switch {
	case errors.As(err, &overloaded):
		// SNS's KMSThrottling and Throttled are the retryable refusals SDKs back off on.
		return newErr(http.StatusTooManyRequests, "Throttled", "Rate exceeded: %s", overloaded.Error())
	case errors.As(err, &rate):
		// SNS's ThrottledException: HTTP 429, code Throttled.
		return newErr(http.StatusTooManyRequests, "Throttled", "Rate exceeded: %s", rate.Error())
	case errors.As(err, &fanout):
		return newErr(400, "InvalidParameter", "Invalid parameter: Message Reason: %s", fanout.Error())
	case errors.As(err, &fe):
		return fieldError(fe)
	case errors.As(err, &be):
		return newErr(400, be.Code, "%s", be.Message)
	case errors.As(err, &nf):
		return errNotFound(nf.What)
	case errors.Is(err, store.ErrNotFound):
		return errNotFound("Resource")
	default:
		return errInternal()
	}
}

func fieldError(fe *dest.FieldError) *Error {
	code := "InvalidParameter"
	if fe.Field == "MessageAttributes" {
		code = "ParameterValueInvalid"
	}
	if strings.HasPrefix(fe.Message, "Invalid parameter") {
		return newErr(400, code, "%s", fe.Message)
	}
	return newErr(400, code, "Invalid parameter: %s Reason: %s", fe.Field, fe.Message)
}
