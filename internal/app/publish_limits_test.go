package app_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// untilRefused calls try until it answers true (refused), at most 200 times,
// and returns how many calls were accepted before. It fails the test when
// more were accepted than the burst and the refill since start allow: the
// limit holds whatever the machine's speed.
func untilRefused(t *testing.T, what string, rate, burst int, try func() bool) int {
	t.Helper()
	start := time.Now()
	for n := 0; n < 200; n++ {
		if try() {
			if allowed := burst + int(time.Since(start).Seconds()*float64(rate)) + 1; n > allowed {
				t.Errorf("%s: %d accepted before the first refusal, more than the %d the bucket allows", what, n, allowed)
			}
			return n
		}
	}
	t.Fatalf("%s: 200 publishes accepted with CARRIER_PUBLISH_RATE=%d", what, rate)
	return 0
}

// TestPublishRateLimit: with CARRIER_PUBLISH_RATE set, a project that
// publishes faster is refused by every front with its own throttling answer
// (REST 429 rate_limited with Retry-After, SQS RequestThrottled, SNS
// Throttled 429), each naming the setting, while another project publishes
// as before.
func TestPublishRateLimit(t *testing.T) {
	const rate, burst = 1, 10
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.PublishRate, cfg.PublishBurst = rate, burst
			}})
			ctx := context.Background()
			_, other := c.NewProject("other")

			var refusal apptest.Response
			n := untilRefused(t, "REST", rate, burst, func() bool {
				refusal = c.Admin("POST", "/v1/events", map[string]any{"type": "burst"})
				if refusal.Status != http.StatusAccepted && refusal.Status != http.StatusTooManyRequests {
					t.Fatalf("publish: %d %s", refusal.Status, refusal.Body)
				}
				return refusal.Status == http.StatusTooManyRequests
			})
			if n < burst {
				t.Errorf("only %d publishes accepted, want the burst of %d", n, burst)
			}
			if refusal.ErrorCode() != "rate_limited" || !strings.Contains(string(refusal.Body), "CARRIER_PUBLISH_RATE") {
				t.Errorf("refusal: %s", refusal.Body)
			}
			if s, err := strconv.Atoi(refusal.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", refusal.Header.Get("Retry-After"))
			}
			// Another project has its own allowance.
			c.Publish(other, map[string]any{"type": "calm"})

			// REST queue sends take from the same allowance.
			qid := c.Admin("POST", "/v1/queues", map[string]any{"name": "rest-limited"}).Data()["id"].(string)
			untilRefused(t, "REST queue send", rate, burst, func() bool {
				refusal = c.Admin("POST", "/v1/queues/"+qid+"/messages", map[string]any{"body": "m"})
				if refusal.Status != http.StatusCreated && refusal.Status != http.StatusAccepted && refusal.Status != http.StatusTooManyRequests {
					t.Fatalf("queue send: %d %s", refusal.Status, refusal.Body)
				}
				return refusal.Status == http.StatusTooManyRequests
			})
			if refusal.ErrorCode() != "rate_limited" || !strings.Contains(string(refusal.Body), "CARRIER_PUBLISH_RATE") || refusal.Header.Get("Retry-After") == "" {
				t.Errorf("queue send refusal: %v %s", refusal.Header, refusal.Body)
			}

			// SQS: sends take from the same allowance.
			cred := c.Admin("POST", "/v1/sqs-credentials", nil)
			id, secret := cred.Data()["access_key_id"].(string), cred.Data()["secret_access_key"].(string)
			cl := sqsClient(c.URL, id, secret, 1)
			q, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("limited")})
			if err != nil {
				t.Fatal(err)
			}
			var sqsErr error
			untilRefused(t, "SQS", rate, burst, func() bool {
				_, sqsErr = cl.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("m")})
				return sqsErr != nil
			})
			var ae smithy.APIError
			if !errors.As(sqsErr, &ae) || ae.ErrorCode() != "RequestThrottled" || !strings.Contains(ae.ErrorMessage(), "CARRIER_PUBLISH_RATE") {
				t.Errorf("SQS refusal: %v", sqsErr)
			}

			// SNS.
			sns := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			var created struct {
				TopicArn string `xml:"TopicArn"`
			}
			sns.ok(&created, "CreateTopic", "Name", "limited")
			var answer snsAnswer
			untilRefused(t, "SNS", rate, burst, func() bool {
				answer = sns.call("Publish", "TopicArn", created.TopicArn, "Message", "m")
				if answer.Status != 200 && answer.Status != http.StatusTooManyRequests {
					t.Fatalf("SNS publish: %d %s", answer.Status, answer.Body)
				}
				return answer.Status == http.StatusTooManyRequests
			})
			if answer.Error.Code != "Throttled" || answer.Error.Type != "Sender" || !strings.Contains(answer.Error.Message, "CARRIER_PUBLISH_RATE") {
				t.Errorf("SNS refusal: %s", answer.Body)
			}
			c.Publish(other, map[string]any{"type": "calm"})
		})
	}
}

