// Package sqs speaks the Amazon SQS JSON protocol (POST / with X-Amz-Target:
// AmazonSQS.<Action>, application/x-amz-json-1.0 bodies) for Carrier's pull
// queues, authenticated with AWS Signature Version 4 against Carrier SQS
// credentials, so an SQS application switches to Carrier by changing its
// endpoint URL and credentials.
package sqs

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"carrier/internal/ingest"
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

// Handler answers SQS requests.
type Handler struct {
	Store  store.Store
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
}

type action func(c *call, body []byte) (any, *Error)

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

// ServeHTTP answers one SQS request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
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

func (h *Handler) serve(r *http.Request) (any, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return nil, errInvalidParameter("could not read the request body")
	}
	if len(body) > MaxRequestBytes {
		return nil, newErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "", "The request body is larger than %d bytes.", MaxRequestBytes)
	}
	c, e := h.authenticate(r, body)
	if e != nil {
		return nil, e
	}
	name := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	act, ok := actions[name]
	if !ok {
		if unsupported[name] {
			return nil, errUnsupported("Carrier does not support %s.", name)
		}
		return nil, newErr(400, "UnknownOperationException", "InvalidAction", "The action %s is not valid for this endpoint.", name)
	}
	return act(c, body)
}

func (h *Handler) authenticate(r *http.Request, body []byte) (*call, *Error) {
	auth, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		se, _ := errSig(err)
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
		return nil, authError(&SigError{"SignatureDoesNotMatch", "The provided 'x-amz-content-sha256' header does not match what was computed."})
	} else if claimed != "" {
		payload = claimed
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	req := SigRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header,
		ContentLength: r.ContentLength, PayloadHash: payload}
	if err := Verify(cred.Secret, "sqs", auth, req, now); err != nil {
		se, ok := errSig(err)
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

func decode(body []byte, v any) *Error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newErr(400, "SerializationException", "InvalidParameterValue", "Could not parse the request: %v", err)
	}
	return nil
}

// --- queues ---

func (c *call) url(q store.Queue) string {
	return c.base + "/" + url.PathEscape(c.project) + "/" + q.Name
}

func (c *call) arn(name string) string {
	return "arn:aws:sqs:" + c.region + ":" + c.project + ":" + name
}

