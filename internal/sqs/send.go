package sqs

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"carrier/internal/queue"
	"carrier/internal/store"
)

type sendEntry struct {
	Id                      string
	MessageBody             *string
	DelaySeconds            *int64
	MessageAttributes       map[string]messageAttribute `query:"MessageAttribute"`
	MessageSystemAttributes map[string]messageAttribute `query:"MessageSystemAttribute"`
	MessageDeduplicationId  string
	MessageGroupId          string
}

func validBodyChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
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

func sendMessage(c *call) (any, *Error) {
	var in struct {
		QueueUrl string
		sendEntry
	}
	if e := c.decode(&in); e != nil {
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

type sendBatchResult struct {
	Successful []sendResult   `query:"SendMessageBatchResultEntry"`
	Failed     []batchFailure `query:"BatchResultErrorEntry"`
}

func sendMessageBatch(c *call) (any, *Error) {
	var in struct {
		QueueUrl string
		Entries  []sendEntry `query:"SendMessageBatchRequestEntry"`
	}
	if e := c.decode(&in); e != nil {
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
	return sendBatchResult{ok, failed}, nil
}
