package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"carrier/internal/auth"
	"carrier/internal/dest"
	"carrier/internal/ingest"
	"carrier/internal/netguard"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// MaxBody is the largest request body Carrier reads (the seed's 1 MB payload limit).
const MaxBody = 1 << 20

// Error is the one error shape every endpoint answers with:
// {"success": false, "error": {"code", "message", "field"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Stable machine-readable error codes.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeValidation       = "validation_error"
	CodeURLNotAllowed    = "url_not_allowed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal_error"
	CodeUnavailable      = "unavailable"
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Field: field, Message: field + " " + fmt.Sprintf(format, args...)}
}

func notFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found"}
}

// fieldError answers a field error: url_not_allowed for an address the SSRF
// guard refused, validation_error for any other.
func fieldError(e *dest.FieldError) *Error {
	code := CodeValidation
	if errors.Is(e, netguard.ErrBlocked) {
		code = CodeURLNotAllowed
	}
	return &Error{Status: http.StatusBadRequest, Code: code, Field: e.Field, Message: e.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ok writes the success envelope {"success": true, "data": …} plus extra top-level fields.
func ok(w http.ResponseWriter, status int, data any, extra ...any) {
	body := map[string]any{"success": true, "data": data}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	writeJSON(w, status, body)
}

// fail writes err in the error shape, mapping store and validation errors to their status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	var verr *ingest.ValidationError
	var fieldErr *dest.FieldError
	var missing *subscription.NotFoundError
	var limit *subscription.LimitError
	var fanout *ingest.FanoutError
	var rate *ingest.RateLimitError
	var overloaded *ingest.OverloadedError
	alertErr, isAlertErr := alertError(err)
	captchaErr, isCaptchaErr := captchaError(err)
	switch {
	case errors.As(err, &apiErr):
	case isAlertErr:
		apiErr = alertErr
	case isCaptchaErr:
		apiErr = captchaErr
	case errors.As(err, &fieldErr):
		apiErr = fieldError(fieldErr)
	case errors.As(err, &verr):
		apiErr = invalid(verr.Field, "%s", verr.Message)
	case errors.As(err, &missing):
		apiErr = notFound(missing.What)
	case errors.As(err, &limit):
		apiErr = &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded, Message: limit.Message}
	case errors.As(err, &fanout):
		apiErr = &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded, Message: fanout.Error()}
	case errors.As(err, &rate):
		if rate.Events <= rate.Burst {
			w.Header().Set("Retry-After", strconv.Itoa(rate.RetryAfterSeconds()))
			apiErr = &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: rate.Error()}
		} else {
			apiErr = &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded, Message: rate.Error()}
		}
	case errors.Is(err, auth.ErrInvalidKey):
		apiErr = &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "invalid or revoked API key"}
	case errors.Is(err, auth.ErrAdminKey):
		apiErr = &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: err.Error()}
	case errors.Is(err, auth.ErrProjectNotFound):
		apiErr = notFound("project")
	case errors.Is(err, auth.ErrKeyNotFound):
		apiErr = notFound("API key")
	case errors.Is(err, store.ErrNotFound):
		apiErr = notFound("resource")
	case errors.Is(err, store.ErrConflict):
		apiErr = &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error()}
	case errors.As(err, &overloaded):
		w.Header().Set("Retry-After", "1")
		apiErr = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: overloaded.Error()}
	case errors.Is(err, ingest.ErrClosed):
		apiErr = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "Carrier is shutting down"}
	case store.IsUnavailable(err):
		s.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the store is unavailable; try again"}
	case store.IsRejected(err):
		// Validation should have caught it; the driver's message stays in the
		// log, since it names tables and columns.
		s.log.Error("store rejected a request's data", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: "the store refused this request's data"}
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	writeJSON(w, apiErr.Status, map[string]any{"success": false, "error": apiErr})
}

// decode reads a JSON body into v, rejecting unknown fields, trailing data and
// bodies over MaxBody, with errors that name the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	var raw bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(r.Body, &raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// Decode any trailing value raw: into a struct, DisallowUnknownFields would
	// report a second object as "unknown field" instead of trailing data.
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return decodeError(err)
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "body must hold a single JSON object"}
	}
	// One check for every string of every JSON request, naming its path: what
	// is decoded here is stored, and a NUL or invalid UTF-8 in it would be kept
	// by SQLite and refused by PostgreSQL (the decoder would even replace
	// invalid bytes silently).
	if err := ingest.CheckJSON("", raw.Bytes()); err != nil {
		return decodeError(err)
	}
	return nil
}

func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var verr *ingest.ValidationError
	switch {
	case errors.As(err, &verr):
		// A type that validates while it decodes (ingest.Attributes) names
		// the field at fault itself.
		return invalid(verr.Field, "%s", verr.Message)
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Message: fmt.Sprintf("body exceeds the limit of %d bytes", MaxBody)}
	case errors.Is(err, io.EOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "body is empty; a JSON object is required"}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "body must be a JSON object"}
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Field: field, Message: fmt.Sprintf("%s must be %s", field, jsonKind(typeErr.Type.Kind().String()))}
	case errors.As(err, &syntaxErr):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Field: field, Message: fmt.Sprintf("unknown field %q", field)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "malformed JSON: unexpected end of body"}
	default:
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "malformed JSON: " + err.Error()}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "float64", "int32":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	default:
		return "of another type"
	}
}