// queueByURL finds the caller's queue a QueueUrl names (<base>/<project>/<name>);
// another project's queue does not exist for the caller.
func (c *call) queueByURL(raw string) (store.Queue, *Error) {
	if raw == "" {
		return store.Queue{}, errMissingParameter("QueueUrl")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return store.Queue{}, errInvalidParameter("Value %s for parameter QueueUrl is invalid. Reason: not a URL.", raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 {
		return store.Queue{}, errInvalidParameter("Value %s for parameter QueueUrl is invalid. Reason: expected <endpoint>/<project id>/<queue name>.", raw)
	}
	project, name := parts[len(parts)-2], parts[len(parts)-1]
	if p, err := url.PathUnescape(project); err == nil {
		project = p
	}
	if project != c.project {
		return store.Queue{}, errQueueDoesNotExist()
	}
	return c.queueByName(name)
}

func (c *call) queueByName(name string) (store.Queue, *Error) {
	q, err := c.h.Store.QueueByName(c.ctx, c.project, name)
	if errors.Is(err, store.ErrNotFound) {
		return q, errQueueDoesNotExist()
	}
	if err != nil {
		return q, errInternal()
	}
	return q, nil
}

// serviceError maps an error of the queue service.
func serviceError(err error) *Error {
	var verr *ingest.ValidationError
	switch {
	case errors.As(err, &verr):
		return errInvalidParameter("Value for parameter %s is invalid. Reason: %s %s.", verr.Field, verr.Field, verr.Message)
	case errors.Is(err, store.ErrNotFound):
		return errQueueDoesNotExist()
	default:
		return errInternal()
	}
}

func secondsAttr(attrs map[string]string, name string, lo, hi int64) (*time.Duration, *Error) {
	v, ok := attrs[name]
	if !ok {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return nil, errInvalidAttributeValue("Invalid value for the parameter %s. Reason: must be an integer from %d to %d.", name, lo, hi)
	}
	d := time.Duration(n) * time.Second
	return &d, nil
}

type redrivePolicy struct {
	DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
	MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
}

// parseQueueAttributes reads CreateQueue's attributes.
func (c *call) parseQueueAttributes(name string, attrs map[string]string) (queue.NewQueue, *Error) {
	in := queue.NewQueue{Name: name}
	var e *Error
	for k, v := range attrs {
		switch k {
		case "VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy":
		case "FifoQueue", "ContentBasedDeduplication":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return in, errInvalidAttributeValue("Invalid value for the parameter %s. Reason: must be true or false.", k)
			}
			if k == "FifoQueue" {
				in.FIFO = b
			} else {
				in.ContentDedup = b
			}
		case "DeduplicationScope":
			if v != "queue" {
				return in, errInvalidAttributeValue("Carrier's DeduplicationScope is queue.")
			}
		case "FifoThroughputLimit":
			if v != "perQueue" {
				return in, errInvalidAttributeValue("Carrier's FifoThroughputLimit is perQueue.")
			}
		case "ReceiveMessageWaitTimeSeconds":
			if v != "0" {
				return in, errInvalidAttributeValue("Carrier keeps no queue-level ReceiveMessageWaitTimeSeconds; pass WaitTimeSeconds to ReceiveMessage.")
			}
		case "MaximumMessageSize":
			if v != strconv.Itoa(maxMessageBytes) {
				return in, errInvalidAttributeValue("Carrier's MaximumMessageSize is %d.", maxMessageBytes)
			}
		default:
			return in, errInvalidAttributeName(k)
		}
	}
	if in.VisibilityTimeout, e = secondsAttr(attrs, "VisibilityTimeout", 0, int64(queue.MaxVisibility/time.Second)); e != nil {
		return in, e
	}
	if in.Retention, e = secondsAttr(attrs, "MessageRetentionPeriod", int64(queue.MinRetention/time.Second), int64(queue.MaxRetention/time.Second)); e != nil {
		return in, e
	}
	if in.Delay, e = secondsAttr(attrs, "DelaySeconds", 0, int64(queue.MaxDelay/time.Second)); e != nil {
		return in, e
	}
	if raw, ok := attrs["RedrivePolicy"]; ok && raw != "" {
		var p redrivePolicy
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return in, errInvalidAttributeValue("Invalid value for the parameter RedrivePolicy. Reason: not JSON.")
		}
		n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
		if err != nil || n < 1 || n > queue.MaxReceiveCountCap {
			return in, errInvalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: maxReceiveCount must be 1-%d.", raw, queue.MaxReceiveCountCap)
		}
		arn := strings.Split(p.DeadLetterTargetArn, ":")
		if len(arn) != 6 || arn[0] != "arn" || arn[2] != "sqs" || arn[4] != c.project {
			return in, errInvalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter target does not exist.", raw)
		}
		dlq, e := c.queueByName(arn[5])
		if e != nil {
			return in, errInvalidAttributeValue("Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter target does not exist.", raw)
		}
		in.MaxReceiveCount, in.DeadLetterQueue = n, dlq.ID
	}
	return in, nil
}

// sameAttributes tells whether an existing queue has the attributes asked for.
func sameAttributes(q store.Queue, in queue.NewQueue) bool {
	eq := func(p *time.Duration, v time.Duration) bool { return p == nil || *p == v }
	return eq(in.VisibilityTimeout, q.VisibilityTimeout) && eq(in.Retention, q.Retention) && eq(in.Delay, q.Delay) &&
		in.FIFO == q.FIFO && in.ContentDedup == q.ContentDedup &&
		(in.DeadLetterQueue == "" || in.DeadLetterQueue == q.DeadLetterQueueID && in.MaxReceiveCount == q.MaxReceiveCount)
}

