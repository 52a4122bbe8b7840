package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

func sqsCredential(t *testing.T, c *apptest.Carrier) (id, secret string) {
	t.Helper()
	r := c.Admin("POST", "/v1/sqs-credentials", nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("create credential: %d %s", r.Status, r.Body)
	}
	return r.Data()["access_key_id"].(string), r.Data()["secret_access_key"].(string)
}

// TestSQSQueryProtocolBoto3 drives Carrier with boto3 forced to SQS's query
// protocol (testdata/sqs_query/client.py): every action Carrier serves, in
// forms and XML, with the error codes AWS's query protocol answers.
func TestSQSQueryProtocolBoto3(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 is not installed")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := sqsCredential(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "testdata/sqs_query/client.py")
			cmd.Env = append(os.Environ(), "CARRIER_URL="+c.URL, "ACCESS_KEY_ID="+id, "SECRET_ACCESS_KEY="+secret,
				"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ok ") {
				t.Fatalf("boto3 query client: %v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}

type queryError struct {
	Type, Code, Message string
}

type queryAnswer struct {
	XMLName   xml.Name
	Error     queryError `xml:"Error"`
	RequestID string     `xml:"RequestId"`
	Meta      string     `xml:"ResponseMetadata>RequestId"`
	QueueURL  string     `xml:"CreateQueueResult>QueueUrl"`
	Sent      string     `xml:"SendMessageResult>MessageId"`
	Received  []string   `xml:"ReceiveMessageResult>Message>Body"`
}

// sendQuery sends a query-protocol form to base+path, signed for sqs when id
// is set, and answers the status, content type and body.
func sendQuery(t *testing.T, base, path, id, secret string, form url.Values) (int, string, []byte) {
	t.Helper()
	body := form.Encode()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if id != "" {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req,
			hex.EncodeToString(sum[:]), "sqs", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw
}

// postQuery sends a query-protocol form to Carrier and parses its XML answer.
func postQuery(t *testing.T, c *apptest.Carrier, path, id, secret string, form url.Values) (int, queryAnswer, string) {
	t.Helper()
	status, ct, raw := sendQuery(t, c.URL, path, id, secret, form)
	var a queryAnswer
	if err := xml.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s: not XML: %v\n%s", form.Get("Action"), err, raw)
	}
	if ct != "text/xml" {
		t.Fatalf("%s: content type %q", form.Get("Action"), ct)
	}
	return status, a, string(raw)
}

// TestSQSQueryProtocolWire checks what boto3 cannot send: requests to a
// queue's URL (as older SDKs send them), an unknown action, an empty batch,
// an unsigned form; and that both protocols reach the same queues.
func TestSQSQueryProtocolWire(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := sqsCredential(t, c)
			form := func(kv ...string) url.Values {
				v := url.Values{"Version": {"2012-11-05"}}
				for i := 0; i+1 < len(kv); i += 2 {
					v.Set(kv[i], kv[i+1])
				}
				return v
			}
			status, a, raw := postQuery(t, c, "/", id, secret, form("Action", "CreateQueue", "QueueName", "wire", "Attribute.1.Name", "VisibilityTimeout", "Attribute.1.Value", "7"))
			if status != 200 || a.XMLName.Local != "CreateQueueResponse" || a.XMLName.Space != "http://queue.amazonaws.com/doc/2012-11-05/" ||
				a.QueueURL != c.URL+"/default/wire" || a.Meta == "" {
				t.Fatalf("CreateQueue: %d %s", status, raw)
			}
			// To the queue URL, without QueueUrl.
			if status, a, raw = postQuery(t, c, "/default/wire", id, secret, form("Action", "SendMessage", "MessageBody", "by path")); status != 200 || a.Sent == "" {
				t.Fatalf("SendMessage to the queue URL: %d %s", status, raw)
			}
			// The JSON protocol sees the same queue and message.
			cl := sqsClient(c.URL, id, secret, 0)
			got, err := cl.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(c.URL + "/default/wire"), WaitTimeSeconds: 5})
			if err != nil || len(got.Messages) != 1 || *got.Messages[0].Body != "by path" || *got.Messages[0].MessageId != a.Sent {
				t.Fatalf("JSON receive of a query send: %+v %v", got, err)
			}
			if status, a, raw = postQuery(t, c, "/default/wire", id, secret, form("Action", "GetQueueAttributes", "AttributeName.1", "VisibilityTimeout")); status != 200 ||
				!strings.Contains(raw, "<Attribute><Name>VisibilityTimeout</Name><Value>7</Value></Attribute>") {
				t.Fatalf("GetQueueAttributes: %d %s", status, raw)
			}
			for _, tc := range []struct {
				name       string
				path, id   string
				form       url.Values
				status     int
				code, kind string
			}{
				{"unknown action", "/", id, form("Action", "FlyAway"), 400, "InvalidAction", "Sender"},
				{"no action", "/", id, form(), 400, "MissingParameter", "Sender"},
				{"unsupported action", "/", id, form("Action", "SetQueueAttributes", "QueueUrl", c.URL+"/default/wire"), 400, "AWS.SimpleQueueService.UnsupportedOperation", "Sender"},
				{"missing queue", "/", id, form("Action", "GetQueueUrl", "QueueName", "nope"), 400, "AWS.SimpleQueueService.NonExistentQueue", "Sender"},
				{"missing queue by path", "/default/nope", id, form("Action", "ReceiveMessage"), 400, "AWS.SimpleQueueService.NonExistentQueue", "Sender"},
				{"empty batch", "/default/wire", id, form("Action", "DeleteMessageBatch"), 400, "AWS.SimpleQueueService.EmptyBatchRequest", "Sender"},
				{"repeated batch id", "/default/wire", id, form("Action", "SendMessageBatch", "SendMessageBatchRequestEntry.1.Id", "a", "SendMessageBatchRequestEntry.1.MessageBody", "x",
					"SendMessageBatchRequestEntry.2.Id", "a", "SendMessageBatchRequestEntry.2.MessageBody", "y"), 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Sender"},
				{"bad integer", "/default/wire", id, form("Action", "ReceiveMessage", "WaitTimeSeconds", "soon"), 400, "InvalidParameterValue", "Sender"},
				{"unsigned", "/", "", form("Action", "ListQueues"), 403, "MissingAuthenticationToken", "Sender"},
			} {
				status, a, raw := postQuery(t, c, tc.path, tc.id, secret, tc.form)
				if status != tc.status || a.XMLName.Local != "ErrorResponse" || a.Error.Code != tc.code || a.Error.Type != tc.kind ||
					a.Error.Message == "" || a.RequestID == "" || !strings.Contains(raw, "<Detail/>") {
					t.Errorf("%s: %d %s", tc.name, status, raw)
				}
			}
			// A form that is neither signed for sqs nor names SQS's version
			// (SNS's, say) is not SQS's to answer.
			resp, err := http.PostForm(c.URL+"/", url.Values{"Action": {"ListQueues"}, "Version": {"2010-03-31"}})
			if err != nil {
				t.Fatal(err)
			}
			other, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if strings.Contains(string(other), "queue.amazonaws.com") {
				t.Fatalf("another version's form answered by SQS: %d %s", resp.StatusCode, other)
			}
		})
	}
}
