package topic

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// redrivePolicy is an SNS subscription's RedrivePolicy.
type redrivePolicy struct {
	DeadLetterTargetArn string `json:"deadLetterTargetArn"`
}

// checkRedrivePolicy reads a RedrivePolicy: a JSON object whose
// deadLetterTargetArn is an SQS queue of the project.
func checkRedrivePolicy(projectID, v string) (queue string, err error) {
	var rp redrivePolicy
	if json.Unmarshal([]byte(v), &rp) != nil || rp.DeadLetterTargetArn == "" {
		return "", invalid("Attributes", "RedrivePolicy: Redrive policy must be a JSON object with deadLetterTargetArn")
	}
	q, ok := QueueName(projectID, rp.DeadLetterTargetArn)
	if !ok {
		return "", invalid("Attributes", "RedrivePolicy: deadLetterTargetArn must be the ARN of an SQS queue of this account (arn:aws:sqs:<region>:%s:<queue>)", projectID)
	}
	return q, nil
}

// DeadLetter is the delivery engine's OnFailed hook: a message that an SNS
// subscription with a RedrivePolicy could not deliver is moved to its
// dead-letter queue, as SNS does (the failed delivery stays visible and
// replayable too). It returns what the failed attempt records about the
// move; "" for every other subscription.
func (s *Service) DeadLetter(ctx context.Context, job store.Job, res dispatch.Result) string {
	v, ok := view(job.Subscription)
	if !ok || v.RedrivePolicy == "" || s.DeadLetters == nil || strings.HasPrefix(job.Event.Type, "sns.subscription.") {
		return ""
	}
	queue, err := checkRedrivePolicy(v.ProjectID, v.RedrivePolicy)
	if err != nil {
		return "not moved to a dead-letter queue: " + err.Error()
	}
	code := res.ErrorCode
	if code == "" {
		code = "delivery_failed"
	}
	arn := v.topicArn()
	err = s.DeadLetters.DeadLetter(ctx, job, queue, arn, code, res.ErrorMessage, time.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "not moved: dead-letter queue " + queue + " does not exist"
	case err != nil:
		return "not moved to dead-letter queue " + queue + ": " + err.Error()
	}
	return "moved to dead-letter queue " + queue
}

// topicArn is the topic ARN the subscription's settings carry (every SNS
// protocol's destination keeps the one it was subscribed with).
func (v Subscription) topicArn() string {
	var d struct {
		TopicArn string `json:"topic_arn"`
	}
	json.Unmarshal(v.Destination, &d)
	if d.TopicArn == "" {
		return "arn:aws:sns:us-east-1:" + v.ProjectID + ":" + v.Topic
	}
	return d.TopicArn
}
