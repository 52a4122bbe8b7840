package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// snsClient sends signed SNS query-protocol requests.
type snsClient struct {
	t          *testing.T
	url        string
	id, secret string
	service    string // "sns" unless a test signs for something else
	region     string // "eu-west-1" unless set
}

type snsAnswer struct {
	Status int
	Body   string
	Error  struct {
		Type    string `xml:"Error>Type"`
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
		Request string `xml:"RequestId"`
	}
}

func (c *snsClient) call(action string, params ...string) snsAnswer {
	c.t.Helper()
	form := url.Values{"Action": {action}, "Version": {"2010-03-31"}}
	for i := 0; i+1 < len(params); i += 2 {
		form.Add(params[i], params[i+1])
	}
	body := form.Encode()
	req, _ := http.NewRequest("POST", c.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if c.id != "" {
		sum := sha256.Sum256([]byte(body))
		service := c.service
		if service == "" {
			service = "sns"
		}
		region := c.region
		if region == "" {
			region = "eu-west-1"
		}
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret}, req,
			hex.EncodeToString(sum[:]), service, region, time.Now())
		if err != nil {
			c.t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := snsAnswer{Status: resp.StatusCode, Body: string(b)}
	if resp.StatusCode != 200 {
		if err := xml.Unmarshal(b, &a.Error); err != nil {
			c.t.Fatalf("%s: error answer %d is not XML: %s", action, resp.StatusCode, b)
		}
		if !strings.Contains(a.Body, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">`) || a.Error.Request == "" {
			c.t.Fatalf("%s: error answer %s", action, b)
		}
	} else if !strings.Contains(a.Body, "<"+action+`Response xmlns="http://sns.amazonaws.com/doc/2010-03-31/">`) ||
		!strings.Contains(a.Body, "<ResponseMetadata><RequestId>") {
		c.t.Fatalf("%s: answer %s", action, b)
	}
	return a
}

// ok calls action, wants 200 and decodes the Result element into v (if not nil).
func (c *snsClient) ok(v any, action string, params ...string) {
	c.t.Helper()
	a := c.call(action, params...)
	if a.Status != 200 {
		c.t.Fatalf("%s %v: %d %s %s", action, params, a.Status, a.Error.Code, a.Error.Message)
	}
	if v != nil {
		start, end := strings.Index(a.Body, "<"+action+"Result>"), strings.Index(a.Body, "</"+action+"Result>")
		if start < 0 || end < 0 {
			c.t.Fatalf("%s: no result in %s", action, a.Body)
		}
		inner := a.Body[start : end+len("</"+action+"Result>")]
		if err := xml.Unmarshal([]byte(inner), v); err != nil {
			c.t.Fatalf("%s result %s: %v", action, inner, err)
		}
	}
}

// fails calls action and wants the SNS error code with its status.
func (c *snsClient) fails(status int, code string, action string, params ...string) snsAnswer {
	c.t.Helper()
	a := c.call(action, params...)
	if a.Status != status || a.Error.Code != code {
		c.t.Fatalf("%s %v: want %d %s, got %d %s %s", action, params, status, code, a.Status, a.Error.Code, a.Error.Message)
	}
	wantType := "Sender"
	if status >= 500 {
		wantType = "Receiver"
	}
	if a.Error.Type != wantType {
		c.t.Fatalf("%s: error type %s", action, a.Error.Type)
	}
	return a
}

type attributeEntries struct {
	Entries []struct {
		Key   string `xml:"key"`
		Value string `xml:"value"`
	} `xml:"entry"`
}

func (a attributeEntries) Map() map[string]string {
	m := map[string]string{}
	for _, e := range a.Entries {
		m[e.Key] = e.Value
	}
	return m
}

func snsCredential(t *testing.T, c *apptest.Carrier) (string, string) {
	r := c.Admin("POST", "/v1/sqs-credentials", nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("create credential: %d %s", r.Status, r.Body)
	}
	return r.Data()["access_key_id"].(string), r.Data()["secret_access_key"].(string)
}

// TestSNSProtocolErrors drives every action's main paths and error cases
// through the query protocol, signed as the AWS SDKs sign.
func TestSNSProtocolErrors(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			arn := "arn:aws:sns:eu-west-1:default:"

			// Authentication.
			(&snsClient{t: t, url: c.URL}).fails(403, "MissingAuthenticationToken", "ListTopics")
			(&snsClient{t: t, url: c.URL, id: id, secret: "wrong"}).fails(403, "SignatureDoesNotMatch", "ListTopics")
			(&snsClient{t: t, url: c.URL, id: "AKCRNOPE", secret: secret}).fails(403, "InvalidClientTokenId", "ListTopics")
			cl.fails(400, "InvalidAction", "CreateQueue")

			// Topics.
			var created struct {
				TopicArn string `xml:"TopicArn"`
			}
			cl.ok(&created, "CreateTopic", "Name", "orders", "Attributes.entry.1.key", "DisplayName", "Attributes.entry.1.value", "Orders",
				"Tags.member.1.Key", "team", "Tags.member.1.Value", "ops")
			if created.TopicArn != arn+"orders" {
				t.Fatalf("TopicArn %s", created.TopicArn)
			}
			cl.ok(&created, "CreateTopic", "Name", "orders", "Attributes.entry.1.key", "DisplayName", "Attributes.entry.1.value", "Orders")
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", "orders", "Attributes.entry.1.key", "DisplayName", "Attributes.entry.1.value", "Other")
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", "bad name")
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", strings.Repeat("a", 257))
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", "x.fifo")
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", "x", "Attributes.entry.1.key", "FifoTopic", "Attributes.entry.1.value", "true")
			cl.fails(400, "InvalidParameter", "CreateTopic", "Name", "x", "Attributes.entry.1.key", "Bogus", "Attributes.entry.1.value", "1")
			cl.ok(nil, "CreateTopic", "Name", "jobs.fifo", "Attributes.entry.1.key", "FifoTopic", "Attributes.entry.1.value", "true")
			var listed struct {
				Arns []string `xml:"Topics>member>TopicArn"`
			}
			cl.ok(&listed, "ListTopics")
			if fmt.Sprint(listed.Arns) != fmt.Sprint([]string{arn + "jobs.fifo", arn + "orders"}) {
				t.Fatalf("ListTopics %v", listed.Arns)
			}
			var attrs struct {
				Attributes attributeEntries `xml:"Attributes"`
			}
			cl.ok(&attrs, "GetTopicAttributes", "TopicArn", arn+"orders")
			if m := attrs.Attributes.Map(); m["DisplayName"] != "Orders" || m["TopicArn"] != arn+"orders" || m["Owner"] != "default" || m["Policy"] == "" {
				t.Fatalf("GetTopicAttributes %v", m)
			}
			cl.fails(404, "NotFound", "GetTopicAttributes", "TopicArn", arn+"nope")
			cl.fails(400, "InvalidParameter", "GetTopicAttributes", "TopicArn", "orders")
			cl.fails(403, "AuthorizationError", "GetTopicAttributes", "TopicArn", "arn:aws:sns:eu-west-1:123456789012:orders")
			cl.ok(nil, "SetTopicAttributes", "TopicArn", arn+"orders", "AttributeName", "Policy", "AttributeValue", `{"Version":"2012-10-17"}`)
			cl.fails(400, "InvalidParameter", "SetTopicAttributes", "TopicArn", arn+"orders", "AttributeName", "Policy", "AttributeValue", "not json")
			cl.fails(400, "InvalidParameter", "SetTopicAttributes", "TopicArn", arn+"orders", "AttributeName", "FifoTopic", "AttributeValue", "true")
			cl.fails(400, "InvalidParameter", "SetTopicAttributes", "TopicArn", arn+"orders", "AttributeName", "Nope", "AttributeValue", "1")
			cl.fails(404, "NotFound", "SetTopicAttributes", "TopicArn", arn+"nope", "AttributeName", "DisplayName", "AttributeValue", "x")

			// Tags.
			cl.ok(nil, "TagResource", "ResourceArn", arn+"orders", "Tags.member.1.Key", "env", "Tags.member.1.Value", "prod")
			cl.ok(nil, "UntagResource", "ResourceArn", arn+"orders", "TagKeys.member.1", "team")
			var tags struct {
				Keys []string `xml:"Tags>member>Key"`
			}
			cl.ok(&tags, "ListTagsForResource", "ResourceArn", arn+"orders")
			if fmt.Sprint(tags.Keys) != "[env]" {
				t.Fatalf("tags %v", tags.Keys)
			}
			cl.fails(404, "ResourceNotFound", "ListTagsForResource", "ResourceArn", arn+"nope")
			cl.fails(404, "ResourceNotFound", "TagResource", "ResourceArn", arn+"nope", "Tags.member.1.Key", "a", "Tags.member.1.Value", "b")

			// Subscriptions.
			qr := c.Admin("POST", "/v1/queues", map[string]any{"name": "q"})
			if qr.Status != 201 {
				t.Fatalf("queue: %d %s", qr.Status, qr.Body)
			}
			qarn := "arn:aws:sqs:eu-west-1:default:q"
			cl.fails(404, "NotFound", "Subscribe", "TopicArn", arn+"nope", "Protocol", "sqs", "Endpoint", qarn)
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "email", "Endpoint", "ops@example.com")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", "arn:aws:sqs:eu-west-1:default:missing")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", "arn:aws:sqs:eu-west-1:999:q")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"jobs.fifo", "Protocol", "sqs", "Endpoint", qarn)
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", qarn,
				"Attributes.entry.1.key", "FilterPolicy", "Attributes.entry.1.value", `{"a": [{"bogus": 1}]}`)
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", qarn,
				"Attributes.entry.1.key", "FilterPolicy", "Attributes.entry.1.value", `{"a": {"b": ["c"]}}`)
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", qarn,
				"Attributes.entry.1.key", "FilterPolicyScope", "Attributes.entry.1.value", "Everything")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", arn+"orders", "Protocol", "log", "Endpoint", "audit.jsonl",
				"Attributes.entry.1.key", "RawMessageDelivery", "Attributes.entry.1.value", "true")
			var sub struct {
				Arn string `xml:"SubscriptionArn"`
			}
			cl.ok(&sub, "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", qarn, "ReturnSubscriptionArn", "true",
				"Attributes.entry.1.key", "FilterPolicy", "Attributes.entry.1.value", `{"a": {"b": ["c"]}}`,
				"Attributes.entry.2.key", "FilterPolicyScope", "Attributes.entry.2.value", "MessageBody",
				"Attributes.entry.3.key", "RawMessageDelivery", "Attributes.entry.3.value", "true")
			if !strings.HasPrefix(sub.Arn, arn+"orders:") {
				t.Fatalf("SubscriptionArn %s", sub.Arn)
			}
			again := sub
			cl.ok(&again, "Subscribe", "TopicArn", arn+"orders", "Protocol", "sqs", "Endpoint", qarn)
			if again.Arn != sub.Arn {
				t.Fatalf("subscribing again: %s, first %s", again.Arn, sub.Arn)
			}
			attrs.Attributes.Entries = nil
			cl.ok(&attrs, "GetSubscriptionAttributes", "SubscriptionArn", sub.Arn)
			if m := attrs.Attributes.Map(); m["RawMessageDelivery"] != "true" || m["FilterPolicyScope"] != "MessageBody" || m["Endpoint"] != qarn ||
				m["TopicArn"] != arn+"orders" || m["Protocol"] != "sqs" || m["PendingConfirmation"] != "false" {
				t.Fatalf("GetSubscriptionAttributes %v", m)
			}
			cl.fails(404, "NotFound", "GetSubscriptionAttributes", "SubscriptionArn", arn+"orders:01a24296-a909-7653-902f-458263034310")
			cl.fails(400, "InvalidParameter", "GetSubscriptionAttributes", "SubscriptionArn", "nope")
			cl.ok(nil, "SetSubscriptionAttributes", "SubscriptionArn", sub.Arn, "AttributeName", "RawMessageDelivery", "AttributeValue", "false")
			// The body-scope policy does not compile for attributes.
			cl.fails(400, "InvalidParameter", "SetSubscriptionAttributes", "SubscriptionArn", sub.Arn, "AttributeName", "FilterPolicyScope", "AttributeValue", "MessageAttributes")
			cl.fails(400, "InvalidParameter", "SetSubscriptionAttributes", "SubscriptionArn", sub.Arn, "AttributeName", "Protocol", "AttributeValue", "x")
			attrs.Attributes.Entries = nil
			cl.ok(&attrs, "GetSubscriptionAttributes", "SubscriptionArn", sub.Arn)
			if m := attrs.Attributes.Map(); m["RawMessageDelivery"] != "false" || m["FilterPolicyScope"] != "MessageBody" {
				t.Fatalf("after SetSubscriptionAttributes %v", m)
			}
			var subs struct {
				Arns []string `xml:"Subscriptions>member>SubscriptionArn"`
			}
			cl.ok(&subs, "ListSubscriptions")
			if len(subs.Arns) != 1 || subs.Arns[0] != sub.Arn {
				t.Fatalf("ListSubscriptions %v", subs.Arns)
			}
			subs.Arns = nil
			cl.ok(&subs, "ListSubscriptionsByTopic", "TopicArn", arn+"jobs.fifo")
			if len(subs.Arns) != 0 {
				t.Fatalf("ListSubscriptionsByTopic %v", subs.Arns)
			}
			cl.fails(404, "NotFound", "ListSubscriptionsByTopic", "TopicArn", arn+"nope")

			// Publish.
			cl.fails(404, "NotFound", "Publish", "TopicArn", arn+"nope", "Message", "x")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", "")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", strings.Repeat("x", 256<<10+1))
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", "x", "Subject", strings.Repeat("s", 101))
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", "x", "Subject", "two\nlines")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", `{"sqs": "x"}`, "MessageStructure", "json")
			cl.fails(400, "ParameterValueInvalid", "Publish", "TopicArn", arn+"orders", "Message", "x",
				"MessageAttributes.entry.1.Name", "n", "MessageAttributes.entry.1.Value.DataType", "Number", "MessageAttributes.entry.1.Value.StringValue", "abc")
			cl.fails(400, "ParameterValueInvalid", "Publish", "TopicArn", arn+"orders", "Message", "x",
				"MessageAttributes.entry.1.Name", "n", "MessageAttributes.entry.1.Value.DataType", "Float", "MessageAttributes.entry.1.Value.StringValue", "1")
			cl.fails(400, "ParameterValueInvalid", "Publish", "TopicArn", arn+"orders", "Message", "x",
				"MessageAttributes.entry.1.Name", "AWS.x", "MessageAttributes.entry.1.Value.DataType", "String", "MessageAttributes.entry.1.Value.StringValue", "1")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"orders", "Message", "x", "MessageGroupId", "g")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"jobs.fifo", "Message", "x")
			cl.fails(400, "InvalidParameter", "Publish", "TopicArn", arn+"jobs.fifo", "Message", "x", "MessageGroupId", "g")
			var pub struct {
				MessageID string `xml:"MessageId"`
				Seq       string `xml:"SequenceNumber"`
			}
			cl.ok(&pub, "Publish", "TopicArn", arn+"orders", "Message", `{"a": {"b": "c"}}`)
			if pub.MessageID == "" || pub.Seq != "" {
				t.Fatalf("Publish %+v", pub)
			}
			first := pub
			cl.ok(&first, "Publish", "TopicArn", arn+"jobs.fifo", "Message", "x", "MessageGroupId", "g", "MessageDeduplicationId", "d1")
			dup := pub
			cl.ok(&dup, "Publish", "TopicArn", arn+"jobs.fifo", "Message", "x", "MessageGroupId", "g", "MessageDeduplicationId", "d1")
			next := pub
			cl.ok(&next, "Publish", "TopicArn", arn+"jobs.fifo", "Message", "y", "MessageGroupId", "g", "MessageDeduplicationId", "d2")
			if first.Seq == "" || dup.MessageID != first.MessageID || next.MessageID == first.MessageID || len(next.Seq) < len(first.Seq) ||
				(len(next.Seq) == len(first.Seq) && next.Seq <= first.Seq) {
				t.Fatalf("FIFO publishes: %+v %+v %+v", first, dup, next)
			}

			// PublishBatch.
			batch := func(n int, sameID bool) []string {
				var p []string
				for i := 1; i <= n; i++ {
					id := fmt.Sprint("e", i)
					if sameID {
						id = "e"
					}
					prefix := fmt.Sprintf("PublishBatchRequestEntries.member.%d.", i)
					p = append(p, prefix+"Id", id, prefix+"Message", fmt.Sprint("m", i))
				}
				return p
			}
			cl.fails(400, "TooManyEntriesInBatchRequest", "PublishBatch", append([]string{"TopicArn", arn + "orders"}, batch(11, false)...)...)
			cl.fails(400, "BatchEntryIdsNotDistinct", "PublishBatch", append([]string{"TopicArn", arn + "orders"}, batch(2, true)...)...)
			cl.fails(400, "EmptyBatchRequest", "PublishBatch", "TopicArn", arn+"orders")
			cl.fails(404, "NotFound", "PublishBatch", append([]string{"TopicArn", arn + "nope"}, batch(1, false)...)...)
			var br struct {
				OK     []string `xml:"Successful>member>Id"`
				Failed []struct {
					ID          string `xml:"Id"`
					Code        string `xml:"Code"`
					SenderFault bool   `xml:"SenderFault"`
				} `xml:"Failed>member"`
			}
			params := append([]string{"TopicArn", arn + "orders"}, batch(2, false)...)
			params = append(params, "PublishBatchRequestEntries.member.3.Id", "e3", "PublishBatchRequestEntries.member.3.Message", "x",
				"PublishBatchRequestEntries.member.3.Subject", "bad\nsubject")
			cl.ok(&br, "PublishBatch", params...)
			if fmt.Sprint(br.OK) != "[e1 e2]" || len(br.Failed) != 1 || br.Failed[0].ID != "e3" || br.Failed[0].Code != "InvalidParameter" || !br.Failed[0].SenderFault {
				t.Fatalf("PublishBatch %+v", br)
			}

			// The body-scope subscription matched the one JSON publish whose
			// a.b is "c" (delivered with the settings it has when it is sent:
			// raw delivery is off again by then).
			recv := c.Admin("POST", "/v1/queues/"+qr.Data()["id"].(string)+"/receive", map[string]any{"max_messages": 10, "wait_time_seconds": 5})
			msgs, _ := recv.Data()["messages"].([]any)
			if recv.Status != 200 || len(msgs) != 1 {
				t.Fatalf("receive: %d %s", recv.Status, recv.Body)
			}
			var env map[string]any
			json.Unmarshal([]byte(msgs[0].(map[string]any)["body"].(string)), &env)
			if env["Message"] != `{"a": {"b": "c"}}` || env["MessageId"] != pub.MessageID || env["Type"] != "Notification" {
				t.Fatalf("envelope %v", env)
			}

			// Unsubscribe and delete.
			cl.ok(nil, "Unsubscribe", "SubscriptionArn", sub.Arn)
			cl.fails(404, "NotFound", "Unsubscribe", "SubscriptionArn", sub.Arn)
			cl.ok(nil, "DeleteTopic", "TopicArn", arn+"orders")
			cl.ok(nil, "DeleteTopic", "TopicArn", arn+"orders")
			cl.fails(404, "NotFound", "GetTopicAttributes", "TopicArn", arn+"orders")
		})
	}
}

