package sqs

import (
	"strconv"
	"time"

	"carrier/internal/queue"
)

type receivedMessage struct {
	MessageId              string                      `json:"MessageId"`
	ReceiptHandle          string                      `json:"ReceiptHandle"`
	MD5OfBody              string                      `json:"MD5OfBody"`
	Body                   string                      `json:"Body"`
	Attributes             map[string]string           `json:"Attributes,omitempty" query:"Attribute"`
	MD5OfMessageAttributes string                      `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]messageAttribute `json:"MessageAttributes,omitempty" query:"MessageAttribute"`
}

type receiveResult struct {
	Messages []receivedMessage `json:"Messages,omitempty" query:"Message"`
}

func receiveMessage(c *call) (any, *Error) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         *int
		VisibilityTimeout           *int64
		WaitTimeSeconds             *int64
		AttributeNames              []string `query:"AttributeName"`
		MessageSystemAttributeNames []string `query:"MessageSystemAttributeName"`
		MessageAttributeNames       []string `query:"MessageAttributeName"`
		ReceiveRequestAttemptId     string
	}
	if e := c.decode(&in); e != nil {
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
	return receiveResult{Messages: msgs}, nil
}
