package sqs

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"carrier/internal/ingest"
	"carrier/internal/queue"
	"carrier/internal/store"
)

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

type queueURLResult struct {
	QueueUrl string
}

func createQueue(c *call) (any, *Error) {
	var in struct {
		QueueName  string
		Attributes map[string]string `query:"Attribute"`
		Tags       map[string]string `json:"tags" query:"Tag,Key,Value"`
	}
	if e := c.decode(&in); e != nil {
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
		return queueURLResult{c.url(existing)}, nil
	}
	if err != nil {
		var verr *ingest.ValidationError
		if errors.As(err, &verr) {
			return nil, errInvalidParameter("Value %s for parameter QueueName is invalid. Reason: %s %s.", in.QueueName, verr.Field, verr.Message)
		}
		return nil, serviceError(err)
	}
	return queueURLResult{c.url(q)}, nil
}

func getQueueURL(c *call) (any, *Error) {
	var in struct {
		QueueName              string
		QueueOwnerAWSAccountId string
	}
	if e := c.decode(&in); e != nil {
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
	return queueURLResult{c.url(q)}, nil
}

type listQueuesResult struct {
	QueueUrls []string `json:"QueueUrls,omitempty" query:"QueueUrl"`
	NextToken string   `json:"NextToken,omitempty"`
}

func listQueues(c *call) (any, *Error) {
	var in struct {
		QueueNamePrefix string
		MaxResults      *int
		NextToken       string
	}
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: must be between 1 and 1000.", *in.MaxResults)
	}
	qs, err := c.h.Store.ListQueues(c.ctx, c.project)
	if err != nil {
		return nil, errInternal()
	}
	var out listQueuesResult
	for _, q := range qs { // by name
		if !strings.HasPrefix(q.Name, in.QueueNamePrefix) || (in.NextToken != "" && q.Name <= in.NextToken) {
			continue
		}
		if in.MaxResults != nil && len(out.QueueUrls) == *in.MaxResults {
			last := out.QueueUrls[len(out.QueueUrls)-1]
			out.NextToken = last[strings.LastIndex(last, "/")+1:]
			break
		}
		out.QueueUrls = append(out.QueueUrls, c.url(q))
	}
	return out, nil
}

func deleteQueue(c *call) (any, *Error) {
	var in struct{ QueueUrl string }
	if e := c.decode(&in); e != nil {
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

type queueAttributesResult struct {
	Attributes map[string]string `json:"Attributes,omitempty" query:"Attribute"`
}

func getQueueAttributes(c *call) (any, *Error) {
	var in struct {
		QueueUrl       string
		AttributeNames []string `query:"AttributeName"`
	}
	if e := c.decode(&in); e != nil {
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
	return queueAttributesResult{Attributes: attrs}, nil
}

func purgeQueue(c *call) (any, *Error) {
	var in struct{ QueueUrl string }
	if e := c.decode(&in); e != nil {
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
