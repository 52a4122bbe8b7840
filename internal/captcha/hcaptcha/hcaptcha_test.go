package hcaptcha_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/captcha/hcaptcha"
	"carrier/internal/captcha/standin"
)

var keys = captcha.Keys{SiteKey: standin.HcaptchaSiteKey, Secret: standin.HcaptchaSecret}

func verify(t *testing.T, ctx context.Context, k captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	t.Helper()
	done := make(chan captcha.Answer, 1)
	go func() { done <- hcaptcha.New(http.DefaultClient).Verify(ctx, k, endpoint, req) }()
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
	const host = "forum.example"
	cases := []struct {
		name    string
		prepare func(s *standin.Server) (captcha.Keys, captcha.Request)
		reason  captcha.Reason
		code    string
	}{
		{"pass", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host), ExpectedHostname: host}
		}, captcha.ReasonOK, ""},
		{"pass without a sitekey", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return captcha.Keys{Secret: standin.HcaptchaSecret}, captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host)}
		}, captcha.ReasonOK, ""},
		{"hostname mismatch", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", "evil.example"), ExpectedHostname: host}
		}, captcha.ReasonInvalidToken, "hostname_mismatch"},
		{"verified twice", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host)}
			if a := verify(t, context.Background(), keys, s.URL(standin.Hcaptcha), req); a.Reason != captcha.ReasonOK {
				t.Errorf("first: %+v", a)
			}
			return keys, req
		}, captcha.ReasonDuplicate, "already-seen-response"},
		{"expired", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host)}
			s.Advance(standin.HcaptchaTTL + time.Second)
			return keys, req
		}, captcha.ReasonExpired, "expired-input-response"},
		{"wrong secret", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return captcha.Keys{Secret: "0xwrong"}, captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host)}
		}, captcha.ReasonConfigError, "invalid-input-secret"},
		{"sitekey of another site", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			s.AddSite(standin.Hcaptcha, "20000000-other", "0xother")
			return captcha.Keys{SiteKey: "20000000-other", Secret: standin.HcaptchaSecret},
				captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", host)}
		}, captcha.ReasonConfigError, "sitekey-secret-mismatch"},
		{"token of another site", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			s.AddSite(standin.Hcaptcha, "20000000-other", "0xother")
			return keys, captcha.Request{Token: s.Issue(standin.Hcaptcha, "20000000-other", "", host)}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
		{"forged token", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys, captcha.Request{Token: "P1_forged"}
		}, captcha.ReasonInvalidToken, "invalid-input-response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := standin.New(t)
			k, req := tc.prepare(s)
			a := verify(t, context.Background(), k, s.URL(standin.Hcaptcha), req)
			if a.Reason != tc.reason || a.VendorCode != tc.code {
				t.Fatalf("%s %q (%s), want %s %q", a.Reason, a.VendorCode, a.Message, tc.reason, tc.code)
			}
		})
	}
}

func TestSitekeyAndRemoteIPAreSent(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	a := verify(t, context.Background(), keys, s.URL(standin.Hcaptcha),
		captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", "h"), RemoteIP: "198.51.100.4"})
	if a.Reason != captcha.ReasonOK {
		t.Fatalf("%+v", a)
	}
	got, _ := s.Last(standin.Hcaptcha)
	if got.Params["sitekey"] != standin.HcaptchaSiteKey || got.Params["remoteip"] != "198.51.100.4" {
		t.Fatalf("params %v", got.Params)
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	cases := map[string]captcha.Reason{"brand-new-code": captcha.ReasonConfigError}
	for code, reason := range hcaptcha.Codes {
		cases[code] = reason
	}
	for code, reason := range cases {
		s.Fail(standin.Hcaptcha, standin.SiteverifyErrors(code))
		a := verify(t, context.Background(), keys, s.URL(standin.Hcaptcha), captcha.Request{Token: "tok"})
		if a.Reason != reason || a.VendorCode != code {
			t.Errorf("%s: %+v, want %s", code, a, reason)
		}
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	for fault, want := range map[int]captcha.Reason{
		http.StatusBadGateway:      captcha.ReasonVendorUnavailable,
		http.StatusTooManyRequests: captcha.ReasonVendorThrottled,
	} {
		s.Fail(standin.Hcaptcha, standin.HTTPStatus(fault))
		if a := verify(t, context.Background(), keys, s.URL(standin.Hcaptcha), captcha.Request{Token: "tok"}); a.Reason != want {
			t.Errorf("HTTP %d: %+v, want %s", fault, a, want)
		}
	}
}

func TestDeadlineWhileHcaptchaHangs(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Hcaptcha, standin.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a := verify(t, ctx, keys, s.URL(standin.Hcaptcha), captcha.Request{Token: s.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", "h")})
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "timeout" {
		t.Fatalf("%+v", a)
	}
}

func TestVendor(t *testing.T) {
	t.Parallel()
	var v captcha.Vendor = hcaptcha.New(nil)
	if v.Name() != "hcaptcha" || len(v.DefaultEndpoints()) != 1 || v.DefaultEndpoints()[0] != "https://api.hcaptcha.com/siteverify" {
		t.Fatal(v.Name(), v.DefaultEndpoints())
	}
	if a := v.Verify(context.Background(), keys, "", captcha.Request{}); a.Reason != captcha.ReasonInvalidToken {
		t.Fatalf("no token: %+v", a)
	}
}
