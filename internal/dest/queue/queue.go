// Package queue is the pull-queue destination: every delivery enqueues the
// event into one of the project's queues, either as the raw event JSON or
// (the default) wrapped in the SNS notification envelope that SQS consumers
// subscribed to a topic expect (json.loads(body)["Message"]).
//
// The delivery id is the message's deduplication id, so a retried or replayed
// attempt of a delivery whose message is still in the queue does not enqueue
// a second copy.
package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/sns/signing"
	"carrier/internal/store"
)

// TimeFormat is the format of timestamps in messages.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MaxBodyBytes is the largest message a queue takes.
const MaxBodyBytes = 256 << 10

// Config is the settings of a queue destination.
type Config struct {
	// Queue is the id or name of a queue of the subscription's project.
	Queue string `json:"queue"`
	// Raw sends the event JSON itself instead of the SNS envelope (with
	// Message "published": the published message itself, as SNS's
	// RawMessageDelivery does).
	Raw bool `json:"raw,omitempty"`
	// Message is what the envelope's Message carries: MessageEvent (the
	// default) the event JSON, MessagePublished the message an SNS publish
	// carried, byte for byte (see Published).
	Message string `json:"message,omitempty"`
	// TopicArn is the envelope's TopicArn (default arn:carrier:<project>:<type>).
	TopicArn string `json:"topic_arn,omitempty"`
}

// What a queue destination's envelope carries as its Message.
const (
	MessageEvent     = "event"
	MessagePublished = "published"
)

// Hidden event attributes that an SNS publish (internal/topic) writes so that
// the envelope can give back exactly what was published. Names starting with
// "AWS." are reserved in SNS and SQS, so no publisher can send them.
const (
	// TypeAttrPrefix + name keeps the DataType of a non-String attribute
	// (the same prefix as the SQS front's, so a raw delivery keeps types).
	TypeAttrPrefix = "AWS.DataType."
	// SNSAttrPrefix starts every other hidden attribute of an SNS publish.
	SNSAttrPrefix = "AWS.SNS."
	// AttrText, "true", says the published message was not JSON and the
	// event's data is the message as a JSON string.
	AttrText = SNSAttrPrefix + "Text"
	// AttrStructure, "json", says the message was published with
	// MessageStructure=json: the data is an object of messages by protocol.
	AttrStructure = SNSAttrPrefix + "MessageStructure"
	// AttrSequence is a FIFO topic publish's SequenceNumber.
	AttrSequence = SNSAttrPrefix + "SequenceNumber"
	// AttrSignatureVersion is the SignatureVersion of the topic when it
	// was published to, "2" (absent: "1").
	AttrSignatureVersion = SNSAttrPrefix + "SignatureVersion"
)

// Published is the message an SNS publish carried, from its event: the data
// itself when the message was JSON, the JSON string's contents otherwise, and
// with MessageStructure=json the member for protocol (or "default").
func Published(ev store.Event, protocol string) string {
	data := ev.Data
	if ev.Attributes[AttrStructure] == "json" {
		var m map[string]string
		if json.Unmarshal(data, &m) == nil {
			if v, ok := m[protocol]; ok {
				return v
			}
			return m["default"]
		}
	}
	if ev.Attributes[AttrText] == "true" {
		var s string
		if json.Unmarshal(data, &s) == nil {
			return s
		}
	}
	return string(data)
}

// PublicAttributes are an event's attributes without the hidden ones.
func PublicAttributes(attrs map[string]string) map[string]Attribute {
	out := make(map[string]Attribute, len(attrs))
	for k, v := range attrs {
		if strings.HasPrefix(k, "AWS.") {
			continue
		}
		t := attrs[TypeAttrPrefix+k]
		if t == "" {
			t = "String"
		}
		out[k] = Attribute{Type: t, Value: v}
	}
	return out
}

// ParseConfig reads and validates a queue destination's settings. Errors are
// *dest.FieldError. Whether the queue exists is for the caller to check.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	fields := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return c, &dest.FieldError{Field: "destination", Message: "must be a JSON object"}
		}
	}
	for name, v := range fields {
		switch name {
		case "queue":
			if err := json.Unmarshal(v, &c.Queue); err != nil {
				return c, &dest.FieldError{Field: "queue", Message: "must be a string"}
			}
		case "raw":
			if err := json.Unmarshal(v, &c.Raw); err != nil {
				return c, &dest.FieldError{Field: "raw", Message: "must be a boolean"}
			}
		case "message":
			if err := json.Unmarshal(v, &c.Message); err != nil || (c.Message != MessageEvent && c.Message != MessagePublished) {
				return c, &dest.FieldError{Field: "message", Message: `must be "event" or "published"`}
			}
		case "topic_arn":
			if err := json.Unmarshal(v, &c.TopicArn); err != nil || len(c.TopicArn) > 1024 {
				return c, &dest.FieldError{Field: "topic_arn", Message: "must be a string of at most 1024 characters"}
			}
		default:
			return c, &dest.FieldError{Field: name, Message: "is not a setting of queue destinations (known: queue, raw, message, topic_arn)"}
		}
	}
	if c.Queue == "" {
		return c, &dest.FieldError{Field: "queue", Message: "is required: the id or name of a queue of this project"}
	}
	if len(c.Queue) > 128 {
		return c, &dest.FieldError{Field: "queue", Message: "must be at most 128 characters"}
	}
	return c, nil
}

