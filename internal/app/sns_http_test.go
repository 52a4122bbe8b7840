package app_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// verifySNSSignature checks a message's signature as SNS's documentation
// tells a subscriber to, written here from that documentation rather than
// with Carrier's signing package: fetch SigningCertURL, build the string to
// sign from the message's fields (Message, MessageId, Subject if present,
// Timestamp, TopicArn, Type for notifications; Message, MessageId,
// SubscribeURL, Timestamp, Token, TopicArn, Type for confirmations), and
// verify SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2).
func verifySNSSignature(t *testing.T, certPrefix string, m map[string]string) {
	t.Helper()
	certURL := m["SigningCertURL"]
	if !strings.HasPrefix(certURL, certPrefix) || !strings.HasSuffix(certURL, ".pem") {
		t.Fatalf("SigningCertURL %q is not a .pem under %s", certURL, certPrefix)
	}
	resp, err := http.Get(certURL)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", certURL, resp.StatusCode)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("certificate is not PEM: %s", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var b strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			b.WriteString(k + "\n" + v + "\n")
		}
	}
	sig, err := base64.StdEncoding.DecodeString(m["Signature"])
	if err != nil {
		t.Fatalf("Signature: %v", err)
	}
	var h crypto.Hash
	var sum []byte
	switch m["SignatureVersion"] {
	case "1":
		s := sha1.Sum([]byte(b.String()))
		h, sum = crypto.SHA1, s[:]
	case "2":
		s := sha256.Sum256([]byte(b.String()))
		h, sum = crypto.SHA256, s[:]
	default:
		t.Fatalf("SignatureVersion %q", m["SignatureVersion"])
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), h, sum, sig); err != nil {
		t.Fatalf("signature of %s %s does not verify: %v", m["Type"], m["MessageId"], err)
	}
}

// snsMessage decodes an SNS HTTP message body: its string fields, and its
// MessageAttributes as JSON.
func snsMessage(t *testing.T, body []byte) (map[string]string, string) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("body is not an SNS message: %v %s", err, body)
	}
	out := map[string]string{}
	attrs := ""
	for k, v := range raw {
		if k == "MessageAttributes" {
			attrs = string(v)
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Fatalf("%s is not a string: %s", k, v)
		}
		out[k] = s
	}
	return out, attrs
}

