package topic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"carrier/internal/clock"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/ingest"
	"carrier/internal/store"
)

// Attribute is one SNS message attribute: DataType String, Number, Binary or
// String.Array (optionally with a custom ".suffix"); Binary values are kept
// base64-encoded, as SNS writes them into notifications.
type Attribute struct {
	DataType string
	Value    string
}

// Message is one publish to a topic.
type Message struct {
	Message    string
	Subject    string
	Attributes map[string]Attribute
	// Structure is "json" when Message is an object of messages by protocol.
	Structure       string
	GroupID         string
	DeduplicationID string
}

// Published is what a publish made.
type Published struct {
	MessageID      string
	SequenceNumber string // FIFO topics
	Duplicate      bool
}

var attrNamePattern = regexp.MustCompile(`^[A-Za-z0-9_\-.]+$`)
var fifoIDPattern = regexp.MustCompile("^[\\x21-\\x7e]{1,128}$")

func validJSON(s string) bool { return json.Valid([]byte(s)) }

// Size is what the 256 KiB limit counts of a message: the message, and the
// names, types and values of its attributes.
func (m Message) Size() int {
	n := len(m.Message)
	for k, a := range m.Attributes {
		n += len(k) + len(a.DataType) + len(a.Value)
	}
	return n
}

func baseType(dt string) string {
	for _, b := range []string{"String.Array", "String", "Number", "Binary"} {
		if dt == b || strings.HasPrefix(dt, b+".") {
			return b
		}
	}
	return ""
}

// checkAttributes validates message attributes as SNS does.
func checkAttributes(attrs map[string]Attribute) error {
	if len(attrs) > MaxAttributes {
		return invalid("MessageAttributes", "Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), MaxAttributes)
	}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		lower := strings.ToLower(name)
		switch {
		case len(name) > 256 || !attrNamePattern.MatchString(name) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
			return invalid("MessageAttributes", "Message attribute name '%s' is invalid: it may contain only letters, digits, _ - and . (not at either end, not twice in a row), up to 256 characters.", name)
		case strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon."):
			return invalid("MessageAttributes", "Message attribute name '%s' is invalid: names starting with AWS. or Amazon. are reserved.", name)
		}
		switch baseType(a.DataType) {
		case "":
			return invalid("MessageAttributes", "The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
		case "Number":
			f, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
			if err != nil || f > 1e9 || f < -1e9 {
				return invalid("MessageAttributes", "Could not cast message attribute '%s' value to number.", name)
			}
		case "String.Array":
			var arr []any
			if err := json.Unmarshal([]byte(a.Value), &arr); err != nil {
				return invalid("MessageAttributes", "The message attribute '%s' with type 'String.Array' must be a JSON array of strings, numbers, booleans or nulls.", name)
			}
			for _, v := range arr {
				switch v.(type) {
				case map[string]any, []any:
					return invalid("MessageAttributes", "The message attribute '%s' with type 'String.Array' must be a JSON array of strings, numbers, booleans or nulls.", name)
				}
			}
		}
		if a.Value == "" {
			return invalid("MessageAttributes", "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
		}
	}
	return nil
}

func checkSubject(s string) error {
	switch {
	case s == "":
		return nil
	case len(s) > MaxSubjectLen || !utf8.ValidString(s):
		return invalid("Subject", "Subject must be at most %d characters", MaxSubjectLen)
	case strings.ContainsAny(s, "\r\n"):
		return invalid("Subject", "Subject must not contain line breaks")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid("Subject", "Subject must contain only printable characters")
		}
	}
	return nil
}

// Check validates a message for topic t without publishing it.
func Check(fifo, contentDedup bool, m Message) error {
	switch {
	case m.Message == "":
		return invalid("Message", "Empty message")
	case m.Size() > MaxMessageBytes:
		return invalid("Message", "Message too long")
	case !utf8.ValidString(m.Message):
		return invalid("Message", "Message must be UTF-8")
	}
	if err := checkSubject(m.Subject); err != nil {
		return err
	}
	if err := checkAttributes(m.Attributes); err != nil {
		return err
	}
	switch m.Structure {
	case "":
	case "json":
		var byProtocol map[string]any
		if err := json.Unmarshal([]byte(m.Message), &byProtocol); err != nil {
			return invalid("Message", "Message Structure - JSON message body failed to parse")
		}
		if _, ok := byProtocol["default"].(string); !ok {
			return invalid("Message", "Message Structure - No default entry in JSON message body")
		}
		for _, v := range byProtocol {
			if _, ok := v.(string); !ok {
				return invalid("Message", "Message Structure - every value must be a string")
			}
		}
	default:
		return invalid("MessageStructure", "Invalid value [%s] for MessageStructure: only json is supported", m.Structure)
	}
	if !fifo {
		switch {
		case m.GroupID != "":
			return invalid("MessageGroupId", "The request includes MessageGroupId parameter that is not valid for this topic type")
		case m.DeduplicationID != "":
			return invalid("MessageDeduplicationId", "The request includes MessageDeduplicationId parameter that is not valid for this topic type")
		}
		return nil
	}
	switch {
	case m.GroupID == "":
		return invalid("MessageGroupId", "The MessageGroupId parameter is required for FIFO topics")
	case !fifoIDPattern.MatchString(m.GroupID):
		return invalid("MessageGroupId", "MessageGroupId must be 1-128 printable ASCII characters")
	case m.DeduplicationID == "" && !contentDedup:
		return invalid("MessageDeduplicationId", "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
	case m.DeduplicationID != "" && !fifoIDPattern.MatchString(m.DeduplicationID):
		return invalid("MessageDeduplicationId", "MessageDeduplicationId must be 1-128 printable ASCII characters")
	}
	return nil
}

// Publish publishes m to topic name as a Carrier event of type
// EventType(name) and returns once the event is committed. The event's data
// is the message when it is JSON (so body-scope filter policies see it), or
// the message as a JSON string; its attributes are the message attributes,
// with hidden ones (destqueue.TypeAttrPrefix, destqueue.SNSAttrPrefix) that
// let a delivery give back the message byte for byte with its types.
func (s *Service) Publish(ctx context.Context, projectID, name string, m Message) (Published, error) {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return Published{}, err
	}
	if err := s.Limit.Allow(t.ProjectID, 1); err != nil {
		return Published{}, err
	}
	return s.publish(ctx, t, m)
}

func (s *Service) publish(ctx context.Context, t store.Topic, m Message) (Published, error) {
	projectID, name, fifo := t.ProjectID, t.Name, t.FIFO
	if err := Check(fifo, t.ContentDedup, m); err != nil {
		return Published{}, err
	}
	attrs := ingest.Attributes{}
	for k, a := range m.Attributes {
		attrs[k] = a.Value
		if a.DataType != "String" {
			attrs[destqueue.TypeAttrPrefix+k] = a.DataType
		}
	}
	data := json.RawMessage(m.Message)
	if !json.Valid(data) {
		b, _ := json.Marshal(m.Message)
		data = b
		attrs[destqueue.AttrText] = "true"
	}
	if m.Structure == "json" {
		attrs[destqueue.AttrStructure] = "json"
	}
	if v := t.Attributes["SignatureVersion"]; v != "" && v != "1" {
		attrs[destqueue.AttrSignatureVersion] = v
	}
	id := clock.NewID()
	in := ingest.Input{ProjectID: projectID, Type: EventType(name), Subject: m.Subject, Data: data, Attributes: attrs, EventID: id, CapFanout: true}
	var seq string
	if fifo {
		dedup := m.DeduplicationID
		if dedup == "" {
			sum := sha256.Sum256([]byte(m.Message))
			dedup = hex.EncodeToString(sum[:])
		}
		// Deduplication ids are per topic in SNS; ingest's are per project.
		sum := sha256.Sum256([]byte(name + "\x00" + dedup))
		in.DeduplicationID = "sns:" + hex.EncodeToString(sum[:])
		in.OrderingKey = m.GroupID
		seq = sequenceNumber(id)
		attrs[destqueue.AttrSequence] = seq
	}
	res, err := s.pub.Publish(ctx, in)
	var verr *ingest.ValidationError
	if errors.As(err, &verr) {
		return Published{}, invalid("Message", "%s %s", verr.Field, verr.Message)
	}
	if err != nil {
		return Published{}, err
	}
	out := Published{MessageID: res.EventID, Duplicate: res.Duplicate}
	if fifo {
		out.SequenceNumber = seq
		if res.Duplicate && res.EventID != "" {
			out.SequenceNumber = sequenceNumber(res.EventID)
		}
	}
	return out, nil
}

// sequenceNumber is a FIFO publish's SequenceNumber: its UUIDv7 event id as a
// decimal number, so later publishes have larger numbers.
func sequenceNumber(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return ""
	}
	return new(big.Int).SetBytes(u[:]).String()
}