// Redact returns the settings as the API shows them: a queue destination holds no secrets.
func Redact(raw json.RawMessage) json.RawMessage {
	return append(json.RawMessage(nil), raw...)
}

// Event is the raw event JSON.
type Event struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Timestamp  string            `json:"timestamp"`
	Subject    string            `json:"subject"`
	Data       json.RawMessage   `json:"data"`
	Attributes map[string]string `json:"attributes"`
}

// Attribute is one SNS message attribute.
type Attribute struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// Notification is the SNS notification envelope.
type Notification struct {
	Type              string               `json:"Type"`
	MessageID         string               `json:"MessageId"`
	TopicArn          string               `json:"TopicArn"`
	Subject           string               `json:"Subject"`
	Message           string               `json:"Message"`
	Timestamp         string               `json:"Timestamp"`
	MessageAttributes map[string]Attribute `json:"MessageAttributes"`
}

// publishedNotification is the envelope of an SNS publish, as SNS writes it
// into an SQS queue: Subject only when the publish had one, SequenceNumber on
// FIFO topics.
type publishedNotification struct {
	Type              string               `json:"Type"`
	MessageID         string               `json:"MessageId"`
	SequenceNumber    string               `json:"SequenceNumber,omitempty"`
	TopicArn          string               `json:"TopicArn"`
	Subject           string               `json:"Subject,omitempty"`
	Message           string               `json:"Message"`
	Timestamp         string               `json:"Timestamp"`
	MessageAttributes map[string]Attribute `json:"MessageAttributes,omitempty"`
}

// Render returns the message body for a job; at stands in for the event's
// time when it has none.
func Render(job store.Job, raw bool, at time.Time) (string, error) {
	return RenderConfig(job, Config{Raw: raw}, at)
}

// RenderConfig returns the message body for a job sent with settings c.
func RenderConfig(job store.Job, c Config, at time.Time) (string, error) {
	ev := job.Event
	t := ev.CreatedAt
	if t.IsZero() {
		t = at
	}
	topicArn := c.TopicArn
	if topicArn == "" {
		projectID := job.Subscription.ProjectID
		if projectID == "" {
			projectID = ev.ProjectID
		}
		topicArn = "arn:carrier:" + projectID + ":" + ev.Type
	}
	if c.Message == MessagePublished {
		msg := Published(ev, "sqs")
		if c.Raw {
			return msg, nil
		}
		env, err := json.Marshal(publishedNotification{Type: "Notification", MessageID: ev.ID, SequenceNumber: ev.Attributes[AttrSequence],
			TopicArn: topicArn, Subject: ev.Subject, Message: msg, Timestamp: t.UTC().Format(TimeFormat), MessageAttributes: PublicAttributes(ev.Attributes)})
		return string(env), err
	}
	raw := c.Raw
	attrs := ev.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	data := ev.Data
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("null")
	}
	body, err := json.Marshal(Event{ID: ev.ID, Type: ev.Type, Timestamp: t.UTC().Format(TimeFormat), Subject: ev.Subject, Data: data, Attributes: attrs})
	if err != nil {
		return "", err
	}
	if raw {
		return string(body), nil
	}
	ma := make(map[string]Attribute, len(attrs))
	for k, v := range attrs {
		ma[k] = Attribute{Type: "String", Value: v}
	}
	env, err := json.Marshal(Notification{Type: "Notification", MessageID: job.Delivery.ID, TopicArn: topicArn,
		Subject: ev.Type, Message: string(body), Timestamp: t.UTC().Format(TimeFormat), MessageAttributes: ma})
	return string(env), err
}

// Enqueuer puts one message into a project's queue named by id or name; a
// message with the same dedupID already in the queue is not added again.
// groupID is the message group if the queue is FIFO. A missing queue is
// store.ErrNotFound.
type Enqueuer interface {
	Enqueue(ctx context.Context, projectID, queueRef, body string, attrs map[string]string, dedupID, groupID string) (store.QueueMessage, error)
}

// groupID is the FIFO message group of a job's event: its ordering key (known
// when the subscription is FIFO), else its subject, else store.DefaultOrderingKey,
// as a FIFO subscription orders deliveries.
func groupID(job store.Job) string {
	switch {
	case job.Delivery.OrderingKey != "":
		return job.Delivery.OrderingKey
	case job.Event.Subject != "":
		return job.Event.Subject
	}
	return store.DefaultOrderingKey
}