// TestFanoutCapPerPublish: with CARRIER_MAX_FANOUT_PER_EVENT set, a publish
// that matches more subscriptions is refused with 422 naming the setting and
// the count, and nothing of it is stored; once it matches no more than the
// cap it is accepted.
func TestFanoutCapPerPublish(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.MaxFanoutPerEvent = 2 }})
			_, key := c.NewProject("wide")
			ep := apptest.NewEndpoint(t, nil)
			var hooks []string
			for i := range 3 {
				id, _ := c.CreateWebhook(key, map[string]any{"name": "h" + strconv.Itoa(i), "webhook_url": ep.URL, "event_types": []string{"order.*"}})
				hooks = append(hooks, id)
			}
			r := c.Do("POST", "/v1/events", key, map[string]any{"type": "order.paid", "subject": "refused"})
			if r.Status != http.StatusUnprocessableEntity || r.ErrorCode() != "limit_exceeded" ||
				!strings.Contains(string(r.Body), "CARRIER_MAX_FANOUT_PER_EVENT (2)") || !strings.Contains(string(r.Body), "matches 3 subscriptions") {
				t.Fatalf("publish matching 3 with a cap of 2: %d %s", r.Status, r.Body)
			}
			if list := c.Do("GET", "/v1/events", key, nil).List(); len(list) != 0 {
				t.Errorf("the refused publish was stored: %v", list)
			}
			if del := c.Do("DELETE", "/v1/webhooks/"+hooks[0], key, nil); del.Status != http.StatusOK {
				t.Fatalf("delete webhook: %d %s", del.Status, del.Body)
			}
			ok := c.Do("POST", "/v1/events", key, map[string]any{"type": "order.paid", "subject": "accepted"})
			if ok.Status != http.StatusAccepted || ok.Data()["deliveries"] != float64(2) {
				t.Fatalf("publish matching 2: %d %s", ok.Status, ok.Body)
			}
			ep.WaitRequests(t, 2, 15*time.Second)

			// SNS: a Publish fanned out to more subscriptions than the cap is
			// SNS's InvalidParameter, naming the setting; nothing is stored.
			id, secret := snsCredential(t, c)
			sns := &snsClient{t: t, url: c.URL, id: id, secret: secret}
			var created struct {
				TopicArn string `xml:"TopicArn"`
			}
			sns.ok(&created, "CreateTopic", "Name", "wide")

			var firstSub string
			for i := range 3 {
				name := "fan" + strconv.Itoa(i)
				if r := c.Admin("POST", "/v1/queues", map[string]any{"name": name}); r.Status != http.StatusCreated {
					t.Fatalf("create queue: %d %s", r.Status, r.Body)
				}
				var sub struct {
					SubscriptionArn string `xml:"SubscriptionArn"`
				}
				sns.ok(&sub, "Subscribe", "TopicArn", created.TopicArn, "Protocol", "sqs", "Endpoint", "arn:aws:sqs:us-east-1:default:"+name)
				if i == 0 {
					firstSub = sub.SubscriptionArn
				}
			}
			answer := sns.call("Publish", "TopicArn", created.TopicArn, "Message", "m")
			if answer.Status != http.StatusBadRequest || answer.Error.Code != "InvalidParameter" || !strings.Contains(answer.Error.Message, "CARRIER_MAX_FANOUT_PER_EVENT") {
				t.Errorf("SNS publish matching 3 with a cap of 2: %d %s", answer.Status, answer.Body)
			}
			if list := c.Admin("GET", "/v1/events", nil).List(); len(list) != 0 {
				t.Errorf("the refused SNS publish was stored: %v", list)
			}
			// Under the cap it is accepted (the check is not simply refusing).
			sns.ok(nil, "Unsubscribe", "SubscriptionArn", firstSub)
			if answer := sns.call("Publish", "TopicArn", created.TopicArn, "Message", "m"); answer.Status != http.StatusOK {
				t.Errorf("SNS publish matching 2: %d %s", answer.Status, answer.Body)
			}
		})
	}
}