func createQueue(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueName  string
		Attributes map[string]string
		Tags       map[string]string `json:"tags"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if len(in.Tags) > 0 {
		return nil, errUnsupported("Carrier does not support queue tags.")
	}
	nq, e := c.parseQueueAttributes(in.QueueName, in.Attributes)
	if e != nil {
		return nil, e
	}
	if strings.HasSuffix(in.QueueName, queue.FIFOSuffix) != nq.FIFO {
		return nil, errInvalidParameter("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length; FifoQueue must be true exactly for such names.")
	}
	if nq.ContentDedup && !nq.FIFO {
		return nil, errInvalidAttributeName("ContentBasedDeduplication")
	}
	q, err := c.h.Queues.CreateQueue(c.ctx, c.project, nq)
	if errors.Is(err, store.ErrConflict) {
		existing, e := c.queueByName(in.QueueName)
		if e != nil {
			return nil, e
		}
		if !sameAttributes(existing, nq) {
			return nil, newErr(400, "QueueNameExists", "QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute(s).")
		}
		return map[string]string{"QueueUrl": c.url(existing)}, nil
	}
	if err != nil {
		var verr *ingest.ValidationError
		if errors.As(err, &verr) {
			return nil, errInvalidParameter("Value %s for parameter QueueName is invalid. Reason: %s %s.", in.QueueName, verr.Field, verr.Message)
		}
		return nil, serviceError(err)
	}
	return map[string]string{"QueueUrl": c.url(q)}, nil
}

func getQueueURL(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueName              string
		QueueOwnerAWSAccountId string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.QueueName == "" {
		return nil, errMissingParameter("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != c.project {
		return nil, errQueueDoesNotExist()
	}
	q, e := c.queueByName(in.QueueName)
	if e != nil {
		return nil, e
	}
	return map[string]string{"QueueUrl": c.url(q)}, nil
}

func listQueues(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueNamePrefix string
		MaxResults      *int
		NextToken       string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *in.MaxResults)
	}
	qs, err := c.h.Store.ListQueues(c.ctx, c.project)
	if err != nil {
		return nil, errInternal()
	}
	out := map[string]any{}
	urls := []string{}
	for _, q := range qs { // by name
		if !strings.HasPrefix(q.Name, in.QueueNamePrefix) || (in.NextToken != "" && q.Name <= in.NextToken) {
			continue
		}
		if in.MaxResults != nil && len(urls) == *in.MaxResults {
			out["NextToken"] = qs[0].Name // replaced below
			break
		}
		urls = append(urls, c.url(q))
	}
	if _, more := out["NextToken"]; more {
		last := urls[len(urls)-1]
		out["NextToken"] = last[strings.LastIndex(last, "/")+1:]
	}
	if len(urls) > 0 {
		out["QueueUrls"] = urls
	}
	return out, nil
}

func deleteQueue(c *call, body []byte) (any, *Error) {
	var in struct{ QueueUrl string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	if err := c.h.Store.DeleteQueue(c.ctx, c.project, q.ID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errInvalidParameter("Queue %s is the dead-letter queue of another queue: %v", q.Name, err)
		}
		return nil, serviceError(err)
	}
	return struct{}{}, nil
}

var queueAttributeNames = []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
	"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy", "QueueArn", "CreatedTimestamp", "LastModifiedTimestamp",
	"MaximumMessageSize", "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}

func getQueueAttributes(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	want := map[string]bool{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			for _, a := range queueAttributeNames {
				want[a] = true
			}
			continue
		}
		known := false
		for _, a := range queueAttributeNames {
			known = known || a == n
		}
		if !known {
			return nil, errInvalidAttributeName(n)
		}
		want[n] = true
	}
	attrs := map[string]string{}
	if want["ApproximateNumberOfMessages"] || want["ApproximateNumberOfMessagesNotVisible"] || want["ApproximateNumberOfMessagesDelayed"] {
		counts, err := c.h.Store.QueueCounts(c.ctx, c.project, q.ID, time.Now().UTC())
		if err != nil {
			return nil, serviceError(err)
		}
		attrs["ApproximateNumberOfMessages"] = strconv.FormatInt(counts.Visible, 10)
		attrs["ApproximateNumberOfMessagesNotVisible"] = strconv.FormatInt(counts.InFlight, 10)
		attrs["ApproximateNumberOfMessagesDelayed"] = strconv.FormatInt(counts.Delayed, 10)
	}
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	attrs["VisibilityTimeout"] = secs(q.VisibilityTimeout)
	attrs["MessageRetentionPeriod"] = secs(q.Retention)
	attrs["DelaySeconds"] = secs(q.Delay)
	attrs["QueueArn"] = c.arn(q.Name)
	attrs["CreatedTimestamp"] = strconv.FormatInt(q.CreatedAt.Unix(), 10)
	attrs["LastModifiedTimestamp"] = attrs["CreatedTimestamp"]
	attrs["MaximumMessageSize"] = strconv.Itoa(maxMessageBytes)
	attrs["ReceiveMessageWaitTimeSeconds"] = "0"
	if q.FIFO { // SQS reports these for FIFO queues only
		attrs["FifoQueue"] = "true"
		attrs["ContentBasedDeduplication"] = strconv.FormatBool(q.ContentDedup)
		attrs["DeduplicationScope"] = "queue"
		attrs["FifoThroughputLimit"] = "perQueue"
	}
	if want["RedrivePolicy"] && q.DeadLetterQueueID != "" {
		dlq, err := c.h.Store.GetQueue(c.ctx, c.project, q.DeadLetterQueueID)
		if err == nil {
			b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": c.arn(dlq.Name), "maxReceiveCount": q.MaxReceiveCount})
			attrs["RedrivePolicy"] = string(b)
		}
	}
	for k := range attrs {
		if !want[k] {
			delete(attrs, k)
		}
	}
	if len(attrs) == 0 {
		return struct{}{}, nil
	}
	return map[string]any{"Attributes": attrs}, nil
}

func purgeQueue(c *call, body []byte) (any, *Error) {
	var in struct{ QueueUrl string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	if _, err := c.h.Store.PurgeQueue(c.ctx, c.project, q.ID); err != nil {
		return nil, serviceError(err)
	}
	return struct{}{}, nil
}

// --- messages ---

type messageAttribute struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

type sendEntry struct {
	Id                      string
	MessageBody             *string
	DelaySeconds            *int64
	MessageAttributes       map[string]messageAttribute
	MessageSystemAttributes map[string]messageAttribute
	MessageDeduplicationId  string
	MessageGroupId          string
}

func validBodyChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func checkAttrName(name string) *Error {
	bad := len(name) == 0 || len(name) > 256 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..")
	lower := strings.ToLower(name)
	bad = bad || strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.")
	for _, r := range name {
		bad = bad || !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}
	if bad {
		return errInvalidParameter("Message attribute name '%s' is invalid.", name)
	}
	return nil
}

// toMessage validates an entry for queue q and converts it to a queue
// message: String and Number attributes become the message's string
// attributes, a non-String DataType kept under TypeAttrPrefix+name.
func toMessage(q store.Queue, e sendEntry) (queue.Message, *Error) {
	if e.MessageBody == nil || *e.MessageBody == "" {
		return queue.Message{}, errMissingParameter("MessageBody")
	}
	body := *e.MessageBody
	if !utf8.ValidString(body) || strings.IndexFunc(body, func(r rune) bool { return !validBodyChar(r) }) >= 0 {
		return queue.Message{}, newErr(400, "InvalidMessageContents", "", "Invalid characters found in the message body.")
	}
	if !q.FIFO && (e.MessageDeduplicationId != "" || e.MessageGroupId != "") {
		return queue.Message{}, errInvalidParameter("The request includes a parameter that is not valid for this queue type: MessageDeduplicationId and MessageGroupId apply to FIFO queues.")
	}
	if q.FIFO {
		if e.MessageGroupId == "" {
			return queue.Message{}, errMissingParameter("MessageGroupId")
		}
		if e.MessageDeduplicationId == "" && !q.ContentDedup {
			return queue.Message{}, errInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		if e.DelaySeconds != nil {
			return queue.Message{}, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", *e.DelaySeconds)
		}
	}
	if len(e.MessageSystemAttributes) > 0 {
		return queue.Message{}, errInvalidParameter("Carrier does not support message system attributes.")
	}
	if len(e.MessageAttributes) > 10 {
		return queue.Message{}, errInvalidParameter("Number of message attributes [%d] exceeds the allowed maximum [10].", len(e.MessageAttributes))
	}
	m := queue.Message{Body: body, GroupID: e.MessageGroupId, DedupID: e.MessageDeduplicationId}
	size := len(body)
	if len(e.MessageAttributes) > 0 {
		m.Attributes = map[string]string{}
	}
	for name, a := range e.MessageAttributes {
		if err := checkAttrName(name); err != nil {
			return m, err
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		switch {
		case base == "Binary":
			return m, errInvalidParameter("Message attribute '%s': Carrier does not support Binary message attributes.", name)
		case base != "String" && base != "Number":
			return m, errInvalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		case a.StringValue == nil || *a.StringValue == "":
			return m, errInvalidParameter("Message (user) attribute '%s' must contain a non-empty value of type '%s'.", name, base)
		}
		if base == "Number" {
			if _, err := strconv.ParseFloat(*a.StringValue, 64); err != nil && !errors.Is(err, strconv.ErrRange) {
				return m, errInvalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", name)
			}
		}
		m.Attributes[name] = *a.StringValue
		if a.DataType != "String" {
			m.Attributes[TypeAttrPrefix+name] = a.DataType
		}
		size += len(name) + len(a.DataType) + len(*a.StringValue)
	}
	if size > maxMessageBytes {
		return m, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", maxMessageBytes)
	}
	if e.DelaySeconds != nil {
		if *e.DelaySeconds < 0 || *e.DelaySeconds > int64(queue.MaxDelay/time.Second) {
			return m, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= %d.", *e.DelaySeconds, int64(queue.MaxDelay/time.Second))
		}
		d := time.Duration(*e.DelaySeconds) * time.Second
		m.Delay = &d
	}
	return m, nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// userAttributes splits stored attributes into SQS message attributes.
func userAttributes(stored map[string]string) map[string]messageAttribute {
	out := map[string]messageAttribute{}
	for k, v := range stored {
		if strings.HasPrefix(k, TypeAttrPrefix) {
			continue
		}
		dt := stored[TypeAttrPrefix+k]
		if dt == "" {
			dt = "String"
		}
		out[k] = messageAttribute{DataType: dt, StringValue: &v}
	}
	return out
}

// attributesMD5 is MD5OfMessageAttributes as SQS computes it: for each
// attribute by name, the length-prefixed (4 bytes, big endian) name and data
// type, the transport type (1: string) and the length-prefixed value.
func attributesMD5(attrs map[string]messageAttribute) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(s string) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(s)))
		h.Write(l[:])
		h.Write([]byte(s))
	}
	for _, n := range names {
		a := attrs[n]
		put(n)
		put(a.DataType)
		h.Write([]byte{1})
		put(*a.StringValue)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type sendResult struct {
	Id                     string `json:"Id,omitempty"`
	MessageId              string `json:"MessageId"`
	MD5OfMessageBody       string `json:"MD5OfMessageBody"`
	MD5OfMessageAttributes string `json:"MD5OfMessageAttributes,omitempty"`
	SequenceNumber         string `json:"SequenceNumber,omitempty"`
}

func sentResult(id string, in sendEntry, m store.QueueMessage) sendResult {
	r := sendResult{Id: id, MessageId: m.ID, MD5OfMessageBody: md5Hex(m.Body)}
	if m.GroupID != "" && m.Seq > 0 {
		r.SequenceNumber = strconv.FormatInt(m.Seq, 10)
	}
	if len(in.MessageAttributes) > 0 {
		r.MD5OfMessageAttributes = attributesMD5(in.MessageAttributes)
	}
	return r
}

func sendMessage(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueUrl string
		sendEntry
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	m, e := toMessage(q, in.sendEntry)
	if e != nil {
		return nil, e
	}
	out, err := c.h.Queues.Send(c.ctx, c.project, q.ID, []queue.Message{m})
	if err != nil {
		return nil, serviceError(err)
	}
	return sentResult("", in.sendEntry, out[0]), nil
}

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

func sendMessageBatch(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueUrl string
		Entries  []sendEntry
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, en := range in.Entries {
		ids[i] = en.Id
		if en.MessageBody != nil {
			total += len(*en.MessageBody)
		}
	}
	if e := checkBatch(ids); e != nil {
		return nil, e
	}
	if total > maxMessageBytes {
		return nil, errBatch("BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxMessageBytes, total)
	}
	failed := []batchFailure{}
	var msgs []queue.Message
	var sent []sendEntry
	for _, en := range in.Entries {
		m, e := toMessage(q, en)
		if e != nil {
			failed = append(failed, failure(en.Id, e))
			continue
		}
		msgs, sent = append(msgs, m), append(sent, en)
	}
	ok := []sendResult{}
	if len(msgs) > 0 {
		out, err := c.h.Queues.Send(c.ctx, c.project, q.ID, msgs)
		if err != nil {
			return nil, serviceError(err)
		}
		for i, m := range out {
			ok = append(ok, sentResult(sent[i].Id, sent[i], m))
		}
	}
	return map[string]any{"Successful": ok, "Failed": failed}, nil
}

type receivedMessage struct {
	MessageId              string                      `json:"MessageId"`
	ReceiptHandle          string                      `json:"ReceiptHandle"`
	MD5OfBody              string                      `json:"MD5OfBody"`
	Body                   string                      `json:"Body"`
	Attributes             map[string]string           `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                      `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]messageAttribute `json:"MessageAttributes,omitempty"`
}

// attrWanted matches an attribute name against MessageAttributeNames
// ("All", ".*", "prefix.*" or a name).
func attrWanted(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == "All" || p == ".*" || p == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, ".*"); ok && strings.HasPrefix(name, prefix+".") {
			return true
		}
	}
	return false
}

func receiveMessage(c *call, body []byte) (any, *Error) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         *int
		VisibilityTimeout           *int64
		WaitTimeSeconds             *int64
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
		ReceiveRequestAttemptId     string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	q, e := c.queueByURL(in.QueueUrl)
	if e != nil {
		return nil, e
	}
	opts := queue.ReceiveOptions{Max: 1}
	if in.MaxNumberOfMessages != nil {
		if *in.MaxNumberOfMessages < 1 || *in.MaxNumberOfMessages > queue.MaxBatch {
			return nil, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", *in.MaxNumberOfMessages)
		}
		opts.Max = *in.MaxNumberOfMessages
	}
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > int64(queue.MaxWait/time.Second) {
			return nil, errInvalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
		}
		opts.Wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	if in.VisibilityTimeout != nil {
		if *in.VisibilityTimeout < 0 || *in.VisibilityTimeout > int64(queue.MaxVisibility/time.Second) {
			return nil, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", *in.VisibilityTimeout)
		}
		d := time.Duration(*in.VisibilityTimeout) * time.Second
		opts.Visibility = &d
	}
	sys := map[string]bool{}
	for _, n := range append(in.AttributeNames, in.MessageSystemAttributeNames...) {
		if n == "All" {
			sys["ApproximateReceiveCount"], sys["SentTimestamp"], sys["ApproximateFirstReceiveTimestamp"] = true, true, true
			sys["MessageGroupId"], sys["MessageDeduplicationId"], sys["SequenceNumber"] = true, true, true
		}
		sys[n] = true
	}
	got, err := c.h.Queues.Receive(c.ctx, c.project, q.ID, opts)
	if err != nil {
		return nil, serviceError(err)
	}
	msgs := []receivedMessage{}
	for _, m := range got {
		rm := receivedMessage{MessageId: m.ID, ReceiptHandle: m.ReceiptHandle, MD5OfBody: md5Hex(m.Body), Body: m.Body}
		attrs := map[string]string{}
		if sys["ApproximateReceiveCount"] {
			attrs["ApproximateReceiveCount"] = strconv.Itoa(m.ReceiveCount)
		}
		if sys["SentTimestamp"] {
			attrs["SentTimestamp"] = strconv.FormatInt(m.SentAt.UnixMilli(), 10)
		}
		if sys["ApproximateFirstReceiveTimestamp"] && m.FirstReceivedAt != nil {
			attrs["ApproximateFirstReceiveTimestamp"] = strconv.FormatInt(m.FirstReceivedAt.UnixMilli(), 10)
		}
		if q.FIFO {
			if sys["MessageGroupId"] {
				attrs["MessageGroupId"] = m.GroupID
			}
			if sys["MessageDeduplicationId"] {
				attrs["MessageDeduplicationId"] = m.DedupID
			}
			if sys["SequenceNumber"] {
				attrs["SequenceNumber"] = strconv.FormatInt(m.Seq, 10)
			}
		}
		if len(attrs) > 0 {
			rm.Attributes = attrs
		}
		user := map[string]messageAttribute{}
		for name, a := range userAttributes(m.Attributes) {
			if attrWanted(in.MessageAttributeNames, name) {
				user[name] = a
			}
		}
		if len(user) > 0 {
			rm.MessageAttributes, rm.MD5OfMessageAttributes = user, attributesMD5(user)
		}
		msgs = append(msgs, rm)
	}
	if len(msgs) == 0 {
		return struct{}{}, nil
	}
	return map[string]any{"Messages": msgs}, nil
}

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

type handleEntry struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout int64
}

type batchOK struct {
	Id string
}

func deleteMessageBatch(c *call, body []byte) (any, *Error) {
	return handleBatch(c, body, func(q store.Queue, en handleEntry) *Error { return c.deleteOne(q, en.ReceiptHandle) })
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