// TestSNSFIFOTopicToFIFOQueue publishes to a FIFO topic subscribed by a FIFO
// queue: the queue gets each message once, in publish order, in SNS's
// envelope with the SequenceNumber Publish answered.
func TestSNSFIFOTopicToFIFOQueue(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			qr := c.Admin("POST", "/v1/queues", map[string]any{"name": "jobs.fifo", "fifo": true})
			if qr.Status != 201 {
				t.Fatalf("queue: %d %s", qr.Status, qr.Body)
			}
			cl.ok(nil, "CreateTopic", "Name", "jobs.fifo", "Attributes.entry.1.key", "FifoTopic", "Attributes.entry.1.value", "true",
				"Attributes.entry.2.key", "ContentBasedDeduplication", "Attributes.entry.2.value", "true")
			arn := "arn:aws:sns:eu-west-1:default:jobs.fifo"
			cl.ok(nil, "Subscribe", "TopicArn", arn, "Protocol", "sqs", "Endpoint", "arn:aws:sqs:eu-west-1:default:jobs.fifo")
			var seqs []string
			for i, m := range []string{"one", "two", "one", "three"} { // the second "one" is a duplicate (content-based)
				var pub struct {
					MessageID string `xml:"MessageId"`
					Seq       string `xml:"SequenceNumber"`
				}
				cl.ok(&pub, "Publish", "TopicArn", arn, "Message", m, "MessageGroupId", "g")
				if i != 2 {
					seqs = append(seqs, pub.Seq)
				}
			}
			var got []string
			for i := 0; i < 20 && len(got) < 3; i++ {
				r := c.Admin("POST", "/v1/queues/"+qr.Data()["id"].(string)+"/receive", map[string]any{"max_messages": 10, "wait_time_seconds": 1})
				msgs, _ := r.Data()["messages"].([]any)
				for _, m := range msgs {
					var env map[string]any
					json.Unmarshal([]byte(m.(map[string]any)["body"].(string)), &env)
					// Signed as SNS signs what it writes into SQS queues.
					signed, _ := snsMessage(t, []byte(m.(map[string]any)["body"].(string)))
					verifySNSSignature(t, c.URL+"/sns/", signed)
					got = append(got, fmt.Sprint(env["Message"], "/", env["SequenceNumber"]))
					c.Admin("DELETE", "/v1/queues/"+qr.Data()["id"].(string)+"/messages/"+m.(map[string]any)["receipt_handle"].(string), nil)
				}
			}
			want := []string{"one/" + seqs[0], "two/" + seqs[1], "three/" + seqs[2]}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("received %v, want %v", got, want)
			}
		})
	}
}