// Sender delivers jobs into queues.
type Sender struct {
	Queues Enqueuer
	// Signer, when set, signs the SNS envelope of published messages as SNS
	// signs what it writes into SQS queues (SignatureVersion, Signature,
	// SigningCertURL, UnsubscribeURL), so a consumer that verifies them can.
	Signer *signing.Signer
	// PublicURL is the base of SigningCertURL and UnsubscribeURL.
	PublicURL func() string
}

// render is RenderConfig, with the envelope of a published message signed
// when the Sender has a Signer.
func (s *Sender) render(job store.Job, c Config, at time.Time) (string, error) {
	if s.Signer == nil || c.Message != MessagePublished || c.Raw {
		return RenderConfig(job, c, at)
	}
	ev := job.Event
	t := ev.CreatedAt
	if t.IsZero() {
		t = at
	}
	base := s.PublicURL()
	m := signing.Message{Type: signing.TypeNotification, MessageID: ev.ID, SequenceNumber: ev.Attributes[AttrSequence], TopicArn: c.TopicArn,
		Subject: ev.Subject, Message: Published(ev, "sqs"), Timestamp: t.UTC().Format(TimeFormat),
		SignatureVersion: ev.Attributes[AttrSignatureVersion], SigningCertURL: base + s.Signer.CertPath(),
		UnsubscribeURL: signing.UnsubscribeURL(base, c.TopicArn+":"+job.Subscription.ID)}
	if attrs := PublicAttributes(ev.Attributes); len(attrs) > 0 {
		m.MessageAttributes = make(map[string]signing.Attribute, len(attrs))
		for k, a := range attrs {
			m.MessageAttributes[k] = signing.Attribute{Type: a.Type, Value: a.Value}
		}
	}
	if err := s.Signer.Sign(&m); err != nil {
		return "", err
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// DeadLetter enqueues the message of job, which could not be delivered, into
// queue (a queue of the job's project) as SNS moves a message to a
// subscription's dead-letter queue: the SNS envelope of the published
// message (signed, with topicArn) as the body, its message attributes, and
// ErrorCode, ErrorMessage and RequestID (the delivery id) saying why. The
// delivery id is the deduplication id, so a repeated move adds nothing
// while the first is still in the queue.
func (s *Sender) DeadLetter(ctx context.Context, job store.Job, queue, topicArn, code, message string, at time.Time) error {
	c := Config{Queue: queue, Message: MessagePublished, TopicArn: topicArn}
	body, err := s.render(job, c, at)
	if err != nil {
		return err
	}
	attrs := map[string]string{}
	for k, v := range job.Event.Attributes {
		if !strings.HasPrefix(k, SNSAttrPrefix) {
			attrs[k] = v
		}
	}
	if len(message) > 1024 {
		message = message[:1024]
	}
	attrs["ErrorCode"], attrs["ErrorMessage"], attrs["RequestID"] = code, message, job.Delivery.ID
	_, err = s.Queues.Enqueue(ctx, job.Subscription.ProjectID, queue, body, attrs, "dlq:"+job.Delivery.ID, groupID(job))
	return err
}

// Send enqueues the job's event.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	start := time.Now()
	c, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: err.Error()}
	}
	body, err := s.render(job, c, at)
	if err != nil {
		return dispatch.Result{ErrorCode: "render_failed", ErrorMessage: err.Error()}
	}
	if len(body) > MaxBodyBytes {
		return dispatch.Result{ErrorCode: "message_too_large", ErrorMessage: "the message exceeds the queue limit of 256 KiB", Duration: time.Since(start)}
	}
	attrs := make(map[string]string, len(job.Event.Attributes))
	for k, v := range job.Event.Attributes {
		if c.Message == MessagePublished && strings.HasPrefix(k, SNSAttrPrefix) {
			continue
		}
		attrs[k] = v
	}
	m, err := s.Queues.Enqueue(ctx, job.Subscription.ProjectID, c.Queue, body, attrs, job.Delivery.ID, groupID(job))
	d := time.Since(start)
	if errors.Is(err, store.ErrNotFound) {
		// Retrying is still worth it: the queue may be (re)created.
		return dispatch.Result{Retryable: true, ErrorCode: "queue_not_found", ErrorMessage: "queue " + c.Queue + " does not exist in the project", Duration: d}
	}
	if err != nil {
		return dispatch.Result{Retryable: true, ErrorCode: "enqueue_failed", ErrorMessage: err.Error(), Duration: d}
	}
	return dispatch.Result{Delivered: true, Duration: d, ResponseBody: `{"message_id":"` + m.ID + `"}`}
}
