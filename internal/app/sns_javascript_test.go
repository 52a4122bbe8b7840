package app_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestSNSJavaScriptSDK runs the source document's AWS SDK for JavaScript v3
// code (testdata/sns_js: its Lambda handler, which publishes, and its SQS
// consumer) against Carrier, configured by environment variables only: the
// consumer gets the published result out of the SNS envelope.
func TestSNSJavaScriptSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the AWS SDK for JavaScript from the npm registry")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("node and npm are needed:", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "handler.js", "consumer.js", "run.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "sns_js", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret, region: "us-east-1"}
			var topic struct {
				TopicArn string `xml:"TopicArn"`
			}
			cl.ok(&topic, "CreateTopic", "Name", "captcha-results")
			if r := c.Admin("POST", "/v1/queues", map[string]any{"name": "solved"}); r.Status != 201 {
				t.Fatalf("create queue: %d %s", r.Status, r.Body)
			}
			cl.ok(nil, "Subscribe", "TopicArn", topic.TopicArn, "Protocol", "sqs", "Endpoint", "arn:aws:sqs:us-east-1:default:solved")

			run := exec.Command("node", "run.js")
			run.Dir = dir
			run.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+c.URL, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
				"AWS_REGION=us-east-1", "SNS_TOPIC_ARN="+topic.TopicArn, "SQS_QUEUE_URL="+c.URL+"/default/solved")
			var stderr bytes.Buffer
			run.Stderr = &stderr // the SDK warns about the Node version there
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = run.Output(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				run.Process.Kill()
				<-done
				t.Fatalf("node run.js did not finish in 60 s:\n%s", out)
			}
			if err != nil {
				t.Fatalf("node run.js: %v\n%s%s", err, out, stderr.Bytes())
			}
			var got map[string]string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("consumer printed %q: %v", out, err)
			}
			if got["task_id"] != "task-js-1" || got["solution"] != "03AGdBq2-js" || got["status"] != "solved" {
				t.Errorf("consumer got %v", got)
			}
		})
	}
}