// TestSNSHTTPSubscription follows SNS's HTTP/S flow end to end: Subscribe
// answers "pending confirmation" and the endpoint gets only a signed
// SubscriptionConfirmation (retried when refused); what is published before
// it confirms never reaches it; a GET of the SubscribeURL (served by
// Carrier) confirms; notifications then arrive with SNS's headers and
// signatures of both versions, raw when asked; the UnsubscribeURL ends it.
func TestSNSHTTPSubscription(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			ep := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
				if n == 0 {
					w.WriteHeader(http.StatusServiceUnavailable) // the first confirmation is refused: it must come again
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			topicArn := "arn:aws:sns:eu-west-1:default:orders"
			cl.ok(nil, "CreateTopic", "Name", "orders")
			var sub struct {
				Arn string `xml:"SubscriptionArn"`
			}
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", topicArn, "Protocol", "https", "Endpoint", ep.URL+"/sns")
			cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", ep.URL+"/sns")
			if sub.Arn != "pending confirmation" {
				t.Fatalf("Subscribe answered %q, want \"pending confirmation\"", sub.Arn)
			}
			var listed struct {
				Arns []string `xml:"Subscriptions>member>SubscriptionArn"`
			}
			cl.ok(&listed, "ListSubscriptionsByTopic", "TopicArn", topicArn)
			if fmt.Sprint(listed.Arns) != "[PendingConfirmation]" {
				t.Fatalf("ListSubscriptionsByTopic %v", listed.Arns)
			}
			var tattrs struct {
				Attributes attributeEntries `xml:"Attributes"`
			}
			cl.ok(&tattrs, "GetTopicAttributes", "TopicArn", topicArn)
			if m := tattrs.Attributes.Map(); m["SubscriptionsPending"] != "1" || m["SubscriptionsConfirmed"] != "0" {
				t.Fatalf("topic counts %v", m)
			}
			// Published while pending: never delivered.
			var early struct {
				MessageID string `xml:"MessageId"`
			}
			cl.ok(&early, "Publish", "TopicArn", topicArn, "Message", "before confirmation")

			reqs := ep.WaitRequests(t, 2, 10*time.Second)
			first, _ := snsMessage(t, reqs[0].Body)
			conf, _ := snsMessage(t, reqs[1].Body)
			if first["MessageId"] != conf["MessageId"] || first["Token"] != conf["Token"] {
				t.Fatalf("the retried confirmation differs: %v vs %v", first, conf)
			}
			r := reqs[1]
			if r.Method != "POST" || r.Path != "/sns" || r.Header.Get("x-amz-sns-message-type") != "SubscriptionConfirmation" ||
				r.Header.Get("x-amz-sns-message-id") != conf["MessageId"] || r.Header.Get("x-amz-sns-topic-arn") != topicArn ||
				r.Header.Get("Content-Type") != "text/plain; charset=UTF-8" || r.Header.Get("User-Agent") != "Amazon Simple Notification Service Agent" {
				t.Fatalf("confirmation request %s %s %v", r.Method, r.Path, r.Header)
			}
			wantURL := c.URL + "/?Action=ConfirmSubscription&TopicArn=" + strings.ReplaceAll(topicArn, ":", "%3A") + "&Token=" + conf["Token"]
			if conf["Type"] != "SubscriptionConfirmation" || conf["TopicArn"] != topicArn || len(conf["Token"]) < 64 ||
				conf["SubscribeURL"] != wantURL || !strings.Contains(conf["Message"], "To confirm the subscription, visit the SubscribeURL") ||
				conf["SignatureVersion"] != "1" || conf["Timestamp"] == "" {
				t.Fatalf("confirmation %v (SubscribeURL want %s)", conf, wantURL)
			}
			verifySNSSignature(t, c.URL+"/sns/", conf)

			// A wrong token confirms nothing.
			cl.fails(400, "InvalidParameter", "ConfirmSubscription", "TopicArn", topicArn, "Token", strings.Repeat("0", 128))
			cl.fails(404, "NotFound", "ConfirmSubscription", "TopicArn", "arn:aws:sns:eu-west-1:default:nope", "Token", conf["Token"])

			// The SubscribeURL confirms by a plain GET, as the endpoint's code does.
			resp, err := http.Get(conf["SubscribeURL"])
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var confirmed struct {
				Arn string `xml:"ConfirmSubscriptionResult>SubscriptionArn"`
			}
			if resp.StatusCode != 200 || xml.Unmarshal(body, &confirmed) != nil || !strings.HasPrefix(confirmed.Arn, topicArn+":") {
				t.Fatalf("GET SubscribeURL: %d %s", resp.StatusCode, body)
			}
			subArn := confirmed.Arn
			var again struct {
				Arn string `xml:"SubscriptionArn"`
			}
			cl.ok(&again, "ConfirmSubscription", "TopicArn", topicArn, "Token", conf["Token"])
			if again.Arn != subArn {
				t.Fatalf("confirming again gave %s, want %s", again.Arn, subArn)
			}
			var sattrs struct {
				Attributes attributeEntries `xml:"Attributes"`
			}
			cl.ok(&sattrs, "GetSubscriptionAttributes", "SubscriptionArn", subArn)
			if m := sattrs.Attributes.Map(); m["PendingConfirmation"] != "false" || m["ConfirmationWasAuthenticated"] != "false" ||
				m["Protocol"] != "http" || m["Endpoint"] != ep.URL+"/sns" {
				t.Fatalf("subscription attributes %v", m)
			}

			// Notifications, SignatureVersion 1.
			var pub struct {
				MessageID string `xml:"MessageId"`
			}
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", `{"order":7}`, "Subject", "Order paid",
				"MessageAttributes.entry.1.Name", "price", "MessageAttributes.entry.1.Value.DataType", "Number",
				"MessageAttributes.entry.1.Value.StringValue", "9.5")
			reqs = ep.WaitRequests(t, 3, 10*time.Second)
			r = reqs[2]
			n, attrs := snsMessage(t, r.Body)
			if r.Header.Get("x-amz-sns-message-type") != "Notification" || r.Header.Get("x-amz-sns-message-id") != pub.MessageID ||
				r.Header.Get("x-amz-sns-topic-arn") != topicArn || r.Header.Get("x-amz-sns-subscription-arn") != subArn {
				t.Fatalf("notification headers %v", r.Header)
			}
			if n["Type"] != "Notification" || n["MessageId"] != pub.MessageID || n["Message"] != `{"order":7}` || n["Subject"] != "Order paid" ||
				n["TopicArn"] != topicArn || n["UnsubscribeURL"] != c.URL+"/?Action=Unsubscribe&SubscriptionArn="+strings.ReplaceAll(subArn, ":", "%3A") ||
				attrs != `{"price":{"Type":"Number","Value":"9.5"}}` {
				t.Fatalf("notification %v attributes %s", n, attrs)
			}
			verifySNSSignature(t, c.URL+"/sns/", n)

			// SignatureVersion 2 once the topic asks for it.
			cl.fails(400, "InvalidParameter", "SetTopicAttributes", "TopicArn", topicArn, "AttributeName", "SignatureVersion", "AttributeValue", "3")
			cl.ok(nil, "SetTopicAttributes", "TopicArn", topicArn, "AttributeName", "SignatureVersion", "AttributeValue", "2")
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", "plain text, version 2")
			reqs = ep.WaitRequests(t, 4, 10*time.Second)
			n, _ = snsMessage(t, reqs[3].Body)
			if n["SignatureVersion"] != "2" || n["Message"] != "plain text, version 2" || n["MessageId"] != pub.MessageID {
				t.Fatalf("version 2 notification %v", n)
			}
			if _, ok := n["Subject"]; ok {
				t.Fatalf("a publish without Subject has one: %v", n)
			}
			verifySNSSignature(t, c.URL+"/sns/", n)

			// Raw delivery.
			cl.ok(nil, "SetSubscriptionAttributes", "SubscriptionArn", subArn, "AttributeName", "RawMessageDelivery", "AttributeValue", "true")
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", "raw body")
			reqs = ep.WaitRequests(t, 5, 10*time.Second)
			if string(reqs[4].Body) != "raw body" || reqs[4].Header.Get("x-amz-sns-rawdelivery") != "true" ||
				reqs[4].Header.Get("x-amz-sns-message-id") != pub.MessageID {
				t.Fatalf("raw delivery %q %v", reqs[4].Body, reqs[4].Header)
			}
			for _, r := range ep.Requests() {
				if strings.Contains(string(r.Body), "before confirmation") || strings.Contains(string(r.Body), early.MessageID) {
					t.Fatalf("a message published before confirmation was delivered: %s", r.Body)
				}
			}

			// An unknown certificate path is not found; the UnsubscribeURL unsubscribes.
			if resp, err := http.Get(c.URL + "/sns/SimpleNotificationService-0000.pem"); err != nil || resp.StatusCode != 404 {
				t.Fatalf("unknown certificate: %v %v", resp, err)
			}
			resp, err = http.Get(n["UnsubscribeURL"])
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "<UnsubscribeResponse") {
				t.Fatalf("GET UnsubscribeURL: %d %s", resp.StatusCode, body)
			}
			listed.Arns = nil
			cl.ok(&listed, "ListSubscriptionsByTopic", "TopicArn", topicArn)
			if len(listed.Arns) != 0 {
				t.Fatalf("after unsubscribe: %v", listed.Arns)
			}
		})
	}
}

