package app_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

func sqsClient(url, id, secret string, retries int) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		RetryMaxAttempts: retries,
	})
}

// TestSQSProtocol drives Carrier with the unmodified AWS SDK for Go v2 SQS client.
func TestSQSProtocol(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			r := c.Admin("POST", "/v1/sqs-credentials", nil)
			if r.Status != http.StatusCreated {
				t.Fatalf("create credential: %d %s", r.Status, r.Body)
			}
			id, secret := r.Data()["access_key_id"].(string), r.Data()["secret_access_key"].(string)
			if !strings.HasPrefix(id, "AKCR") || secret == "" {
				t.Fatalf("credential: %v", r.Data())
			}
			if l := c.Admin("GET", "/v1/sqs-credentials", nil).List(); len(l) != 1 || l[0]["secret_access_key"] != nil {
				t.Fatalf("list credentials: %v", l)
			}
			ctx := context.Background()
			cl := sqsClient(c.URL, id, secret, 0)

			created, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("results"),
				Attributes: map[string]string{"VisibilityTimeout": "5"}})
			if err != nil {
				t.Fatalf("CreateQueue: %v", err)
			}
			qurl := *created.QueueUrl
			if qurl != c.URL+"/default/results" {
				t.Fatalf("queue url %s", qurl)
			}
			got, err := cl.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("results")})
			if err != nil || *got.QueueUrl != qurl {
				t.Fatalf("GetQueueUrl: %v %v", got, err)
			}
			_, err = cl.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
			var notExist *types.QueueDoesNotExist
			if !errors.As(err, &notExist) {
				t.Fatalf("GetQueueUrl of a missing queue: %v", err)
			}
			list, err := cl.ListQueues(ctx, &sqs.ListQueuesInput{})
			if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != qurl {
				t.Fatalf("ListQueues: %v %v", list, err)
			}

			// Long poll: a receive waiting when the message is sent gets it.
			type recv struct {
				out *sqs.ReceiveMessageOutput
				err error
			}
			done := make(chan recv, 1)
			start := time.Now()
			go func() {
				out, err := cl.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qurl), WaitTimeSeconds: 10, MaxNumberOfMessages: 10,
					MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
				done <- recv{out, err}
			}()
			time.Sleep(300 * time.Millisecond)
			sent, err := cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(qurl), MessageBody: aws.String("result-1"),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"kind":  {DataType: aws.String("String"), StringValue: aws.String("captcha")},
					"score": {DataType: aws.String("Number"), StringValue: aws.String("0.9")},
				}})
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			rv := <-done
			if rv.err != nil || len(rv.out.Messages) != 1 {
				t.Fatalf("long-poll receive: %v %v", rv.out, rv.err)
			}
			m := rv.out.Messages[0]
			if time.Since(start) > 5*time.Second || *m.MessageId != *sent.MessageId || *m.Body != "result-1" ||
				*m.MessageAttributes["score"].DataType != "Number" || *m.MessageAttributes["kind"].StringValue != "captcha" ||
				m.Attributes["ApproximateReceiveCount"] != "1" || m.Attributes["SentTimestamp"] == "" || m.Attributes["ApproximateFirstReceiveTimestamp"] == "" ||
				*m.MD5OfMessageAttributes != *sent.MD5OfMessageAttributes {
				t.Fatalf("received %+v (attrs %v, user %v) sent %+v", m, m.Attributes, m.MessageAttributes, sent)
			}

			// Make it visible again at once, receive it again, delete it.
			if _, err := cl.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(qurl), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatalf("ChangeMessageVisibility: %v", err)
			}
			again, err := cl.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(qurl), WaitTimeSeconds: 2,
				AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"}})
			if err != nil || len(again.Messages) != 1 || again.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
				t.Fatalf("receive after visibility change: %+v %v", again, err)
			}
			if _, err := cl.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(qurl), ReceiptHandle: again.Messages[0].ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}

			batch, err := cl.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(qurl), Entries: []types.SendMessageBatchRequestEntry{
				{Id: aws.String("a"), MessageBody: aws.String("b-1")},
				{Id: aws.String("b"), MessageBody: aws.String("b-2")},
				{Id: aws.String("c"), MessageBody: aws.String("b-3"), DelaySeconds: 600},
			}})
			if err != nil || len(batch.Successful) != 3 || len(batch.Failed) != 0 {
				t.Fatalf("SendMessageBatch: %+v %v", batch, err)
			}
			attrs, err := cl.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(qurl), AttributeNames: []types.QueueAttributeName{"All"}})
			if err != nil {
				t.Fatalf("GetQueueAttributes: %v", err)
			}
			a := attrs.Attributes
			if a["ApproximateNumberOfMessages"] != "2" || a["ApproximateNumberOfMessagesDelayed"] != "1" || a["ApproximateNumberOfMessagesNotVisible"] != "0" ||
				a["VisibilityTimeout"] != "5" || a["QueueArn"] != "arn:aws:sqs:eu-west-1:default:results" || a["CreatedTimestamp"] == "" {
				t.Fatalf("attributes: %v", a)
			}
			if _, err := cl.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(qurl)}); err != nil {
				t.Fatalf("PurgeQueue: %v", err)
			}
			attrs, err = cl.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(qurl), AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages"}})
			if err != nil || attrs.Attributes["ApproximateNumberOfMessages"] != "0" {
				t.Fatalf("after purge: %v %v", attrs, err)
			}

			// A wrong secret and an unknown key are refused with AWS's codes.
			for what, bad := range map[string]*sqs.Client{
				"wrong secret": sqsClient(c.URL, id, "not-the-secret", 1),
				"unknown key":  sqsClient(c.URL, "AKCRUNKNOWN000000000", secret, 1),
			} {
				_, err := bad.ListQueues(ctx, &sqs.ListQueuesInput{})
				var apiErr smithy.APIError
				want := map[string]string{"wrong secret": "SignatureDoesNotMatch", "unknown key": "InvalidClientTokenId"}[what]
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != want {
					t.Errorf("%s: %v, want %s", what, err, want)
				}
			}
			if _, err := cl.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(qurl)}); err != nil {
				t.Fatalf("DeleteQueue: %v", err)
			}
		})
	}
}
