// Package topic is the topics service: SNS topics of a project, publishing to
// them and subscribing to them, on top of Carrier's own pipeline.
//
// A topic adds a name, settings and tags, nothing else. Publishing to topic T
// is publishing a Carrier event of type "sns.<T>" (EventType) through
// internal/ingest, so /v1/events, webhooks, filter policies and FIFO ordering
// see it like any event, and a subscription to a topic is an ordinary
// subscription (internal/subscription) to that event type whose destination
// is the SNS protocol's kind (sqs → the queue destination). The "sns." prefix
// keeps topics apart from Carrier's own event types (task.solved,
// webhook.disabled, alert.*): topic names cannot contain dots except in
// ".fifo", so no topic can turn into one of them, and "sns.*" subscribes to
// every topic of a project.
//
// Errors are *dest.FieldError naming the SNS parameter at fault (a transport
// answers them as SNS's InvalidParameter) and store.ErrNotFound wrapped in a
// *NotFoundError for a missing topic or subscription.
package topic

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/ingest"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// EventTypePrefix starts the event type of every topic.
const EventTypePrefix = "sns."

// EventType is the event type that publishing to topic name publishes.
func EventType(name string) string { return EventTypePrefix + name }

// Limits as in SNS.
const (
	MaxNameLen        = 256
	MaxMessageBytes   = 256 << 10
	MaxSubjectLen     = 100
	MaxAttributes     = 10
	MaxTags           = 50
	MaxBatchEntries   = 10
	maxDisplayNameLen = 100
	maxPolicyBytes    = 30 << 10
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Store is what the topics service reads and writes itself.
type Store interface {
	store.TopicStore
	QueueByName(ctx context.Context, projectID, name string) (store.Queue, error)
}

// Publisher is the ordinary publish path.
type Publisher interface {
	Publish(ctx context.Context, in ingest.Input) (ingest.Result, error)
}

// Service manages topics.
type Service struct {
	store Store
	pub   Publisher
	subs  *subscription.Service
	now   atomic.Pointer[func() time.Time]

	// EmailEnabled says an SMTP server for email and email-json
	// subscriptions is configured (CARRIER_SNS_EMAIL_SMTP).
	EmailEnabled bool
	// DeadLetters moves what a subscription with a RedrivePolicy could not
	// deliver to its dead-letter queue (see DeadLetter); set before serving.
	DeadLetters DeadLetters
	// LambdaFunctions maps function ARNs to URLs
	// (CARRIER_SNS_LAMBDA_FUNCTIONS); set before serving.
	LambdaFunctions map[string]string
	// Limit is each project's allowance of publishes (nil: no limit).
	Limit *ingest.RateLimiter
}

// SetClock replaces the clock confirmation tokens are dated and checked
// with (tests move it past a token's two days).
func (s *Service) SetClock(now func() time.Time) { s.now.Store(&now) }

func (s *Service) clock() time.Time {
	if f := s.now.Load(); f != nil {
		return (*f)()
	}
	return clock.Now()
}

// New returns the topics service.
func New(s Store, pub Publisher, subs *subscription.Service) *Service {
	return &Service{store: s, pub: pub, subs: subs}
}

// NotFoundError is a missing topic or subscription.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What + " does not exist" }

// Unwrap makes it store.ErrNotFound.
func (e *NotFoundError) Unwrap() error { return store.ErrNotFound }

func invalid(field, format string, args ...any) *dest.FieldError {
	return &dest.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// CheckName checks a topic name: 1–256 letters, digits, - and _, with the
// ".fifo" suffix exactly when the topic is FIFO.
func CheckName(name string, fifo bool) error {
	base, isFIFO := strings.CutSuffix(name, ".fifo")
	switch {
	case name == "" || len(name) > MaxNameLen || !namePattern.MatchString(base):
		return invalid("Name", "Topic Name must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.")
	case fifo && !isFIFO:
		return invalid("Name", "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.")
	case !fifo && isFIFO:
		return invalid("Name", "Topic Name must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long; .fifo is for FIFO topics (FifoTopic=true).")
	}
	return nil
}

// settable are the topic attributes SetTopicAttributes and CreateTopic take.
var settable = map[string]bool{"DisplayName": true, "Policy": true, "ContentBasedDeduplication": true, "FifoTopic": true,
	"DeliveryPolicy": true, "KmsMasterKeyId": true, "SignatureVersion": true, "TracingConfig": true, "ArchivePolicy": true}

func boolAttr(field, v string) (bool, error) {
	switch v {
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE", "":
		return false, nil
	}
	return false, invalid(field, "must be true or false")
}

// applyAttribute writes one attribute onto t.
func applyAttribute(t *store.Topic, name, value string, create bool) error {
	field := "Attributes." + name
	if !settable[name] {
		return invalid("AttributeName", "Invalid attribute name: %s", name)
	}
	switch name {
	case "FifoTopic":
		fifo, err := boolAttr(field, value)
		if err != nil {
			return err
		}
		if !create {
			return invalid("AttributeName", "FifoTopic cannot be changed after the topic is created")
		}
		t.FIFO = fifo
	case "ContentBasedDeduplication":
		on, err := boolAttr(field, value)
		if err != nil {
			return err
		}
		if on && !t.FIFO {
			return invalid(field, "Content-based deduplication can only be set for FIFO topics")
		}
		t.ContentDedup = on
	case "DisplayName":
		if len(value) > maxDisplayNameLen {
			return invalid(field, "DisplayName must be at most %d characters", maxDisplayNameLen)
		}
		setAttr(t, name, value)
	case "SignatureVersion":
		if value != "" && value != "1" && value != "2" {
			return invalid(field, "SignatureVersion must be 1 or 2")
		}
		setAttr(t, name, value)
	case "Policy", "DeliveryPolicy", "ArchivePolicy":
		// Stored and shown, not enforced: Carrier's access control is its
		// SQS credentials and API keys.
		if value != "" && !jsonObject(value) {
			return invalid(field, "%s must be a JSON object", name)
		}
		if len(value) > maxPolicyBytes {
			return invalid(field, "%s must be at most %d bytes", name, maxPolicyBytes)
		}
		setAttr(t, name, value)
	default:
		if len(value) > 1024 {
			return invalid(field, "must be at most 1024 characters")
		}
		setAttr(t, name, value)
	}
	return nil
}

func setAttr(t *store.Topic, name, value string) {
	if t.Attributes == nil {
		t.Attributes = map[string]string{}
	}
	if value == "" {
		delete(t.Attributes, name)
		return
	}
	t.Attributes[name] = value
}

// Create makes topic name, or returns the existing topic of that name when its
// attributes are the ones given (CreateTopic is idempotent in SNS); tags are
// added to an existing topic.
func (s *Service) Create(ctx context.Context, projectID, name string, attrs, tags map[string]string) (store.Topic, error) {
	now := clock.Now()
	t := store.Topic{ID: clock.NewID(), ProjectID: projectID, Name: name, Attributes: map[string]string{}, Tags: map[string]string{},
		CreatedAt: now, UpdatedAt: now}
	if v, ok := attrs["FifoTopic"]; ok {
		if err := applyAttribute(&t, "FifoTopic", v, true); err != nil {
			return store.Topic{}, err
		}
	}
	if err := CheckName(name, t.FIFO); err != nil {
		return store.Topic{}, err
	}
	for _, k := range sortedKeys(attrs) {
		if k == "FifoTopic" {
			continue
		}
		if err := applyAttribute(&t, k, attrs[k], true); err != nil {
			return store.Topic{}, err
		}
	}
	if err := checkTags(tags); err != nil {
		return store.Topic{}, err
	}
	for k, v := range tags {
		t.Tags[k] = v
	}
	err := s.store.CreateTopic(ctx, t)
	if !errors.Is(err, store.ErrConflict) {
		return t, err
	}
	old, err := s.store.TopicByName(ctx, projectID, name)
	if err != nil {
		return store.Topic{}, err
	}
	if old.FIFO != t.FIFO || old.ContentDedup != t.ContentDedup || !sameAttrs(old.Attributes, t.Attributes, attrs) {
		return store.Topic{}, invalid("Attributes", "Topic already exists with different attributes")
	}
	if len(tags) > 0 {
		if err := s.Tag(ctx, projectID, name, tags); err != nil {
			return store.Topic{}, err
		}
		return s.Get(ctx, projectID, name)
	}
	return old, nil
}

// sameAttrs tells whether the attributes a repeated CreateTopic sent match
// the topic's (attributes it did not send do not count).
func sameAttrs(old, want map[string]string, sent map[string]string) bool {
	for k := range sent {
		if k == "FifoTopic" || k == "ContentBasedDeduplication" {
			continue
		}
		if old[k] != want[k] {
			return false
		}
	}
	return true
}

func jsonObject(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && validJSON(s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Get returns topic name of projectID.
func (s *Service) Get(ctx context.Context, projectID, name string) (store.Topic, error) {
	t, err := s.store.TopicByName(ctx, projectID, name)
	if errors.Is(err, store.ErrNotFound) {
		return t, &NotFoundError{What: "Topic"}
	}
	return t, err
}

// List returns projectID's topics by name.
func (s *Service) List(ctx context.Context, projectID string) ([]store.Topic, error) {
	return s.store.ListTopics(ctx, projectID)
}

// Delete removes topic name and its subscriptions, in one transaction.
// Deleting a topic that does not exist is not an error, as in SNS.
func (s *Service) Delete(ctx context.Context, projectID, name string) error {
	subs, err := s.Subscriptions(ctx, projectID, name)
	if err != nil {
		return err
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.ID
	}
	if err := s.store.DeleteTopic(ctx, projectID, name, ids); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if len(ids) > 0 {
		s.subs.Changed(ctx)
	}
	return nil
}

// SetAttribute changes one attribute of topic name.
func (s *Service) SetAttribute(ctx context.Context, projectID, name, attr, value string) error {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return err
	}
	if err := applyAttribute(&t, attr, value, false); err != nil {
		return err
	}
	t.UpdatedAt = clock.Now()
	return s.store.UpdateTopic(ctx, t)
}

func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return invalid("Tags", "Could not complete request: tag quota of per resource exceeded (at most %d tags)", MaxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 {
			return invalid("Tags", "Tag keys must be 1-128 characters")
		}
		if len(v) > 256 {
			return invalid("Tags", "Tag values must be at most 256 characters")
		}
	}
	return nil
}

// Tag adds or replaces tags of topic name.
func (s *Service) Tag(ctx context.Context, projectID, name string, tags map[string]string) error {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return err
	}
	for k, v := range tags {
		t.Tags[k] = v
	}
	if err := checkTags(t.Tags); err != nil {
		return err
	}
	t.UpdatedAt = clock.Now()
	return s.store.UpdateTopic(ctx, t)
}

// Untag removes tags of topic name.
func (s *Service) Untag(ctx context.Context, projectID, name string, keys []string) error {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(t.Tags, k)
	}
	t.UpdatedAt = clock.Now()
	return s.store.UpdateTopic(ctx, t)
}