// TestSNSSubscribeAgainAndAuthenticatedConfirm: subscribing a pending
// endpoint again sends a new confirmation (ReturnSubscriptionArn gives the
// ARN at once); a signed ConfirmSubscription with AuthenticateOnUnsubscribe
// makes the unsigned UnsubscribeURL refuse; tokens expire after two days.
func TestSNSSubscribeAgainAndAuthenticatedConfirm(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{})
	id, secret := snsCredential(t, c)
	cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
	ep := apptest.NewEndpoint(t, nil)
	topicArn := "arn:aws:sns:eu-west-1:default:jobs"
	cl.ok(nil, "CreateTopic", "Name", "jobs")
	var sub struct {
		Arn string `xml:"SubscriptionArn"`
	}
	cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", ep.URL, "ReturnSubscriptionArn", "true")
	if !strings.HasPrefix(sub.Arn, topicArn+":") {
		t.Fatalf("ReturnSubscriptionArn gave %q", sub.Arn)
	}
	cl.ok(nil, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", ep.URL)
	reqs := ep.WaitRequests(t, 2, 10*time.Second)
	a, _ := snsMessage(t, reqs[0].Body)
	b, _ := snsMessage(t, reqs[1].Body)
	if a["MessageId"] > b["MessageId"] { // the two may arrive in either order; ids grow with time
		a, b = b, a
	}
	if a["Token"] == b["Token"] || a["MessageId"] == b["MessageId"] {
		t.Fatal("subscribing again did not send a new confirmation")
	}
	// The newest token confirms; the first no longer does.
	cl.fails(400, "InvalidParameter", "ConfirmSubscription", "TopicArn", topicArn, "Token", a["Token"])
	var confirmed struct {
		Arn string `xml:"SubscriptionArn"`
	}
	cl.ok(&confirmed, "ConfirmSubscription", "TopicArn", topicArn, "Token", b["Token"], "AuthenticateOnUnsubscribe", "true")
	if confirmed.Arn != sub.Arn {
		t.Fatalf("confirmed %s, subscribed %s", confirmed.Arn, sub.Arn)
	}
	var sattrs struct {
		Attributes attributeEntries `xml:"Attributes"`
	}
	cl.ok(&sattrs, "GetSubscriptionAttributes", "SubscriptionArn", sub.Arn)
	if m := sattrs.Attributes.Map(); m["PendingConfirmation"] != "false" || m["ConfirmationWasAuthenticated"] != "true" {
		t.Fatalf("attributes %v", m)
	}
	cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "hello")
	reqs = ep.WaitRequests(t, 3, 10*time.Second)
	n, _ := snsMessage(t, reqs[2].Body)
	resp, err := http.Get(n["UnsubscribeURL"])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("unsigned unsubscribe of an AuthenticateOnUnsubscribe subscription: %d", resp.StatusCode)
	}
	cl.ok(nil, "Unsubscribe", "SubscriptionArn", sub.Arn)

	// A token older than two days confirms nothing.
	cl.ok(nil, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", ep.URL+"/late")
	reqs = ep.WaitRequests(t, 4, 10*time.Second)
	late, _ := snsMessage(t, reqs[3].Body)
	c.App.Topics.SetClock(func() time.Time { return time.Now().Add(49 * time.Hour) })
	a2 := cl.fails(400, "InvalidParameter", "ConfirmSubscription", "TopicArn", topicArn, "Token", late["Token"])
	if !strings.Contains(a2.Error.Message, "expired") {
		t.Fatalf("expired token: %s", a2.Error.Message)
	}
}

