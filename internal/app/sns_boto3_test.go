package app_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"carrier/internal/app"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/dest/email/smtptest"
	"carrier/internal/store/storetest"
)

// python3 with boto3, or a skip.
func boto3Python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 is not installed")
	}
	return py
}

// boto3Env is an environment that points boto3 at c with a new SQS
// credential, and at nothing else (no config files, no instance metadata).
func boto3Env(t *testing.T, c *apptest.Carrier) []string {
	t.Helper()
	r := c.Admin("POST", "/v1/sqs-credentials", nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("create credential: %d %s", r.Status, r.Body)
	}
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_ENDPOINT_URL=" + c.URL,
		"AWS_ACCESS_KEY_ID=" + r.Data()["access_key_id"].(string),
		"AWS_SECRET_ACCESS_KEY=" + r.Data()["secret_access_key"].(string),
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
	}
}

// TestSNSBoto3SourceDocument runs the source document's boto3 code (create
// the topic, subscribe queues with its filter policy, publish from its
// callback handler, consume from SQS) against Carrier, on both engines.
func TestSNSBoto3SourceDocument(t *testing.T) {
	py := boto3Python(t)
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// The document's audit Lambda, mapped to a loopback URL, and its
			// error mail, through an SMTP stand-in.
			audit := apptest.NewEndpoint(t, nil)
			smtp := smtptest.Start(t)
			c := apptest.Start(t, e, apptest.Options{EmailTLS: &tls.Config{RootCAs: smtp.Roots}, Configure: func(cfg *config.Config) {
				cfg.SNSLambdaFunctions = map[string]string{"arn:aws:lambda:us-east-1:123456789:function:captcha-audit-logger": audit.URL + "/audit"}
				cfg.SNSEmailSMTP = fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"from":"sns@example.com"}`, smtp.Port())
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "sns_boto3", "run.py"))
			cmd.Env = boto3Env(t, c)
			out, err := cmd.Output()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("run.py: %v\n%s\n%s", err, out, stderr)
			}
			type refusal struct {
				Code, Message string
				Status        int
			}
			var got struct {
				TopicArn             string           `json:"topic_arn"`
				SubscribeSQS         refusal          `json:"subscribe_sqs"`
				Subscriptions        []string         `json:"subscriptions"`
				Handler              map[string]any   `json:"handler"`
				HandlerMissing       map[string]any   `json:"handler_missing"`
				Results              []map[string]any `json:"results"`
				FailuresFixed        map[string]any   `json:"failures_fixed"`
				FailuresAsWritten    map[string]any   `json:"failures_as_written"`
				Envelope             map[string]any   `json:"envelope"`
				EnvelopeMessageExact bool             `json:"envelope_message_exact"`
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if !strings.HasPrefix(lines[0], "Topic ARN: arn:aws:sns:") {
				t.Errorf("the document's print: %q", lines[0])
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
				t.Fatalf("output %s: %v", out, err)
			}
			if got.TopicArn != "arn:aws:sns:us-east-1:"+app.DefaultProjectID+":captcha-results" {
				t.Errorf("topic ARN %s", got.TopicArn)
			}
			if r := got.SubscribeSQS; r.Code != "InvalidParameter" || r.Status != 400 || !strings.Contains(r.Message, "this account") {
				t.Errorf("subscribe sqs: %+v", r)
			}
			if len(got.Subscriptions) != 5 || got.Subscriptions[0] != "arn:aws:lambda:us-east-1:123456789:function:captcha-audit-logger" ||
				got.Subscriptions[4] != "ops@example.com" {
				t.Errorf("subscriptions %v", got.Subscriptions)
			}
			// The audit Lambda got every publish as Lambda's SNS event; the
			// email subscriber its confirmation mail (and nothing else yet).
			var audited []string
			for _, r := range audit.WaitRequests(t, 3, 10*time.Second) {
				var ev struct {
					Records []struct {
						Sns struct{ Message, Subject string }
					}
				}
				if json.Unmarshal(r.Body, &ev) != nil || len(ev.Records) != 1 || r.Path != "/audit" {
					t.Fatalf("audit request %s %s", r.Path, r.Body)
				}
				audited = append(audited, ev.Records[0].Sns.Subject)
			}
			sort.Strings(audited)
			if fmt.Sprint(audited) != "[again captcha-failed captcha-solved]" {
				t.Errorf("audited subjects %v", audited)
			}
			if subject, _ := mailTo(t, smtp, "ops@example.com", 0); subject != "AWS Notification - Subscription Confirmation" || len(smtp.Messages()) != 1 {
				t.Errorf("mail: %q, %d messages", subject, len(smtp.Messages()))
			}
			if got.Handler["statusCode"] != 200.0 || got.HandlerMissing["statusCode"] != 400.0 {
				t.Errorf("handler %v %v", got.Handler, got.HandlerMissing)
			}
			want := map[string]any{"task_id": "task-1", "solution": "03AGdBq2-SIM", "status": "solved"}
			// A standard queue does not keep publish order (nor does SQS).
			sort.Slice(got.Results, func(i, j int) bool {
				return fmt.Sprint(got.Results[i]["task_id"]) < fmt.Sprint(got.Results[j]["task_id"])
			})
			if len(got.Results) != 2 || !sameJSON(got.Results[0], want) || got.Results[1]["status"] != "failed" {
				t.Errorf("results %v", got.Results)
			}
			if got.FailuresFixed["task_id"] != "task-2" {
				t.Errorf("the fixed filter's queue got %v", got.FailuresFixed)
			}
			if got.FailuresAsWritten != nil {
				t.Errorf("the filter as written (attributes scope) matched a body field: %v", got.FailuresAsWritten)
			}
			if !got.EnvelopeMessageExact || got.Envelope["Subject"] != "again" || got.Envelope["TopicArn"] != got.TopicArn {
				t.Errorf("envelope %v", got.Envelope)
			}
			attrs, _ := got.Envelope["MessageAttributes"].(map[string]any)
			if a, _ := attrs["attempt"].(map[string]any); a["Type"] != "Number" || a["Value"] != "2" || len(attrs) != 1 {
				t.Errorf("envelope attributes %v", attrs)
			}
		})
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestSNSBoto3FixtureIsTheDocument checks that the fixture's lines (but the
// fix and the comments that mark sections) are the source document's, in
// order, with only their indentation restored.
func TestSNSBoto3FixtureIsTheDocument(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "seeds", "001_f36deb260d107521.txt"))
	if err != nil {
		doc, err = os.ReadFile("/work/shared/seeds/001_f36deb260d107521.txt")
	}
	if err != nil {
		t.Skip("the source document is not here")
	}
	docLines := strings.Split(string(doc), "\n")
	f, err := os.Open(filepath.Join("testdata", "sns_boto3", "captcha_results.py"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	section, pos := "", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "# --- "); ok {
			section = name
			continue
		}
		if section == "" || line == "" {
			continue
		}
		if section == "filter_fixed" {
			if line == `}),` || line == `"FilterPolicyScope": "MessageBody"` {
				continue // the fix
			}
		}
		found := false
		for i := pos; i < len(docLines) && i < pos+400; i++ {
			if strings.TrimSpace(docLines[i]) == line {
				found, pos = true, i+1
				break
			}
		}
		if !found && section == "filter_fixed" {
			// The fixed section repeats the filter section's lines.
			found = strings.Contains(string(doc), line)
		}
		if !found {
			t.Fatalf("section %s: line %q is not the document's (after line %d)", section, line, pos)
		}
	}
}
