package app_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/dest/email/smtptest"
	"carrier/internal/store/storetest"
)

// mailTo waits for the n-th message (0-based) the stand-in accepted for
// address and returns its subject and decoded body.
func mailTo(t *testing.T, s *smtptest.Server, address string, n int) (subject, body string) {
	t.Helper()
	var found []*mail.Message
	apptest.Eventually(t, 10*time.Second, "mail to "+address, func() bool {
		found = nil
		for _, raw := range s.Messages() {
			m, err := mail.ReadMessage(strings.NewReader(raw))
			if err == nil && strings.Contains(m.Header.Get("To"), address) {
				found = append(found, m)
			}
		}
		return len(found) > n
	})
	m := found[n]
	var r io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, _ := io.ReadAll(r)
	subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	return subject, strings.ReplaceAll(string(b), "\r\n", "\n")
}

// TestSNSEmailSubscriptions: email and email-json subscriptions get SNS's
// confirmation mail (the SubscribeURL to visit; for email-json the signed
// JSON), nothing before they confirm, then the message itself or the
// signed JSON notification, through the SMTP server CARRIER_SNS_EMAIL_SMTP
// names. Without that setting Subscribe refuses the protocols, naming it.
func TestSNSEmailSubscriptions(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			smtp := smtptest.Start(t)
			c := apptest.Start(t, e, apptest.Options{EmailTLS: &tls.Config{RootCAs: smtp.Roots}, Configure: func(cfg *config.Config) {
				cfg.SNSEmailSMTP = fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"security":"starttls","username":"sns","password":"pw","from":"sns@example.com"}`, smtp.Port())
			}})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			topicArn := "arn:aws:sns:eu-west-1:default:alerts"
			cl.ok(nil, "CreateTopic", "Name", "alerts")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", topicArn, "Protocol", "email", "Endpoint", "not an address")
			var sub struct {
				Arn string `xml:"SubscriptionArn"`
			}
			cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "email", "Endpoint", "ops@example.com")
			if sub.Arn != "pending confirmation" {
				t.Fatalf("Subscribe email: %q", sub.Arn)
			}
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "before confirmation")
			subject, body := mailTo(t, smtp, "ops@example.com", 0)
			link := regexp.MustCompile(`http://\S+Action=ConfirmSubscription\S+`).FindString(body)
			if subject != "AWS Notification - Subscription Confirmation" || !strings.Contains(body, topicArn) || link == "" {
				t.Fatalf("confirmation mail %q:\n%s", subject, body)
			}
			if auth := smtp.Auth(); len(auth) == 0 || auth[0] != "sns:pw" {
				t.Fatalf("SMTP login %v", auth)
			}
			resp, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET SubscribeURL: %d", resp.StatusCode)
			}
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "Balance below 5 USD", "Subject", "Low balance")
			subject, body = mailTo(t, smtp, "ops@example.com", 1)
			if subject != "Low balance" || !strings.HasPrefix(body, "Balance below 5 USD\n") || !strings.Contains(body, "Action=Unsubscribe&SubscriptionArn=") {
				t.Fatalf("notification mail %q:\n%s", subject, body)
			}
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "no subject")
			if subject, _ = mailTo(t, smtp, "ops@example.com", 2); subject != "AWS Notification Message" {
				t.Fatalf("default subject %q", subject)
			}

			// email-json: the signed JSON itself.
			cl.ok(nil, "Subscribe", "TopicArn", topicArn, "Protocol", "email-json", "Endpoint", "robot@example.com")
			_, body = mailTo(t, smtp, "robot@example.com", 0)
			conf, _ := snsMessage(t, []byte(strings.TrimSpace(body)))
			if conf["Type"] != "SubscriptionConfirmation" || conf["Token"] == "" {
				t.Fatalf("email-json confirmation %v", conf)
			}
			verifySNSSignature(t, c.URL+"/sns/", conf)
			cl.ok(nil, "ConfirmSubscription", "TopicArn", topicArn, "Token", conf["Token"])
			var pub struct {
				MessageID string `xml:"MessageId"`
			}
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", `{"default":"d","email-json":"for robots","email":"for people"}`, "MessageStructure", "json")
			_, body = mailTo(t, smtp, "robot@example.com", 1)
			n, _ := snsMessage(t, []byte(strings.TrimSpace(body)))
			if n["Type"] != "Notification" || n["Message"] != "for robots" || n["MessageId"] != pub.MessageID {
				t.Fatalf("email-json notification %v", n)
			}
			verifySNSSignature(t, c.URL+"/sns/", n)
			if _, body = mailTo(t, smtp, "ops@example.com", 3); !strings.HasPrefix(body, "for people\n") {
				t.Fatalf("email member of a MessageStructure=json publish:\n%s", body)
			}
			for _, raw := range smtp.Messages() {
				if strings.Contains(raw, "before confirmation") {
					t.Fatal("a message published before confirmation was mailed")
				}
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{})
		id, secret := snsCredential(t, c)
		cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
		cl.ok(nil, "CreateTopic", "Name", "alerts")
		a := cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", "arn:aws:sns:eu-west-1:default:alerts", "Protocol", "email", "Endpoint", "ops@example.com")
		if !strings.Contains(a.Error.Message, "CARRIER_SNS_EMAIL_SMTP") {
			t.Fatalf("refusal %q does not name the setting", a.Error.Message)
		}
	})
}