// TestSNSSigningKeyKept: the signing key survives a restart and is the same
// on every node of a cluster, so a subscriber's cached certificate keeps
// verifying whichever node delivers.
func TestSNSSigningKeyKept(t *testing.T) {
	cert := func(c *apptest.Carrier) string {
		id, secret := snsCredential(t, c)
		cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
		ep := apptest.NewEndpoint(t, nil)
		cl.ok(nil, "CreateTopic", "Name", "k")
		cl.ok(nil, "Subscribe", "TopicArn", "arn:aws:sns:eu-west-1:default:k", "Protocol", "http", "Endpoint", ep.URL)
		m, _ := snsMessage(t, ep.WaitRequests(t, 1, 10*time.Second)[0].Body)
		verifySNSSignature(t, "http://127.0.0.1:", m)
		resp, err := http.Get(m["SigningCertURL"])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return m["SigningCertURL"][strings.Index(m["SigningCertURL"], "/sns/"):] + "\n" + string(b)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			before := cert(c)
			c.Stop()
			c = apptest.Start(t, e, apptest.Options{})
			if after := cert(c); after != before {
				t.Fatalf("the certificate changed across a restart:\n%s\n%s", before, after)
			}
			if e.Name != "postgres" {
				return
			}
			// A second node on the same database signs with the same key
			// (either node may deliver the confirmation).
			other := apptest.Start(t, e, apptest.Options{})
			if got := cert(other); got != before {
				t.Fatalf("another node serves another certificate:\n%s\n%s", before, got)
			}
		})
	}
}

