package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestSQSFIFO drives a FIFO queue with the unmodified AWS SDK for Go v2:
// interleaved groups come back in group order, a group with a message in
// flight is blocked while the other goes on, and deduplication answers with
// the first MessageId.
func TestSQSFIFO(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			r := c.Admin("POST", "/v1/sqs-credentials", nil)
			if r.Status != http.StatusCreated {
				t.Fatalf("create credential: %d %s", r.Status, r.Body)
			}
			ctx := context.Background()
			cl := sqsClient(c.URL, r.Data()["access_key_id"].(string), r.Data()["secret_access_key"].(string), 0)
			code := func(err error) string {
				var apiErr smithy.APIError
				if errors.As(err, &apiErr) {
					return apiErr.ErrorCode()
				}
				return ""
			}

			if _, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"),
				Attributes: map[string]string{"FifoQueue": "true"}}); code(err) != "InvalidParameterValue" {
				t.Errorf("FIFO queue without .fifo: %v", err)
			}
			created, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs.fifo"),
				Attributes: map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "false", "VisibilityTimeout": "30"}})
			if err != nil {
				t.Fatalf("CreateQueue: %v", err)
			}
			qurl := created.QueueUrl
			attrs, err := cl.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl, AttributeNames: []types.QueueAttributeName{"All"}})
			if err != nil || attrs.Attributes["FifoQueue"] != "true" || attrs.Attributes["ContentBasedDeduplication"] != "false" {
				t.Fatalf("GetQueueAttributes: %v %v", attrs, err)
			}

			if _, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String("x"),
				MessageDeduplicationId: aws.String("x")}); code(err) != "MissingParameter" {
				t.Errorf("send without MessageGroupId: %v", err)
			}
			if _, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String("x"),
				MessageGroupId: aws.String("g")}); code(err) != "InvalidParameterValue" {
				t.Errorf("send without MessageDeduplicationId: %v", err)
			}
			if _, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String("x"),
				MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("x"), DelaySeconds: 5}); code(err) != "InvalidParameterValue" {
				t.Errorf("send with DelaySeconds: %v", err)
			}

			// Interleaved groups a and b.
			first, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String("a1"),
				MessageGroupId: aws.String("a"), MessageDeduplicationId: aws.String("a1")})
			if err != nil || first.SequenceNumber == nil {
				t.Fatalf("SendMessage: %v %v", first, err)
			}
			entry := func(g, b string) types.SendMessageBatchRequestEntry {
				return types.SendMessageBatchRequestEntry{Id: aws.String(b), MessageBody: aws.String(b), MessageGroupId: aws.String(g), MessageDeduplicationId: aws.String(b)}
			}
			batch, err := cl.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: qurl, Entries: []types.SendMessageBatchRequestEntry{
				entry("b", "b1"), entry("a", "a2"), entry("b", "b2"), entry("a", "a3")}})
			if err != nil || len(batch.Successful) != 4 || len(batch.Failed) != 0 {
				t.Fatalf("SendMessageBatch: %+v %v", batch, err)
			}
			dup, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl, MessageBody: aws.String("a1"),
				MessageGroupId: aws.String("a"), MessageDeduplicationId: aws.String("a1")})
			if err != nil || *dup.MessageId != *first.MessageId {
				t.Fatalf("duplicate send: %v %v, want MessageId %s", dup, err, *first.MessageId)
			}

			receive := func(max int32) []types.Message {
				t.Helper()
				out, err := cl.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qurl, MaxNumberOfMessages: max,
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"}})
				if err != nil {
					t.Fatalf("ReceiveMessage: %v", err)
				}
				return out.Messages
			}
			got := receive(1)
			if len(got) != 1 || *got[0].Body != "a1" || got[0].Attributes["MessageGroupId"] != "a" ||
				got[0].Attributes["MessageDeduplicationId"] != "a1" || got[0].Attributes["SequenceNumber"] != *first.SequenceNumber {
				t.Fatalf("first receive: %+v", got)
			}
			a1 := got[0]
			// Group a is in flight: b comes out in order, a is blocked.
			got = receive(10)
			if len(got) != 2 || *got[0].Body != "b1" || *got[1].Body != "b2" {
				t.Fatalf("while a1 is in flight: %+v", got)
			}
			if got := receive(10); len(got) != 0 {
				t.Fatalf("received while every group is in flight: %+v", got)
			}
			if _, err := cl.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: qurl, ReceiptHandle: a1.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
			got = receive(10)
			if len(got) != 2 || *got[0].Body != "a2" || *got[1].Body != "a3" {
				t.Fatalf("after deleting a1: %+v", got)
			}

			// A standard queue still refuses FIFO parameters.
			std, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("plain")})
			if err != nil {
				t.Fatalf("CreateQueue: %v", err)
			}
			if _, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: std.QueueUrl, MessageBody: aws.String("x"),
				MessageGroupId: aws.String("g")}); code(err) != "InvalidParameterValue" {
				t.Errorf("MessageGroupId on a standard queue: %v", err)
			}
		})
	}
}
