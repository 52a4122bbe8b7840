package turnstile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/captcha/standin"
	"carrier/internal/captcha/turnstile"
)

var keys = captcha.Keys{SiteKey: standin.TurnstileSiteKey, Secret: standin.TurnstileSecret}

func verify(t *testing.T, ctx context.Context, k captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	t.Helper()
	done := make(chan captcha.Answer, 1)
	go func() { done <- turnstile.New(http.DefaultClient).Verify(ctx, k, endpoint, req) }()
	select {
	case a := <-done:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("Verify did not return")
		return captcha.Answer{}
	}
}

func TestVerifyAgainstStandIn(t *testing.T) {
	t.Parallel()
	const host = "app.example"
	cases := []struct {
		name    string
		prepare func(s *standin.Server) (captcha.Keys, captcha.Request)
		reason  captcha.Reason
		code    string
	}{
		{"pass", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "login", host),
				ExpectedHostname: host, ExpectedAction: "login"}
		}, captcha.ReasonOK, ""},
		{"action mismatch", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "signup", host), ExpectedAction: "login"}
		}, captcha.ReasonInvalidToken, "action_mismatch"},
		{"hostname mismatch", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", "evil.example"), ExpectedHostname: host}
		}, captcha.ReasonInvalidToken, "hostname_mismatch"},
		{"verified twice", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", host)}
			if a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req); a.Reason != captcha.ReasonOK {
				t.Errorf("first: %+v", a)
			}
			return keys, req
		}, captcha.ReasonDuplicate, "timeout-or-duplicate"},
		{"older than 300 seconds", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", host)}
			s.Advance(standin.TurnstileTTL + time.Second)
			return keys, req
		}, captcha.ReasonDuplicate, "timeout-or-duplicate"},
		{"wrong secret", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return captcha.Keys{Secret: "0xwrong"}, captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", host)}
		}, captcha.ReasonConfigError, "invalid-input-secret"},
		{"token of another site", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			s.AddSite(standin.Turnstile, "0x4other", "0x4other-secret")
			return keys, captcha.Request{Token: s.Issue(standin.Turnstile, "0x4other", "", host)}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
		{"forged token", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: "0.forged"}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := standin.New(t)
			k, req := tc.prepare(s)
			a := verify(t, context.Background(), k, s.URL(standin.Turnstile), req)
			if a.Reason != tc.reason || a.VendorCode != tc.code {
				t.Fatalf("%s %q (%s), want %s %q", a.Reason, a.VendorCode, a.Message, tc.reason, tc.code)
			}
			if a.Retryable {
				t.Error("retryable without an idempotency key")
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	cases := map[string]captcha.Reason{"brand-new-code": captcha.ReasonConfigError}
	for code, reason := range turnstile.Codes {
		cases[code] = reason
	}
	for code, reason := range cases {
		s.Fail(standin.Turnstile, standin.SiteverifyErrors(code))
		a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), captcha.Request{Token: "tok"})
		if a.Reason != reason || a.VendorCode != code {
			t.Errorf("%s: %+v, want %s", code, a, reason)
		}
	}
}

func TestInternalErrorDegrades(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Turnstile, standin.SiteverifyErrors("internal-error"))
	a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", "h")})
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "internal-error" {
		t.Fatalf("%+v", a)
	}
}

// The answer to the first verification is lost after Cloudflare consumed
// the token. With the same idempotency key the retry gets the first
// answer; without one it is told the token was used.
func TestIdempotencyKeyMakesARetrySafe(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	const key = "7f0c1e6a-2a9e-4bde-9d4c-0a4b3b1f9e21"
	req := captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "login", "h"), IdempotencyKey: key}

	s.Fail(standin.Turnstile, standin.Fault{Hang: true, AfterVerify: true, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	first := verify(t, ctx, keys, s.URL(standin.Turnstile), req)
	if first.Reason != captcha.ReasonVendorUnavailable || first.VendorCode != "timeout" || !first.Retryable {
		t.Fatalf("first: %+v", first)
	}
	retry := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req)
	if retry.Reason != captcha.ReasonOK || retry.Action != "login" || !retry.Retryable {
		t.Fatalf("retry with the key: %+v", retry)
	}
	again := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req)
	if again.Reason != captcha.ReasonOK {
		t.Fatalf("second retry with the key: %+v", again)
	}
	req.IdempotencyKey = ""
	if a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req); a.Reason != captcha.ReasonDuplicate || a.Retryable {
		t.Fatalf("retry without the key: %+v", a)
	}
	req.IdempotencyKey = "another-key"
	if a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req); a.Reason != captcha.ReasonDuplicate {
		t.Fatalf("retry with another key: %+v", a)
	}
	if n := s.Requests(standin.Turnstile); n != 5 {
		t.Fatalf("%d requests", n)
	}
}

// The request is JSON with the documented field names.
func TestRequestIsJSON(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	req := captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", "h"), RemoteIP: "192.0.2.1", IdempotencyKey: "k-1"}
	if a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), req); a.Reason != captcha.ReasonOK {
		t.Fatalf("%+v", a)
	}
	got, _ := s.Last(standin.Turnstile)
	var body map[string]string
	if err := json.Unmarshal(got.Body, &body); err != nil || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("body %s (%v), content type %q", got.Body, err, got.Header.Get("Content-Type"))
	}
	want := map[string]string{"secret": standin.TurnstileSecret, "response": req.Token, "remoteip": "192.0.2.1", "idempotency_key": "k-1"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %q, want %q", k, body[k], v)
		}
	}
}

func TestTokenTooLongIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), captcha.Request{Token: strings.Repeat("x", turnstile.MaxToken+1)})
	if a.Reason != captcha.ReasonInvalidToken || s.Requests(standin.Turnstile) != 0 {
		t.Fatalf("%+v after %d requests", a, s.Requests(standin.Turnstile))
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	for fault, want := range map[int]captcha.Reason{
		http.StatusServiceUnavailable: captcha.ReasonVendorUnavailable,
		http.StatusTooManyRequests:    captcha.ReasonVendorThrottled,
	} {
		s.Fail(standin.Turnstile, standin.HTTPStatus(fault))
		a := verify(t, context.Background(), keys, s.URL(standin.Turnstile), captcha.Request{Token: "tok", IdempotencyKey: "k"})
		if a.Reason != want || !a.Retryable {
			t.Errorf("HTTP %d: %+v, want retryable %s", fault, a, want)
		}
	}
}

func TestDeadlineWhileCloudflareHangs(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Turnstile, standin.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a := verify(t, ctx, keys, s.URL(standin.Turnstile), captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", "h")})
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "timeout" || a.Retryable {
		t.Fatalf("%+v", a)
	}
}

func TestVendor(t *testing.T) {
	t.Parallel()
	var v captcha.Vendor = turnstile.New(nil)
	if v.Name() != "turnstile" || len(v.DefaultEndpoints()) != 1 ||
		v.DefaultEndpoints()[0] != "https://challenges.cloudflare.com/turnstile/v0/siteverify" {
		t.Fatal(v.Name(), v.DefaultEndpoints())
	}
}