// TestSNSRedrivePolicy: a message an SNS subscription with a RedrivePolicy
// cannot deliver is moved to its dead-letter queue with SNS's envelope and
// ErrorCode / ErrorMessage / RequestID attributes, and the failed attempt
// says so; a subscription without one moves nothing; bad policies are
// refused naming the attribute.
func TestSNSRedrivePolicy(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			dlq := c.Admin("POST", "/v1/queues", map[string]any{"name": "dlq"})
			if dlq.Status != 201 {
				t.Fatalf("queue: %d %s", dlq.Status, dlq.Body)
			}
			// Confirmations are answered; notifications refused with a client error (no retry).
			refuse := func(n int, r apptest.Request, w http.ResponseWriter) {
				if r.Header.Get("x-amz-sns-message-type") == "Notification" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusOK)
			}
			withDLQ, without := apptest.NewEndpoint(t, refuse), apptest.NewEndpoint(t, refuse)
			topicArn := "arn:aws:sns:eu-west-1:default:payments"
			cl.ok(nil, "CreateTopic", "Name", "payments")
			subscribe := func(ep *apptest.Endpoint) string {
				var sub struct {
					Arn string `xml:"SubscriptionArn"`
				}
				cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", ep.URL, "ReturnSubscriptionArn", "true")
				conf, _ := snsMessage(t, ep.WaitRequests(t, 1, 10*time.Second)[0].Body)
				cl.ok(nil, "ConfirmSubscription", "TopicArn", topicArn, "Token", conf["Token"])
				return sub.Arn
			}
			arn, other := subscribe(withDLQ), subscribe(without)
			for _, bad := range []string{"not json", `{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:dlq"}`, `{}`} {
				a := cl.fails(400, "InvalidParameter", "SetSubscriptionAttributes", "SubscriptionArn", arn, "AttributeName", "RedrivePolicy", "AttributeValue", bad)
				if !strings.Contains(a.Error.Message, "RedrivePolicy") {
					t.Fatalf("refusal of %s: %s", bad, a.Error.Message)
				}
			}
			cl.ok(nil, "SetSubscriptionAttributes", "SubscriptionArn", arn, "AttributeName", "RedrivePolicy",
				"AttributeValue", `{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:default:dlq"}`)
			var pub struct {
				MessageID string `xml:"MessageId"`
			}
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", `{"payment":"p1"}`, "MessageAttributes.entry.1.Name", "kind",
				"MessageAttributes.entry.1.Value.DataType", "String", "MessageAttributes.entry.1.Value.StringValue", "card")
			withDLQ.WaitRequests(t, 2, 10*time.Second)
			without.WaitRequests(t, 2, 10*time.Second)

			var msgs []any
			apptest.Eventually(t, 10*time.Second, "a message in the dead-letter queue", func() bool {
				r := c.Admin("POST", "/v1/queues/"+dlq.Data()["id"].(string)+"/receive", map[string]any{"max_messages": 10, "wait_time_seconds": 1})
				msgs, _ = r.Data()["messages"].([]any)
				return len(msgs) > 0
			})
			m := msgs[0].(map[string]any)
			env, _ := snsMessage(t, []byte(m["body"].(string)))
			attrs := m["attributes"].(map[string]any)
			if env["Type"] != "Notification" || env["Message"] != `{"payment":"p1"}` || env["MessageId"] != pub.MessageID || env["TopicArn"] != topicArn ||
				attrs["ErrorCode"] != "http_400" || !strings.Contains(attrs["ErrorMessage"].(string), "400") || attrs["kind"] != "card" || attrs["RequestID"] == "" {
				t.Fatalf("dead letter %v attributes %v", env, attrs)
			}
			verifySNSSignature(t, c.URL+"/sns/", env)
			// The move comes before the failure is recorded: wait for the record.
			subID := arn[strings.LastIndexByte(arn, ':')+1:]
			apptest.Eventually(t, 10*time.Second, "the failed attempt saying it was moved", func() bool {
				d := c.Admin("GET", "/v1/subscriptions/"+subID+"/deliveries", nil)
				return strings.Contains(string(d.Body), "moved to dead-letter queue dlq")
			})
			otherID := other[strings.LastIndexByte(other, ':')+1:]
			apptest.Eventually(t, 10*time.Second, "the other subscription's failure recorded", func() bool {
				return strings.Contains(string(c.Admin("GET", "/v1/subscriptions/"+otherID+"/deliveries", nil).Body), `"failed"`)
			})
			if d := c.Admin("GET", "/v1/subscriptions/"+otherID+"/deliveries", nil); strings.Contains(string(d.Body), "dead-letter") {
				t.Fatalf("a subscription without RedrivePolicy moved its message: %s", d.Body)
			}
			time.Sleep(200 * time.Millisecond)
			r := c.Admin("POST", "/v1/queues/"+dlq.Data()["id"].(string)+"/receive", map[string]any{"max_messages": 10, "wait_time_seconds": 0})
			if more, _ := r.Data()["messages"].([]any); len(more) != 0 {
				t.Fatalf("the dead-letter queue holds %d more messages", len(more))
			}
		})
	}
}
