package app_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// startMotoSNS runs moto's server on a free loopback port until the test ends,
// or skips when it is not installed.
func startMotoSNS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for i := 0; i < 300; i++ { // up to 30 s
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("moto_server did not listen on %s", addr)
	return ""
}

// resultShape is the element names of an answer's Result, sorted and
// deduplicated, with the attribute keys of an Attributes map: what the
// answers must agree on, leaving out ids and accounts.
func resultShape(t *testing.T, body string) string {
	d := xml.NewDecoder(strings.NewReader(body))
	seen := map[string]bool{}
	key := false
	for i := 0; i < 100000; i++ {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case xml.StartElement:
			seen[v.Name.Local] = true
			key = v.Name.Local == "key"
		case xml.CharData:
			if key {
				seen["key:"+string(v)] = true
			}
		case xml.EndElement:
			key = false
		}
	}
	delete(seen, "RequestId")
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestSNSDifferentialMoto sends the same requests to Carrier and to moto's
// SNS and compares status, error code and the shape of each answer.
func TestSNSDifferentialMoto(t *testing.T) {
	motoURL := startMotoSNS(t)
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{})
	id, secret := snsCredential(t, c)
	if r := c.Admin("POST", "/v1/queues", map[string]any{"name": "q"}); r.Status != 201 {
		t.Fatalf("queue: %d %s", r.Status, r.Body)
	}
	sides := []struct {
		name    string
		cl      *snsClient
		account string
	}{
		{"carrier", &snsClient{t: t, url: c.URL, id: id, secret: secret, region: "us-east-1"}, "default"},
		{"moto", &snsClient{t: t, url: motoURL, id: "AKIDMOTO", secret: "moto", region: "us-east-1"}, "123456789012"},
	}
	// Answers that moto gives and SNS does not, so the two may differ:
	// moto accepts an empty message, a subject with a line break, a
	// MessageGroupId on a standard topic and protocols SNS does not know,
	// answers a bad Number attribute with InvalidParameter (SNS:
	// ParameterValueInvalid), a FIFO publish without MessageGroupId with
	// MissingParameter, and Unsubscribe of a missing subscription with success;
	// it also accepts any topic attribute name, an http URL subscribed as
	// https, and any confirmation token (it confirms http subscriptions at once).
	cases := []struct {
		name   string
		action string
		params []string
		moto   string // "" when moto must agree
	}{
		{"create", "CreateTopic", []string{"Name", "diff"}, ""},
		{"create again", "CreateTopic", []string{"Name", "diff"}, ""},
		{"create fifo", "CreateTopic", []string{"Name", "diff.fifo", "Attributes.entry.1.key", "FifoTopic", "Attributes.entry.1.value", "true"}, ""},
		{"bad name", "CreateTopic", []string{"Name", "bad name"}, ""},
		{"fifo suffix on a standard topic", "CreateTopic", []string{"Name", "x.fifo"}, ""},
		{"fifo without suffix", "CreateTopic", []string{"Name", "x", "Attributes.entry.1.key", "FifoTopic", "Attributes.entry.1.value", "true"}, ""},
		{"list", "ListTopics", nil, ""},
		{"attributes", "GetTopicAttributes", []string{"TopicArn", "{arn}diff"}, ""},
		{"attributes of a missing topic", "GetTopicAttributes", []string{"TopicArn", "{arn}nope"}, ""},
		{"publish", "Publish", []string{"TopicArn", "{arn}diff", "Message", `{"status": "solved"}`, "Subject", "captcha-solved",
			"MessageAttributes.entry.1.Name", "task_id", "MessageAttributes.entry.1.Value.DataType", "String", "MessageAttributes.entry.1.Value.StringValue", "t1"}, ""},
		{"publish to a missing topic", "Publish", []string{"TopicArn", "{arn}nope", "Message", "x"}, ""},
		{"publish a long subject", "Publish", []string{"TopicArn", "{arn}diff", "Message", "x", "Subject", strings.Repeat("s", 101)}, ""},
		{"publish too much", "Publish", []string{"TopicArn", "{arn}diff", "Message", strings.Repeat("x", 256<<10+1)}, ""},
		{"publish fifo", "Publish", []string{"TopicArn", "{arn}diff.fifo", "Message", "x", "MessageGroupId", "g", "MessageDeduplicationId", "d"}, ""},
		{"publish fifo without dedup", "Publish", []string{"TopicArn", "{arn}diff.fifo", "Message", "x", "MessageGroupId", "g"}, ""},
		{"publish empty", "Publish", []string{"TopicArn", "{arn}diff", "Message", ""}, "moto accepts an empty message"},
		{"publish subject with a line break", "Publish", []string{"TopicArn", "{arn}diff", "Message", "x", "Subject", "a\nb"}, "moto accepts it"},
		{"publish a bad number", "Publish", []string{"TopicArn", "{arn}diff", "Message", "x", "MessageAttributes.entry.1.Name", "n",
			"MessageAttributes.entry.1.Value.DataType", "Number", "MessageAttributes.entry.1.Value.StringValue", "abc"}, "moto: InvalidParameter"},
		{"publish fifo without group", "Publish", []string{"TopicArn", "{arn}diff.fifo", "Message", "x"}, "moto: MissingParameter"},
		{"subscribe", "Subscribe", []string{"TopicArn", "{arn}diff", "Protocol", "sqs", "Endpoint", "{qarn}q"}, ""},
		{"subscribe to a missing topic", "Subscribe", []string{"TopicArn", "{arn}nope", "Protocol", "sqs", "Endpoint", "{qarn}q"}, ""},
		{"subscribe with a bad filter policy", "Subscribe", []string{"TopicArn", "{arn}diff", "Protocol", "sqs", "Endpoint", "{qarn}q",
			"Attributes.entry.1.key", "FilterPolicy", "Attributes.entry.1.value", `{"a": [{"bogus": 1}]}`}, ""},
		{"subscribe with an unknown protocol", "Subscribe", []string{"TopicArn", "{arn}diff", "Protocol", "pigeon", "Endpoint", "x"}, "moto accepts it"},
		{"subscriptions", "ListSubscriptionsByTopic", []string{"TopicArn", "{arn}diff"}, ""},
		{"all subscriptions", "ListSubscriptions", nil, ""},
		{"subscription attributes", "GetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}"}, ""},
		{"attributes of a missing subscription", "GetSubscriptionAttributes", []string{"SubscriptionArn", "{arn}diff:0f5ae3b6-4b43-4a7c-9fd6-2b7c1b1c0e64"}, ""},
		{"set raw delivery", "SetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}", "AttributeName", "RawMessageDelivery", "AttributeValue", "true"}, ""},
		{"set a filter policy", "SetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}", "AttributeName", "FilterPolicy", "AttributeValue", `{"status": ["failed"]}`}, ""},
		{"set a filter policy scope", "SetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}", "AttributeName", "FilterPolicyScope", "AttributeValue", "MessageBody"}, ""},
		{"set an unknown subscription attribute", "SetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}", "AttributeName", "Bogus", "AttributeValue", "1"}, ""},
		{"subscription attributes after set", "GetSubscriptionAttributes", []string{"SubscriptionArn", "{sarn}"}, ""},
		{"set a topic attribute", "SetTopicAttributes", []string{"TopicArn", "{arn}diff", "AttributeName", "DisplayName", "AttributeValue", "Diff"}, ""},
		{"set an unknown topic attribute", "SetTopicAttributes", []string{"TopicArn", "{arn}diff", "AttributeName", "Bogus", "AttributeValue", "1"}, "moto accepts any attribute name"},
		{"tag", "TagResource", []string{"ResourceArn", "{arn}diff", "Tags.member.1.Key", "team", "Tags.member.1.Value", "ops"}, ""},
		{"tags", "ListTagsForResource", []string{"ResourceArn", "{arn}diff"}, ""},
		{"untag", "UntagResource", []string{"ResourceArn", "{arn}diff", "TagKeys.member.1", "team"}, ""},
		{"publish fifo again (deduplicated)", "Publish", []string{"TopicArn", "{arn}diff.fifo", "Message", "x", "MessageGroupId", "g", "MessageDeduplicationId", "d"}, ""},
		{"unsubscribe", "Unsubscribe", []string{"SubscriptionArn", "{sarn}"}, ""},
		{"unsubscribe again", "Unsubscribe", []string{"SubscriptionArn", "{sarn}"}, "moto answers success"},
		{"subscribe http", "Subscribe", []string{"TopicArn", "{arn}diff", "Protocol", "http", "Endpoint", "{http}"}, ""},
		{"subscribe https with an http URL", "Subscribe", []string{"TopicArn", "{arn}diff", "Protocol", "https", "Endpoint", "{http}"}, "moto accepts an http URL for https"},
		{"confirm with a wrong token", "ConfirmSubscription", []string{"TopicArn", "{arn}diff", "Token", strings.Repeat("0", 128)}, "moto confirms with any token"},
		{"tags of a missing topic", "ListTagsForResource", []string{"ResourceArn", "{arn}nope"}, ""},
		{"batch of 11", "PublishBatch", batchParams(11), ""},
		{"batch with one id twice", "PublishBatch", []string{"TopicArn", "{arn}diff", "PublishBatchRequestEntries.member.1.Id", "a",
			"PublishBatchRequestEntries.member.1.Message", "m", "PublishBatchRequestEntries.member.2.Id", "a", "PublishBatchRequestEntries.member.2.Message", "m"}, ""},
		{"batch", "PublishBatch", batchParams(2), ""},
		{"delete a missing topic", "DeleteTopic", []string{"TopicArn", "{arn}nope"}, ""},
		{"delete", "DeleteTopic", []string{"TopicArn", "{arn}diff"}, ""},
	}
	// An HTTP endpoint both may post to (moto confirms http subscriptions
	// at once and posts notifications; Carrier posts its confirmation).
	ep := apptest.NewEndpoint(t, nil)
	var subArn [2]string // the "subscribe" case's ARN on each side
	agreed := 0
	for _, tc := range cases {
		var got [2]snsAnswer
		for i, side := range sides {
			params := make([]string, len(tc.params))
			for j, p := range tc.params {
				p = strings.ReplaceAll(p, "{arn}", "arn:aws:sns:us-east-1:"+side.account+":")
				p = strings.ReplaceAll(p, "{sarn}", subArn[i])
				p = strings.ReplaceAll(p, "{http}", ep.URL+"/sns")
				params[j] = strings.ReplaceAll(p, "{qarn}", "arn:aws:sqs:us-east-1:"+side.account+":")
			}
			got[i] = side.cl.call(tc.action, params...)
			if tc.name == "subscribe" {
				var r struct {
					Arn string `xml:"SubscribeResult>SubscriptionArn"`
				}
				xml.Unmarshal([]byte(got[i].Body), &r)
				subArn[i] = r.Arn
			}
		}
		same := got[0].Status == got[1].Status && got[0].Error.Code == got[1].Error.Code
		shape := [2]string{resultShape(t, got[0].Body), resultShape(t, got[1].Body)}
		if same && got[0].Status == 200 {
			same = shapesAgree(tc.action, shape[0], shape[1])
			if shape[0] != shape[1] {
				t.Logf("%s: carrier answers [%s], moto [%s]", tc.name, shape[0], shape[1])
			}
		}
		switch {
		case same:
			agreed++
		case tc.moto != "":
			t.Logf("%s: known moto difference (%s): carrier %d %s, moto %d %s", tc.name, tc.moto, got[0].Status, got[0].Error.Code, got[1].Status, got[1].Error.Code)
		default:
			t.Errorf("%s: carrier %d %s %s [%s]\n moto %d %s %s [%s]", tc.name, got[0].Status, got[0].Error.Code, got[0].Error.Message, shape[0],
				got[1].Status, got[1].Error.Code, got[1].Error.Message, shape[1])
		}
	}
	t.Logf("%d of %d cases agree", agreed, len(cases))
}

