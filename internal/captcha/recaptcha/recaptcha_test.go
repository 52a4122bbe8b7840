package recaptcha_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/captcha/recaptcha"
	"carrier/internal/captcha/standin"
)

var keys = captcha.Keys{SiteKey: standin.RecaptchaSiteKey, Secret: standin.RecaptchaSecret}

func verify(t *testing.T, ctx context.Context, k captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	t.Helper()
	done := make(chan captcha.Answer, 1)
	go func() { done <- recaptcha.New(http.DefaultClient).Verify(ctx, k, endpoint, req) }()
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
	const host = "shop.example"
	cases := []struct {
		name    string
		prepare func(s *standin.Server) (captcha.Keys, captcha.Request)
		reason  captcha.Reason
		code    string
	}{
		{"v2 pass", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", host), ExpectedHostname: host}
		}, captcha.ReasonOK, ""},
		{"v3 pass", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "login", host),
				ExpectedHostname: host, ExpectedAction: "login", MinScore: 0.5}
		}, captcha.ReasonOK, ""},
		{"v3 score below the minimum", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.IssueScored(standin.Recaptcha, standin.RecaptchaSiteKey, "login", host, 0.1),
				ExpectedAction: "login", MinScore: 0.5}
		}, captcha.ReasonRiskBlock, "score_below_minimum"},
		{"v3 score at the minimum", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.IssueScored(standin.Recaptcha, standin.RecaptchaSiteKey, "login", host, 0.5), MinScore: 0.5}
		}, captcha.ReasonOK, ""},
		{"v2 token where a score is wanted", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", host), MinScore: 0.5}
		}, captcha.ReasonInvalidToken, "score_missing"},
		{"action mismatch", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "comment", host), ExpectedAction: "login"}
		}, captcha.ReasonInvalidToken, "action_mismatch"},
		{"hostname mismatch", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", "evil.example"), ExpectedHostname: host}
		}, captcha.ReasonInvalidToken, "hostname_mismatch"},
		{"verified twice", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", host)}
			if a := verify(t, context.Background(), keys, s.URL(standin.Recaptcha), req); a.Reason != captcha.ReasonOK {
				t.Errorf("first: %+v", a)
			}
			return keys, req
		}, captcha.ReasonDuplicate, "timeout-or-duplicate"},
		// Google answers an expired token with the same code as a reused one.
		{"older than two minutes", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", host)}
			s.Advance(standin.RecaptchaTTL + time.Second)
			return keys, req
		}, captcha.ReasonDuplicate, "timeout-or-duplicate"},
		{"wrong secret", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return captcha.Keys{Secret: "6Lwrong"}, captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", host)}
		}, captcha.ReasonConfigError, "invalid-input-secret"},
		{"token of another site", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			s.AddSite(standin.Recaptcha, "6Lother", "6Lother-secret")
			return keys, captcha.Request{Token: s.Issue(standin.Recaptcha, "6Lother", "", host)}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
		{"token of another vendor", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", host)}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
		{"forged token", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: "03AFcWeA-forged"}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := standin.New(t)
			k, req := tc.prepare(s)
			a := verify(t, context.Background(), k, s.URL(standin.Recaptcha), req)
			if a.Reason != tc.reason || a.VendorCode != tc.code {
				t.Fatalf("%s %q (%s), want %s %q", a.Reason, a.VendorCode, a.Message, tc.reason, tc.code)
			}
		})
	}
}

func TestScoreAndActionAreReported(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	a := verify(t, context.Background(), keys, s.URL(standin.Recaptcha),
		captcha.Request{Token: s.IssueScored(standin.Recaptcha, standin.RecaptchaSiteKey, "login", "shop.example", 0.7), RemoteIP: "203.0.113.9"})
	if a.Reason != captcha.ReasonOK || a.Score == nil || *a.Score != 0.7 || a.Action != "login" || a.Hostname != "shop.example" {
		t.Fatalf("%+v", a)
	}
	got, _ := s.Last(standin.Recaptcha)
	if got.Params["remoteip"] != "203.0.113.9" || got.Params["secret"] != standin.RecaptchaSecret ||
		got.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("request: %+v %v", got.Params, got.Header)
	}
}

// Every documented error code, and one nobody documented, as Google would
// answer them.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	cases := map[string]captcha.Reason{"brand-new-code": captcha.ReasonConfigError}
	for code, reason := range recaptcha.Codes {
		cases[code] = reason
	}
	for code, reason := range cases {
		s.Fail(standin.Recaptcha, standin.SiteverifyErrors(code))
		a := verify(t, context.Background(), keys, s.URL(standin.Recaptcha), captcha.Request{Token: "tok"})
		if a.Reason != reason || a.VendorCode != code {
			t.Errorf("%s: %+v, want %s", code, a, reason)
		}
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	for fault, want := range map[int]captcha.Reason{
		http.StatusServiceUnavailable:  captcha.ReasonVendorUnavailable,
		http.StatusInternalServerError: captcha.ReasonVendorUnavailable,
		http.StatusTooManyRequests:     captcha.ReasonVendorThrottled,
		http.StatusForbidden:           captcha.ReasonConfigError,
	} {
		s.Fail(standin.Recaptcha, standin.HTTPStatus(fault))
		a := verify(t, context.Background(), keys, s.URL(standin.Recaptcha), captcha.Request{Token: "tok"})
		if a.Reason != want {
			t.Errorf("HTTP %d: %+v, want %s", fault, a, want)
		}
	}
}

func TestDeadlineWhileGoogleHangs(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Recaptcha, standin.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a := verify(t, ctx, keys, s.URL(standin.Recaptcha), captcha.Request{Token: s.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", "h")})
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "timeout" || a.Retryable {
		t.Fatalf("%+v", a)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	if a := verify(t, context.Background(), keys, s.URL(standin.Recaptcha), captcha.Request{}); a.Reason != captcha.ReasonInvalidToken {
		t.Errorf("no token: %+v", a)
	}
	if a := verify(t, context.Background(), captcha.Keys{}, s.URL(standin.Recaptcha), captcha.Request{Token: "t"}); a.Reason != captcha.ReasonConfigError {
		t.Errorf("no secret: %+v", a)
	}
	if n := s.Requests(standin.Recaptcha); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestVendor(t *testing.T) {
	t.Parallel()
	var v captcha.Vendor = recaptcha.New(nil)
	if v.Name() != "recaptcha" || len(v.DefaultEndpoints()) != 1 || v.DefaultEndpoints()[0] != "https://www.google.com/recaptcha/api/siteverify" {
		t.Fatal(v.Name(), v.DefaultEndpoints())
	}
}
