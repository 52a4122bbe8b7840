package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	// jsonContentType is the SQS JSON protocol's.
	jsonContentType = "application/x-amz-json-1.0"
	exampleKey      = "AKIDEXAMPLE"
	exampleSecret   = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// TestSignatureAWSSuite: the get-vanilla case of the AWS SigV4 test suite.
func TestSignatureAWSSuite(t *testing.T) {
	h := http.Header{}
	h.Set("X-Amz-Date", "20150830T123600Z")
	auth, err := ParseAuthorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Method: "GET", EscapedPath: "/", Host: "example.amazonaws.com", Header: h, PayloadHash: sha256Hex("")}
	got, err := Signature(exampleSecret, auth, "20150830T123600Z", r)
	if err != nil || got != auth.Signature {
		t.Fatalf("signature %s (%v), want %s", got, err, auth.Signature)
	}
	now, _ := time.Parse(amzDateFormat, "20150830T124000Z")
	if err := Verify(exampleSecret, "service", auth, r, now); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// sdkSigned signs an SQS request with the AWS SDK's own signer.
func sdkSigned(t *testing.T, body string, at time.Time) (Request, Authorization) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://127.0.0.1:8080/", strings.NewReader(body))
	req.Header.Set("Content-Type", jsonContentType)
	req.Header.Set("X-Amz-Target", "AmazonSQS.ListQueues")
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: exampleKey, SecretAccessKey: exampleSecret}, req, hash, "sqs", "eu-central-1", at)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ParseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	return Request{Method: req.Method, EscapedPath: req.URL.EscapedPath(), Host: req.Host, Header: req.Header, ContentLength: req.ContentLength, PayloadHash: hash}, auth
}

func TestVerify(t *testing.T) {
	at := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		secret string
		now    time.Time
		mod    func(*Request, *Authorization)
		want   string // error code, "" = accepted
	}{
		{name: "sdk signature", secret: exampleSecret, now: at},
		{name: "clock 14 min ahead", secret: exampleSecret, now: at.Add(14 * time.Minute)},
		{name: "wrong secret", secret: "other", now: at, want: "SignatureDoesNotMatch"},
		{name: "stale date", secret: exampleSecret, now: at.Add(16 * time.Minute), want: "SignatureDoesNotMatch"},
		{name: "future date", secret: exampleSecret, now: at.Add(-16 * time.Minute), want: "SignatureDoesNotMatch"},
		{name: "tampered body", secret: exampleSecret, now: at, mod: func(r *Request, _ *Authorization) { r.PayloadHash = sha256Hex("{}") }, want: "SignatureDoesNotMatch"},
		{name: "tampered target", secret: exampleSecret, now: at, mod: func(r *Request, _ *Authorization) { r.Header.Set("X-Amz-Target", "AmazonSQS.PurgeQueue") }, want: "SignatureDoesNotMatch"},
		{name: "other host", secret: exampleSecret, now: at, mod: func(r *Request, _ *Authorization) { r.Host = "evil" }, want: "SignatureDoesNotMatch"},
		{name: "other service", secret: exampleSecret, now: at, mod: func(_ *Request, a *Authorization) { a.Service = "s3" }, want: "SignatureDoesNotMatch"},
		{name: "bad signature", secret: exampleSecret, now: at, mod: func(_ *Request, a *Authorization) { a.Signature = strings.Repeat("0", 64) }, want: "SignatureDoesNotMatch"},
		{name: "no date", secret: exampleSecret, now: at, mod: func(r *Request, _ *Authorization) { r.Header.Del("X-Amz-Date") }, want: "IncompleteSignature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, a := sdkSigned(t, `{"QueueNamePrefix":"x"}`, at)
			if c.mod != nil {
				c.mod(&r, &a)
			}
			err := Verify(c.secret, "sqs", a, r, c.now)
			code := ""
			if se, ok := AsError(err); ok {
				code = se.Code
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if code != c.want {
				t.Fatalf("got %q (%v), want %q", code, err, c.want)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	for h, want := range map[string]string{
		"":         "MissingAuthenticationToken",
		"Bearer x": "IncompleteSignature",
		"AWS4-HMAC-SHA256 Credential=a/b/c/sqs/aws4_request":                                 "IncompleteSignature",
		"AWS4-HMAC-SHA256 Credential=a/b/sqs/aws4_request, SignedHeaders=host, Signature=00": "IncompleteSignature",
	} {
		_, err := ParseAuthorization(h)
		if se, ok := AsError(err); !ok || se.Code != want {
			t.Errorf("%q: %v, want %s", h, err, want)
		}
	}
}

// TestVerifyRequiresSignedTargetAndType: a signature over host and
// x-amz-date only (the SDK signs whatever headers the request has) must not
// let a captured request be replayed with another X-Amz-Target or
// Content-Type.
func TestVerifyRequiresSignedTargetAndType(t *testing.T) {
	at := time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)
	body := `{"QueueUrl":"http://127.0.0.1:8080/default/results"}`
	req, _ := http.NewRequest("POST", "http://127.0.0.1:8080/", strings.NewReader(body))
	hash := sha256Hex(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: exampleKey, SecretAccessKey: exampleSecret}, req, hash, "sqs", "eu-central-1", at); err != nil {
		t.Fatal(err)
	}
	auth, err := ParseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(auth.SignedHeaders, ";"); got != "content-length;host;x-amz-date" {
		t.Fatalf("signed headers %s, want content-length;host;x-amz-date", got)
	}
	sr := func(h http.Header) Request {
		return Request{Method: "POST", EscapedPath: "/", Host: req.Host, Header: h, ContentLength: req.ContentLength, PayloadHash: hash}
	}
	if err := Verify(exampleSecret, "sqs", auth, sr(req.Header.Clone()), at); err != nil {
		t.Fatalf("a signature over host and x-amz-date with neither header sent: %v", err)
	}
	for name, value := range map[string]string{"X-Amz-Target": "AmazonSQS.DeleteQueue", "Content-Type": jsonContentType} {
		h := req.Header.Clone()
		h.Set(name, value)
		err := Verify(exampleSecret, "sqs", auth, sr(h), at)
		if se, ok := AsError(err); !ok || se.Code != "SignatureDoesNotMatch" || !strings.Contains(se.Message, name) {
			t.Errorf("unsigned %s added: %v, want SignatureDoesNotMatch naming it", name, err)
		}
	}
	// Signing "date" instead of x-amz-date is not enough either.
	a := auth
	a.SignedHeaders = []string{"date", "host"}
	if se, ok := AsError(Verify(exampleSecret, "sqs", a, sr(req.Header.Clone()), at)); !ok || !strings.Contains(se.Message, "X-Amz-Date") {
		t.Errorf("x-amz-date unsigned: %v", se)
	}
}