// BatchEntry is one entry of PublishBatch.
type BatchEntry struct {
	ID      string
	Message Message
}

// BatchResult is the outcome of one entry: Err is nil when it was published.
type BatchResult struct {
	ID        string
	Published Published
	Err       error
}

var batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// PublishBatch publishes up to MaxBatchEntries messages (at most
// MaxMessageBytes in all); each entry succeeds or fails on its own. The
// error is for the batch as a whole.
func (s *Service) PublishBatch(ctx context.Context, projectID, name string, entries []BatchEntry) ([]BatchResult, error) {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	switch {
	case len(entries) == 0:
		return nil, &BatchError{Code: "EmptyBatchRequest", Message: "The batch request doesn't contain any entries"}
	case len(entries) > MaxBatchEntries:
		return nil, &BatchError{Code: "TooManyEntriesInBatchRequest", Message: "The batch request contains more entries than permissible"}
	}
	seen, total := map[string]bool{}, 0
	for _, e := range entries {
		if !batchIDPattern.MatchString(e.ID) {
			return nil, &BatchError{Code: "InvalidBatchEntryId", Message: "The Id of a batch entry in a batch request doesn't abide by the specification"}
		}
		if seen[e.ID] {
			return nil, &BatchError{Code: "BatchEntryIdsNotDistinct", Message: "Two or more batch entries in the request have the same Id"}
		}
		seen[e.ID] = true
		total += e.Message.Size()
	}
	if total > MaxMessageBytes {
		return nil, &BatchError{Code: "BatchRequestTooLong", Message: "The length of all the messages put together is more than the limit"}
	}
	if err := s.Limit.Allow(t.ProjectID, len(entries)); err != nil {
		return nil, err
	}
	out := make([]BatchResult, len(entries))
	// One entry after the other: a FIFO topic's entries keep their order.
	for i, e := range entries {
		p, err := s.publish(ctx, t, e.Message)
		out[i] = BatchResult{ID: e.ID, Published: p, Err: err}
	}
	return out, nil
}

// BatchError refuses a whole batch, with SNS's error code.
type BatchError struct{ Code, Message string }

func (e *BatchError) Error() string { return e.Code + ": " + e.Message }
