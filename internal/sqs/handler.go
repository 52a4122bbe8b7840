// Package sqs speaks the Amazon SQS JSON protocol (POST / with X-Amz-Target:
// AmazonSQS.<Action>, application/x-amz-json-1.0 bodies) and the older query
// protocol (form-encoded Action=…&Version=2012-11-05, XML answers; see
// query.go) for Carrier's pull queues, authenticated with AWS Signature
// Version 4 against Carrier SQS credentials, so an SQS application switches to
// Carrier by changing its endpoint URL and credentials.
package sqs

import (
	"carrier/internal/sigv4"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/queue"
	"carrier/internal/store"
)

const (
	contentType = "application/x-amz-json-1.0"
	// TargetPrefix starts the X-Amz-Target header of every SQS request.
	TargetPrefix = "AmazonSQS."
	// MaxRequestBytes bounds a request body (a 256 KiB batch, JSON-escaped).
	MaxRequestBytes = 2 << 20
	// TypeAttrPrefix prefixes the hidden message attribute that keeps the
	// DataType of a non-String SQS message attribute ("AWS." is reserved in
	// SQS, so no SQS client can send such a name).
	TypeAttrPrefix  = "AWS.DataType."
	maxMessageBytes = 256 << 10
)

// Store is what the SQS front reads and writes itself; sends and receives go
// through the queue service.
type Store interface {
	SQSCredential(ctx context.Context, accessKeyID string) (store.SQSCredential, error)
	GetQueue(ctx context.Context, projectID, id string) (store.Queue, error)
	QueueByName(ctx context.Context, projectID, name string) (store.Queue, error)
	ListQueues(ctx context.Context, projectID string) ([]store.Queue, error)
	DeleteQueue(ctx context.Context, projectID, id string) error
	QueueCounts(ctx context.Context, projectID, queueID string, now time.Time) (store.QueueCounts, error)
	PurgeQueue(ctx context.Context, projectID, queueID string) (int, error)
	DeleteMessage(ctx context.Context, projectID, queueID, handle string) error
}

// Handler answers SQS requests.
type Handler struct {
	Store  Store
	Queues *queue.Service
	// PublicURL is the base of queue URLs; "" uses the request's scheme and Host.
	PublicURL string
	Log       *slog.Logger
	// Now is the clock for signature dates (time.Now when nil).
	Now func() time.Time
}

// call is one authenticated request.
type call struct {
	ctx     context.Context
	h       *Handler
	project string
	region  string
	base    string
	// decode reads the action's input into v in the request's protocol
	// (decodeJSON or the query protocol's form decoder).
	decode func(v any) *Error
}

// An action decodes its input with c.decode and returns its output: one
// implementation for both protocols, each encoding the output its own way.
type action func(c *call) (any, *Error)

var actions = map[string]action{
	"CreateQueue":                  createQueue,
	"GetQueueUrl":                  getQueueURL,
	"ListQueues":                   listQueues,
	"DeleteQueue":                  deleteQueue,
	"GetQueueAttributes":           getQueueAttributes,
	"SendMessage":                  sendMessage,
	"SendMessageBatch":             sendMessageBatch,
	"ReceiveMessage":               receiveMessage,
	"DeleteMessage":                deleteMessage,
	"DeleteMessageBatch":           deleteMessageBatch,
	"ChangeMessageVisibility":      changeVisibility,
	"ChangeMessageVisibilityBatch": changeVisibilityBatch,
	"PurgeQueue":                   purgeQueue,
}

var unsupported = map[string]bool{
	"SetQueueAttributes": true, "AddPermission": true, "RemovePermission": true, "TagQueue": true, "UntagQueue": true,
	"ListQueueTags": true, "ListDeadLetterSourceQueues": true, "StartMessageMoveTask": true, "CancelMessageMoveTask": true,
	"ListMessageMoveTasks": true,
}

// ServeHTTP answers one SQS request: in the JSON protocol when it names an
// X-Amz-Target, else in the query protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	if r.Header.Get("X-Amz-Target") == "" {
		h.serveQuery(w, r, id)
		return
	}
	out, e := h.serve(r)
	if e != nil {
		if e.Status >= 500 && h.Log != nil {
			h.Log.Error("sqs request failed", "target", r.Header.Get("X-Amz-Target"), "message", e.Message)
		}
		e.write(w)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(out)
}

func readBody(r *http.Request) ([]byte, *Error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return nil, errInvalidParameter("could not read the request body")
	}
	if len(body) > MaxRequestBytes {
		return nil, newErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "", "The request body is larger than %d bytes.", MaxRequestBytes)
	}
	return body, nil
}

func (h *Handler) serve(r *http.Request) (any, *Error) {
	body, e := readBody(r)
	if e != nil {
		return nil, e
	}
	c, e := h.authenticate(r, body)
	if e != nil {
		return nil, e
	}
	c.decode = func(v any) *Error { return decodeJSON(body, v) }
	act, e := lookup(strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix))
	if e != nil {
		return nil, e
	}
	return act(c)
}

func lookup(name string) (action, *Error) {
	act, ok := actions[name]
	if !ok {
		if unsupported[name] {
			return nil, errUnsupported("Carrier does not support %s.", name)
		}
		return nil, newErr(400, "UnknownOperationException", "InvalidAction", "The action %s is not valid for this endpoint.", name)
	}
	return act, nil
}

func (h *Handler) authenticate(r *http.Request, body []byte) (*call, *Error) {
	auth, err := sigv4.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		se, _ := sigv4.AsError(err)
		return nil, authError(se)
	}
	cred, err := h.Store.SQSCredential(r.Context(), auth.AccessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidClientTokenID()
	}
	if err != nil {
		return nil, errInternal()
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && !strings.EqualFold(claimed, payload) {
		return nil, authError(&sigv4.Error{Code: "SignatureDoesNotMatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed."})
	} else if claimed != "" {
		payload = claimed
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	req := sigv4.Request{Method: r.Method, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header,
		ContentLength: r.ContentLength, PayloadHash: payload}
	if err := sigv4.Verify(cred.Secret, "sqs", auth, req, now); err != nil {
		se, ok := sigv4.AsError(err)
		if !ok {
			return nil, errInternal()
		}
		return nil, authError(se)
	}
	base := strings.TrimRight(h.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return &call{ctx: r.Context(), h: h, project: cred.ProjectID, region: auth.Region, base: base}, nil
}

func decodeJSON(body []byte, v any) *Error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newErr(400, "SerializationException", "InvalidParameterValue", "Could not parse the request: %v", err)
	}
	return nil
}
