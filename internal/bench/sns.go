package bench

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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"carrier/internal/app"
)

// SNSOptions configure the SNS benchmark.
type SNSOptions struct {
	Store       string
	DatabaseURL string
	// N messages are published at Rate per second (default 1000 at 100/s).
	N    int
	Rate int
	// Envelope subscribes the queues with SNS's envelope, signed, instead of
	// raw delivery: the signing cost is in the figures.
	Envelope bool
	Log      io.Writer
}

// SNSReport is what the SNS benchmark measured.
type SNSReport struct {
	Machine  Machine `json:"machine"`
	Store    string  `json:"store"`
	N        int     `json:"n"`
	Rate     int     `json:"rate"`
	Envelope bool    `json:"envelope"`
	// Publish is the SNS Publish call (signed query protocol) until its
	// MessageId answer, which comes after the commit.
	Publish Percentiles `json:"publish"`
	// Visible is the same publish until a long-polling receiver of one of
	// the topic's three subscribed queues has the message.
	Visible Percentiles `json:"publish_to_visible"`
}

// RunSNS publishes to a topic with three subscribed queues through the SNS
// query protocol and measures the publish and the time to a receiver.
func RunSNS(ctx context.Context, o SNSOptions) (*SNSReport, error) {
	if o.N <= 0 {
		o.N = 1000
	}
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	cfg, cleanup, err := benchConfig(ctx, AlertOptions{Store: o.Store, DatabaseURL: o.DatabaseURL})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cfg.APIKey = "ck_bench_" + randomHex(16)
	a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), app.Options{})
	if err != nil {
		return nil, err
	}
	if err := a.Listen(); err != nil {
		a.Store.Close()
		return nil, err
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + a.Addr()
	call := apiCaller(ctx, base, cfg.APIKey)
	cred, err := call("/v1/sqs-credentials", map[string]any{})
	if err != nil {
		return nil, err
	}
	sns := &snsSigner{base: base, id: fmt.Sprint(cred["access_key_id"]), secret: fmt.Sprint(cred["secret_access_key"]),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}

	var topic struct {
		TopicArn string `xml:"CreateTopicResult>TopicArn"`
	}
	if err := sns.do(ctx, &topic, "CreateTopic", "Name", "bench"); err != nil {
		return nil, err
	}
	var queueIDs []string
	for i := range 3 {
		q, err := call("/v1/queues", map[string]any{"name": fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return nil, err
		}
		queueIDs = append(queueIDs, fmt.Sprint(q["id"]))
		arn := fmt.Sprintf("arn:aws:sqs:%s:%s:bench-%d", snsRegion, app.DefaultProjectID, i)
		if err := sns.do(ctx, nil, "Subscribe", "TopicArn", topic.TopicArn, "Protocol", "sqs", "Endpoint", arn,
			"Attributes.entry.1.key", "RawMessageDelivery", "Attributes.entry.1.value", fmt.Sprint(!o.Envelope)); err != nil {
			return nil, err
		}
	}

	// A receiver long-polls the first queue and notes when each message arrives.
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	rctx, stopReceiver := context.WithCancel(ctx)
	defer stopReceiver()
	go func() {
		for rctx.Err() == nil {
			got, err := call("/v1/queues/"+queueIDs[0]+"/receive", map[string]any{"max_messages": 10, "wait_time_seconds": 5})
			at := time.Now()
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			msgs, _ := got["messages"].([]any)
			mu.Lock()
			for _, m := range msgs {
				body := fmt.Sprint(m.(map[string]any)["body"])
				if o.Envelope {
					var env struct{ Message string }
					json.Unmarshal([]byte(body), &env)
					body = env.Message
				}
				if _, seen := arrived[body]; !seen {
					arrived[body] = at
				}
			}
			mu.Unlock()
		}
	}()
	time.Sleep(200 * time.Millisecond)

	sent := map[string]time.Time{}
	var publish []int64
	interval := time.Second / time.Duration(o.Rate)
	next := time.Now()
	for i := range o.N {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		body := fmt.Sprintf(`{"task_id":"bench-%d","solution":"03AGdBq2"}`, i)
		start := time.Now()
		if err := sns.do(ctx, nil, "Publish", "TopicArn", topic.TopicArn, "Message", body, "Subject", "captcha.solved"); err != nil {
			return nil, err
		}
		publish = append(publish, int64(time.Since(start)))
		sent[body] = start
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= len(sent) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d messages reached the receiver after 30 s", n, len(sent))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	visible := make([]int64, 0, len(sent))
	for body, at := range sent {
		visible = append(visible, int64(arrived[body].Sub(at)))
	}
	mu.Unlock()
	return &SNSReport{Machine: machine(), Store: o.Store, N: o.N, Rate: o.Rate, Envelope: o.Envelope, Publish: percentiles(publish), Visible: percentiles(visible)}, nil
}

const snsRegion = "us-east-1"

// snsSigner calls the SNS query protocol, signed as the AWS SDKs sign.
type snsSigner struct {
	base, id, secret string
	client           *http.Client
}

func (s *snsSigner) do(ctx context.Context, out any, action string, params ...string) error {
	form := url.Values{"Action": {action}, "Version": {"2010-03-31"}}
	for i := 0; i+1 < len(params); i += 2 {
		form.Add(params[i], params[i+1])
	}
	body := form.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: s.id, SecretAccessKey: s.secret}, req, hex.EncodeToString(sum[:]), "sns", snsRegion, time.Now()); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", action, resp.StatusCode, b)
	}
	if out != nil {
		return xml.Unmarshal(b, out)
	}
	return nil
}

// WriteText prints the report.
func (r *SNSReport) WriteText(w io.Writer) error {
	delivery := "raw delivery"
	if r.Envelope {
		delivery = "SNS envelope, signed"
	}
	_, err := fmt.Fprintf(w, "SNS protocol (%s): %d publishes at %d/s to a topic with three subscribed queues (%s)\n"+
		"  Publish (signed, until MessageId)     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n"+
		"  Publish -> received from a queue      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
		r.Store, r.N, r.Rate, delivery, r.Publish.P50, r.Publish.P90, r.Publish.P99, r.Publish.Max, r.Visible.P50, r.Visible.P90, r.Visible.P99, r.Visible.Max)
	return err
}