// TestSNSLambdaSubscriptions: a lambda subscription to a mapped function
// receives Lambda's SNS event at the mapped URL (Records[0].Sns, signed,
// Lambda's field spellings); one to an unmapped function is accepted,
// reported as a lambda.function.unmapped event, and its deliveries fail
// visibly as lambda_unmapped while Publish keeps succeeding.
func TestSNSLambdaSubscriptions(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			fn := apptest.NewEndpoint(t, nil)
			mapped := "arn:aws:lambda:eu-west-1:default:function:audit"
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.SNSLambdaFunctions = map[string]string{mapped: fn.URL + "/invoke"}
			}})
			ops := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "ops", "webhook_url": ops.URL, "event_types": []string{"lambda.*"}})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			topicArn := "arn:aws:sns:eu-west-1:default:results"
			cl.ok(nil, "CreateTopic", "Name", "results")
			cl.fails(400, "InvalidParameter", "Subscribe", "TopicArn", topicArn, "Protocol", "lambda", "Endpoint", "audit")
			var sub struct {
				Arn string `xml:"SubscriptionArn"`
			}
			cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "lambda", "Endpoint", mapped)
			if !strings.HasPrefix(sub.Arn, topicArn+":") {
				t.Fatalf("Subscribe lambda: %q", sub.Arn)
			}
			var pub struct {
				MessageID string `xml:"MessageId"`
			}
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", `{"task":"t9"}`, "Subject", "solved",
				"MessageAttributes.entry.1.Name", "status", "MessageAttributes.entry.1.Value.DataType", "String",
				"MessageAttributes.entry.1.Value.StringValue", "solved")
			r := fn.WaitRequests(t, 1, 10*time.Second)[0]
			var ev struct {
				Records []struct {
					EventSource, EventVersion, EventSubscriptionArn string
					Sns                                             map[string]json.RawMessage
				}
			}
			if err := json.Unmarshal(r.Body, &ev); err != nil || len(ev.Records) != 1 || r.Path != "/invoke" {
				t.Fatalf("lambda event %s %s: %v", r.Path, r.Body, err)
			}
			rec := ev.Records[0]
			str := func(k string) string {
				var s string
				json.Unmarshal(rec.Sns[k], &s)
				return s
			}
			if rec.EventSource != "aws:sns" || rec.EventVersion != "1.0" || rec.EventSubscriptionArn != sub.Arn ||
				str("Type") != "Notification" || str("MessageId") != pub.MessageID || str("Message") != `{"task":"t9"}` ||
				str("Subject") != "solved" || str("TopicArn") != topicArn || str("SigningCertUrl") == "" || str("UnsubscribeUrl") == "" ||
				string(rec.Sns["MessageAttributes"]) != `{"status":{"Type":"String","Value":"solved"}}` {
				t.Fatalf("lambda record %s", r.Body)
			}
			verifySNSSignature(t, c.URL+"/sns/", map[string]string{"Type": str("Type"), "MessageId": str("MessageId"), "Message": str("Message"),
				"Subject": str("Subject"), "Timestamp": str("Timestamp"), "TopicArn": str("TopicArn"), "SignatureVersion": str("SignatureVersion"),
				"Signature": str("Signature"), "SigningCertURL": str("SigningCertUrl")})
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "no subject")
			r = fn.WaitRequests(t, 2, 10*time.Second)[1]
			if !strings.Contains(string(r.Body), `"Subject":null`) || !strings.Contains(string(r.Body), `"MessageAttributes":{}`) {
				t.Fatalf("lambda record without subject or attributes: %s", r.Body)
			}

			// An unmapped function: accepted, reported, and failing visibly.
			unmapped := "arn:aws:lambda:eu-west-1:default:function:forgotten"
			cl.ok(&sub, "Subscribe", "TopicArn", topicArn, "Protocol", "lambda", "Endpoint", unmapped)
			subID := sub.Arn[strings.LastIndexByte(sub.Arn, ':')+1:]
			reported := ops.WaitRequests(t, 1, 10*time.Second)[0]
			if !strings.Contains(string(reported.Body), `"type":"lambda.function.unmapped"`) || !strings.Contains(string(reported.Body), unmapped) ||
				!strings.Contains(string(reported.Body), subID) {
				t.Fatalf("unmapped report %s", reported.Body)
			}
			cl.ok(&pub, "Publish", "TopicArn", topicArn, "Message", "still published")
			apptest.Eventually(t, 10*time.Second, "a lambda_unmapped attempt", func() bool {
				d := c.Admin("GET", "/v1/subscriptions/"+subID+"/deliveries", nil)
				return d.Status == 200 && strings.Contains(string(d.Body), "lambda_unmapped") && strings.Contains(string(d.Body), "CARRIER_SNS_LAMBDA_FUNCTIONS")
			})
			if got := len(fn.WaitRequests(t, 3, 10*time.Second)); got != 3 {
				t.Fatalf("mapped function got %d requests", got)
			}
		})
	}
}
