package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestSQSUnsignedTargetRefused replays the attack of issue 9: a request whose
// signature covers only host and x-amz-date (and content-length), sent again
// with X-Amz-Target: AmazonSQS.DeleteQueue, is refused in SQS's error shape
// and the queue survives; the unmodified SDK keeps working.
func TestSQSUnsignedTargetRefused(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			r := c.Admin("POST", "/v1/sqs-credentials", nil)
			if r.Status != http.StatusCreated {
				t.Fatalf("create credential: %d %s", r.Status, r.Body)
			}
			id, secret := r.Data()["access_key_id"].(string), r.Data()["secret_access_key"].(string)
			ctx := context.Background()
			cl := sqsClient(c.URL, id, secret, 0)
			created, err := cl.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("victim")})
			if err != nil {
				t.Fatalf("CreateQueue: %v", err)
			}
			body := `{"QueueUrl":"` + *created.QueueUrl + `"}`
			sum := sha256.Sum256([]byte(body))
			for _, target := range []string{"AmazonSQS.PurgeQueue", "AmazonSQS.DeleteQueue"} {
				req, _ := http.NewRequest("POST", c.URL+"/", strings.NewReader(body))
				if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req,
					hex.EncodeToString(sum[:]), "sqs", "eu-west-1", time.Now()); err != nil {
					t.Fatal(err)
				}
				if h := req.Header.Get("Authorization"); strings.Contains(h, "x-amz-target") || strings.Contains(h, "content-type") {
					t.Fatalf("the captured request should sign neither target nor type: %s", h)
				}
				req.Header.Set("X-Amz-Target", target)
				req.Header.Set("Content-Type", "application/x-amz-json-1.0")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				var got map[string]string
				json.Unmarshal(raw, &got)
				if resp.StatusCode != http.StatusForbidden || got["__type"] != "com.amazon.coral.service#SignatureDoesNotMatch" ||
					!strings.Contains(got["message"], "X-Amz-Target") || !strings.HasPrefix(resp.Header.Get("x-amzn-query-error"), "SignatureDoesNotMatch;") {
					t.Fatalf("%s replayed with an unsigned target: %d %s %v", target, resp.StatusCode, raw, resp.Header)
				}
			}
			if got, err := cl.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("victim")}); err != nil || *got.QueueUrl != *created.QueueUrl {
				t.Fatalf("the queue should survive: %v %v", got, err)
			}
		})
	}
}