func batchParams(n int) []string {
	p := []string{"TopicArn", "{arn}diff"}
	for i := 1; i <= n; i++ {
		p = append(p, fmt.Sprintf("PublishBatchRequestEntries.member.%d.Id", i), fmt.Sprint("e", i),
			fmt.Sprintf("PublishBatchRequestEntries.member.%d.Message", i), fmt.Sprint("m", i))
	}
	return p
}

// shapesAgree compares answer shapes: Carrier may answer more than moto
// (SequenceNumber on FIFO publishes, which SNS sends and moto does not; the
// members of a PublishBatch, which moto leaves empty), never less, except
// moto's empty DeliveryPolicy attribute, which SNS shows only when set.
func shapesAgree(action, carrier, moto string) bool {
	have := map[string]bool{"key:DeliveryPolicy": true}
	for _, k := range strings.Fields(carrier) {
		have[k] = true
	}
	for _, k := range strings.Fields(moto) {
		if !have[k] {
			return false
		}
	}
	return true
}

// TestSNSHTTPNotificationMatchesMoto compares what an HTTP subscriber gets
// from Carrier and from moto for the same publish: the same JSON fields
// (moto confirms http subscriptions at once, and sends none of SNS's
// x-amz-sns-* headers, so those are checked against SNS's documentation in
// TestSNSHTTPSubscription; Carrier's subscription is confirmed through its
// SubscribeURL first).
func TestSNSHTTPNotificationMatchesMoto(t *testing.T) {
	motoURL := startMotoSNS(t)
	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{})
	id, secret := snsCredential(t, c)
	ep := apptest.NewEndpoint(t, nil)
	sides := []struct {
		cl      *snsClient
		account string
	}{
		{&snsClient{t: t, url: c.URL, id: id, secret: secret, region: "us-east-1"}, "default"},
		{&snsClient{t: t, url: motoURL, id: "AKIDMOTO", secret: "moto", region: "us-east-1"}, "123456789012"},
	}
	for _, side := range sides {
		arn := "arn:aws:sns:us-east-1:" + side.account + ":http-diff"
		side.cl.ok(nil, "CreateTopic", "Name", "http-diff")
		side.cl.ok(nil, "Subscribe", "TopicArn", arn, "Protocol", "http", "Endpoint", ep.URL+"/"+side.account)
	}
	var conf map[string]string
	apptest.Eventually(t, 10*time.Second, "Carrier's confirmation", func() bool {
		for _, r := range ep.Requests() {
			if r.Path == "/default" && r.Header.Get("x-amz-sns-message-type") == "SubscriptionConfirmation" {
				conf, _ = snsMessage(t, r.Body)
				return true
			}
		}
		return false
	})
	resp, err := http.Get(conf["SubscribeURL"])
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("confirm: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, side := range sides {
		side.cl.ok(nil, "Publish", "TopicArn", "arn:aws:sns:us-east-1:"+side.account+":http-diff", "Message", "hello", "Subject", "s",
			"MessageAttributes.entry.1.Name", "a", "MessageAttributes.entry.1.Value.DataType", "String", "MessageAttributes.entry.1.Value.StringValue", "b")
	}
	shape := map[string]string{}
	apptest.Eventually(t, 10*time.Second, "a notification from each", func() bool {
		for _, r := range ep.Requests() {
			var body map[string]json.RawMessage
			if json.Unmarshal(r.Body, &body) != nil {
				t.Fatalf("%s: not JSON: %s", r.Path, r.Body)
			}
			if string(body["Type"]) != `"Notification"` {
				continue
			}
			var keys []string
			for k := range body {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			shape[r.Path] = strings.Join(keys, " ")
		}
		return len(shape) == 2
	})

	// moto leaves out MessageAttributes, which SNS's HTTP notifications
	// carry when the publish has any; Carrier must have every field moto has.
	if !shapesAgree("Notification", shape["/default"], shape["/123456789012"]) ||
		strings.Replace(shape["/default"], " MessageAttributes", "", 1) != shape["/123456789012"] {
		t.Errorf("notification shapes differ:\ncarrier %s\n   moto %s", shape["/default"], shape["/123456789012"])
	}
	t.Logf("notification shape: %s", shape["/default"])
}