// TestEventDataAsEnvelopeMessage: an event published through /v1/events to
// a queue subscription with "message": "published" carries only its data as
// the envelope's Message, so a consumer ported from SNS reads its own
// fields (json.loads(env["Message"])["solution"]); the default carries the
// whole event.
func TestEventDataAsEnvelopeMessage(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			queues := map[string]string{}
			for _, m := range []string{"published", "event"} {
				q := c.Admin("POST", "/v1/queues", map[string]any{"name": "q-" + m})
				queues[m] = q.Data()["id"].(string)
				r := c.Admin("POST", "/v1/subscriptions", map[string]any{"name": m, "event_types": []string{"task.solved"},
					"destination": map[string]any{"type": "queue", "queue": "q-" + m, "message": m}})
				if r.Status != 201 {
					t.Fatalf("subscribe: %d %s", r.Status, r.Body)
				}
			}
			c.Publish(apptest.AdminKey, map[string]any{"type": "task.solved", "subject": "t1", "data": map[string]any{"task_id": "t1", "solution": "03AG"}})
			for m, id := range queues {
				r := c.Admin("POST", "/v1/queues/"+id+"/receive", map[string]any{"max_messages": 1, "wait_time_seconds": 5})
				msgs, _ := r.Data()["messages"].([]any)
				if len(msgs) != 1 {
					t.Fatalf("%s: %s", m, r.Body)
				}
				var env struct{ Message, Subject string }
				json.Unmarshal([]byte(msgs[0].(map[string]any)["body"].(string)), &env)
				var inner map[string]any
				json.Unmarshal([]byte(env.Message), &inner)
				if m == "published" && (inner["solution"] != "03AG" || env.Subject != "t1") {
					t.Errorf("published: envelope %+v", env)
				}
				if m == "event" {
					if data, _ := inner["data"].(map[string]any); data["solution"] != "03AG" || inner["type"] != "task.solved" {
						t.Errorf("event: envelope %+v", env)
					}
				}
			}
		})
	}
}
