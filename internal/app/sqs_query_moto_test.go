package app_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// startMoto runs moto's server on a loopback port until the test ends.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaves flattens an XML answer to "path=text" for each element without
// children (path from the root, namespace dropped).
func leaves(t *testing.T, raw []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	d := xml.NewDecoder(bytes.NewReader(raw))
	var path []string
	var text strings.Builder
	children := []int{0}
	for range 100000 {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, raw)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			children[len(children)-1]++
			path = append(path, tok.Name.Local)
			children = append(children, 0)
			text.Reset()
		case xml.CharData:
			text.Write(tok)
		case xml.EndElement:
			if children[len(children)-1] == 0 {
				p := strings.Join(path, "/")
				out[p] = append(out[p], text.String())
			}
			path, children = path[:len(path)-1], children[:len(children)-1]
			text.Reset()
		}
	}
	t.Fatalf("XML answer too long")
	return nil
}

// TestSQSQueryMatchesMoto sends the same query-protocol requests to Carrier
// and to moto's SQS and compares the XML answers: the same elements, the
// same values where they do not depend on the server (bodies, MD5s,
// attribute names and types, batch ids, error codes) and the same statuses.
func TestSQSQueryMatchesMoto(t *testing.T) {
	moto := startMoto(t)
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := sqsCredential(t, c)
			type server struct {
				base, queuePath string
				id, secret      string
				handle          string
			}
			queue := "diff-" + e.Name // moto's state is shared by the engines' runs
			servers := []*server{
				{base: c.URL, queuePath: "/default/" + queue, id: id, secret: secret},
				{base: moto, queuePath: "/123456789012/" + queue, id: "AKIDEXAMPLE", secret: "secret"},
			}
			kv := func(pairs ...string) url.Values {
				v := url.Values{"Version": {"2012-11-05"}}
				for i := 0; i+1 < len(pairs); i += 2 {
					v.Set(pairs[i], pairs[i+1])
				}
				return v
			}
			steps := []struct {
				name   string
				toPath bool // to the queue URL rather than /
				form   func(s *server) url.Values
			}{
				{"CreateQueue", false, func(*server) url.Values {
					return kv("Action", "CreateQueue", "QueueName", queue, "Attribute.1.Name", "VisibilityTimeout", "Attribute.1.Value", "7")
				}},
				{"GetQueueUrl missing", false, func(*server) url.Values { return kv("Action", "GetQueueUrl", "QueueName", "nope") }},
				{"SendMessage", true, func(*server) url.Values {
					return kv("Action", "SendMessage", "MessageBody", "hello <&> é",
						"MessageAttribute.1.Name", "kind", "MessageAttribute.1.Value.DataType", "String", "MessageAttribute.1.Value.StringValue", "captcha",
						"MessageAttribute.2.Name", "score", "MessageAttribute.2.Value.DataType", "Number", "MessageAttribute.2.Value.StringValue", "0.9")
				}},
				{"SendMessageBatch", true, func(*server) url.Values {
					return kv("Action", "SendMessageBatch",
						"SendMessageBatchRequestEntry.1.Id", "a", "SendMessageBatchRequestEntry.1.MessageBody", "b-1",
						"SendMessageBatchRequestEntry.1.MessageAttribute.1.Name", "n",
						"SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType", "Number",
						"SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue", "1",
						"SendMessageBatchRequestEntry.2.Id", "b", "SendMessageBatchRequestEntry.2.MessageBody", "b-2")
				}},
				{"ReceiveMessage", true, func(*server) url.Values {
					return kv("Action", "ReceiveMessage", "MaxNumberOfMessages", "1", "MessageAttributeName.1", "All", "AttributeName.1", "ApproximateReceiveCount")
				}},
				{"ChangeMessageVisibility", true, func(s *server) url.Values {
					return kv("Action", "ChangeMessageVisibility", "ReceiptHandle", s.handle, "VisibilityTimeout", "60")
				}},
				{"ChangeMessageVisibilityBatch", true, func(s *server) url.Values {
					return kv("Action", "ChangeMessageVisibilityBatch", "ChangeMessageVisibilityBatchRequestEntry.1.Id", "v1",
						"ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle", s.handle, "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout", "60")
				}},
				{"GetQueueAttributes", true, func(*server) url.Values {
					return kv("Action", "GetQueueAttributes", "AttributeName.1", "VisibilityTimeout", "AttributeName.2", "DelaySeconds")
				}},
				{"DeleteMessageBatch", true, func(s *server) url.Values {
					return kv("Action", "DeleteMessageBatch", "DeleteMessageBatchRequestEntry.1.Id", "d1", "DeleteMessageBatchRequestEntry.1.ReceiptHandle", s.handle,
						"DeleteMessageBatchRequestEntry.2.Id", "d2", "DeleteMessageBatchRequestEntry.2.ReceiptHandle", "not a handle")
				}},
				{"DeleteMessageBatch empty", true, func(*server) url.Values { return kv("Action", "DeleteMessageBatch") }},
				{"ListQueues", false, func(*server) url.Values { return kv("Action", "ListQueues", "QueueNamePrefix", queue) }},
				{"PurgeQueue", true, func(*server) url.Values { return kv("Action", "PurgeQueue") }},
				{"DeleteQueue", true, func(*server) url.Values { return kv("Action", "DeleteQueue") }},
			}
			// Values that differ between servers by nature.
			varies := func(path string) bool {
				for _, suffix := range []string{"/RequestId", "/QueueUrl", "/MessageId", "/ReceiptHandle", "/Error/Message"} {
					if strings.HasSuffix(path, suffix) {
						return true
					}
				}
				return false
			}
			// Elements only one of them sends (moto repeats the message in
			// lower case; the query protocol's empty Detail).
			extra := func(path string) bool {
				return path == "ErrorResponse/Error/message" || path == "ErrorResponse/Error/Detail"
			}
			compared := map[string]bool{}
			for _, step := range steps {
				var answers []map[string][]string
				var statuses []int
				var raws []string
				for _, s := range servers {
					path := "/"
					if step.toPath {
						path = s.queuePath
					}
					status, ct, raw := sendQuery(t, s.base, path, s.id, s.secret, step.form(s))
					if !strings.HasPrefix(ct, "text/xml") {
						t.Fatalf("%s to %s: content type %q: %s", step.name, s.base, ct, raw)
					}
					got := leaves(t, raw)
					if h := got["ReceiveMessageResponse/ReceiveMessageResult/Message/ReceiptHandle"]; len(h) == 1 {
						s.handle = h[0]
					}
					answers, statuses, raws = append(answers, got), append(statuses, status), append(raws, string(raw))
				}
				if statuses[0] != statuses[1] {
					t.Errorf("%s: status %d, moto %d\ncarrier: %s\nmoto: %s", step.name, statuses[0], statuses[1], raws[0], raws[1])
				}
				paths := func(m map[string][]string) []string {
					var out []string
					for p := range m {
						if !extra(p) {
							out = append(out, p)
						}
					}
					slices.Sort(out)
					return out
				}
				if a, b := paths(answers[0]), paths(answers[1]); !slices.Equal(a, b) {
					t.Errorf("%s: elements differ\ncarrier: %v\nmoto:    %v\ncarrier: %s\nmoto: %s", step.name, a, b, raws[0], raws[1])
					continue
				}
				for p, v := range answers[0] {
					if extra(p) || varies(p) {
						continue
					}
					w := answers[1][p]
					slices.Sort(v)
					slices.Sort(w)
					if !slices.Equal(v, w) {
						t.Errorf("%s: %s is %q, moto %q", step.name, p, v, w)
					}
					compared[p[strings.LastIndex(p, "/")+1:]] = true
				}
			}
			for _, want := range []string{"MD5OfMessageBody", "MD5OfMessageAttributes", "MD5OfBody", "Body", "Code", "StringValue", "DataType", "SenderFault", "Id", "Value"} {
				if !compared[want] && !t.Failed() {
					t.Errorf("no %s compared: %v", want, compared)
				}
			}
		})
	}
}
