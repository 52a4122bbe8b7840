package tencent_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/captcha/standin"
	"carrier/internal/captcha/tencent"
)

func keys() captcha.Keys {
	return captcha.Keys{
		AppID:     standin.TencentAppID,
		AppSecret: standin.TencentAppSecret,
		SecretID:  standin.TencentSecretID,
		SecretKey: standin.TencentSecretKey,
	}
}

// verify calls Verify and fails the test if it has not returned within a
// generous bound (which only catches a hang).
func verify(t *testing.T, ctx context.Context, c *tencent.Client, k captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	t.Helper()
	done := make(chan captcha.Answer, 1)
	go func() { done <- c.Verify(ctx, k, endpoint, req) }()
	select {
	case a := <-done:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("Verify did not return")
		return captcha.Answer{}
	}
}

func ticketRequest(ticket, randstr string) captcha.Request {
	return captcha.Request{Token: ticket, Randstr: randstr, RemoteIP: "203.0.113.7"}
}

func TestVerifyAgainstStandIn(t *testing.T) {
	t.Parallel()
	const otherApp, otherSecret = "2000000002", "otherAppSecret"
	cases := []struct {
		name    string
		prepare func(s *standin.Server) (captcha.Keys, captcha.Request)
		reason  captcha.Reason
		code    string
	}{
		{"pass", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys(), ticketRequest(s.IssueTicket(standin.TencentAppID))
		}, captcha.ReasonOK, "1"},
		{"malicious EvilLevel", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys(), ticketRequest(s.IssueRiskyTicket(standin.TencentAppID, 100))
		}, captcha.ReasonRiskBlock, "1"},
		{"EvilLevel the site accepts", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := ticketRequest(s.IssueRiskyTicket(standin.TencentAppID, 100))
			req.MaxEvilLevel = 100
			return keys(), req
		}, captcha.ReasonOK, "1"},
		{"verified twice", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := ticketRequest(s.IssueTicket(standin.TencentAppID))
			if a := tencent.New(http.DefaultClient).Verify(context.Background(), keys(), s.URL(standin.Tencent), req); a.Reason != captcha.ReasonOK {
				t.Errorf("first verification: %+v", a)
			}
			return keys(), req
		}, captcha.ReasonDuplicate, "9"},
		{"wrong randstr", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			ticket, _ := s.IssueTicket(standin.TencentAppID)
			return keys(), ticketRequest(ticket, "@nope")
		}, captcha.ReasonInvalidToken, "7"},
		{"expired after five minutes", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := ticketRequest(s.IssueTicket(standin.TencentAppID))
			s.Advance(standin.TencentTTL + time.Second)
			return keys(), req
		}, captcha.ReasonExpired, "8"},
		{"still valid at five minutes", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := ticketRequest(s.IssueTicket(standin.TencentAppID))
			s.Advance(standin.TencentTTL)
			return keys(), req
		}, captcha.ReasonOK, "1"},
		{"forged ticket", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys(), ticketRequest("t03forged", "@abc")
		}, captcha.ReasonInvalidToken, "15"},
		{"ticket of another app", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			s.AddTencentApp(otherApp, otherSecret)
			return keys(), ticketRequest(s.IssueTicket(otherApp))
		}, captcha.ReasonConfigError, "16"},
		{"wrong AppSecretKey", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			k := keys()
			k.AppSecret = "wrong"
			return k, ticketRequest(s.IssueTicket(standin.TencentAppID))
		}, captcha.ReasonConfigError, "100"},
		{"wrong CaptchaAppId", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			k := keys()
			k.AppID = "1999999999"
			return k, ticketRequest(s.IssueTicket(standin.TencentAppID))
		}, captcha.ReasonConfigError, "16"},
		{"unknown CaptchaAppId and ticket", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			k := keys()
			k.AppID = "1999999999"
			return k, ticketRequest("t03forged", "@abc")
		}, captcha.ReasonConfigError, "100"},
		{"terror_ disaster-recovery ticket", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys(), ticketRequest(standin.DRTicket(standin.TencentAppID, s.Now()))
		}, captcha.ReasonInvalidToken, "21"},
		{"trerror_ disaster-recovery ticket", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			return keys(), ticketRequest("trerror_1001_"+standin.TencentAppID+"_1700000000", "@x1")
		}, captcha.ReasonInvalidToken, "21"},
		{"wrong SecretKey", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			k := keys()
			k.SecretKey = "not-the-key"
			return k, ticketRequest(s.IssueTicket(standin.TencentAppID))
		}, captcha.ReasonConfigError, "AuthFailure.SignatureFailure"},
		{"unknown SecretId", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			k := keys()
			k.SecretID = "AKIDunknown"
			return k, ticketRequest(s.IssueTicket(standin.TencentAppID))
		}, captcha.ReasonConfigError, "AuthFailure.SecretIdNotFound"},
		{"no user IP", func(s *standin.Server) (captcha.Keys, captcha.Request) {
			req := ticketRequest(s.IssueTicket(standin.TencentAppID))
			req.RemoteIP = ""
			return keys(), req
		}, captcha.ReasonConfigError, "MissingParameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := standin.New(t)
			k, req := tc.prepare(s)
			a := verify(t, context.Background(), tencent.New(http.DefaultClient), k, s.URL(standin.Tencent), req)
			if a.Reason != tc.reason || a.VendorCode != tc.code {
				t.Fatalf("%s %q (%s), want %s %q", a.Reason, a.VendorCode, a.Message, tc.reason, tc.code)
			}
			if a.Retryable {
				t.Error("retryable")
			}
		})
	}
}

func TestEvilLevelIsReported(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	c := tencent.New(http.DefaultClient)
	a := verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), ticketRequest(s.IssueTicket(standin.TencentAppID)))
	if a.EvilLevel == nil || *a.EvilLevel != 0 || a.Message != "OK" {
		t.Fatalf("%+v", a)
	}
	a = verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), ticketRequest(s.IssueRiskyTicket(standin.TencentAppID, 100)))
	if a.EvilLevel == nil || *a.EvilLevel != 100 {
		t.Fatalf("%+v", a)
	}
}

// Faults the stand-in injects, and every CaptchaCode Tencent documents,
// through the whole path: signed request, answer, reason.
func TestVendorAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault  standin.Fault
		reason captcha.Reason
		code   string
	}{
		{standin.TencentError("InternalError"), captcha.ReasonVendorUnavailable, "InternalError"},
		{standin.TencentError("ServiceUnavailable"), captcha.ReasonVendorUnavailable, "ServiceUnavailable"},
		{standin.TencentError("RequestLimitExceeded"), captcha.ReasonVendorThrottled, "RequestLimitExceeded"},
		{standin.TencentError("RequestLimitExceeded.IPLimitExceeded"), captcha.ReasonVendorThrottled, "RequestLimitExceeded.IPLimitExceeded"},
		{standin.TencentError("UnauthorizedOperation.Unauthorized"), captcha.ReasonConfigError, "UnauthorizedOperation.Unauthorized"},
		{standin.TencentError("InvalidParameterValue"), captcha.ReasonConfigError, "InvalidParameterValue"},
		{standin.TencentError("AuthFailure.SignatureExpire"), captcha.ReasonConfigError, "AuthFailure.SignatureExpire"},
		{standin.TencentError("NeverDocumented.Code"), captcha.ReasonConfigError, "NeverDocumented.Code"},
		{standin.TencentCaptchaCode(26), captcha.ReasonVendorUnavailable, "26"},
		{standin.TencentCaptchaCode(25), captcha.ReasonRiskBlock, "25"},
		{standin.TencentCaptchaCode(104), captcha.ReasonDuplicate, "104"},
		{standin.TencentCaptchaCode(6), captcha.ReasonInvalidToken, "6"},
		{standin.TencentCaptchaCode(999), captcha.ReasonConfigError, "999"},
		{standin.HTTPStatus(http.StatusServiceUnavailable), captcha.ReasonVendorUnavailable, "http_503"},
		{standin.HTTPStatus(http.StatusBadGateway), captcha.ReasonVendorUnavailable, "http_502"},
		{standin.HTTPStatus(http.StatusTooManyRequests), captcha.ReasonVendorThrottled, "http_429"},
		{standin.HTTPStatus(http.StatusNotFound), captcha.ReasonConfigError, "http_404"},
	}
	for code, reason := range tencent.CaptchaCodes {
		cases = append(cases, struct {
			fault  standin.Fault
			reason captcha.Reason
			code   string
		}{standin.TencentCaptchaCode(int(code)), reason, strconv.FormatInt(code, 10)})
	}
	s := standin.New(t)
	c := tencent.New(http.DefaultClient)
	for _, tc := range cases {
		s.Fail(standin.Tencent, tc.fault)
		a := verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), ticketRequest(s.IssueTicket(standin.TencentAppID)))
		if a.Reason != tc.reason || a.VendorCode != tc.code {
			t.Errorf("%+v: %s %q, want %s %q", tc.fault, a.Reason, a.VendorCode, tc.reason, tc.code)
		}
	}
}

func TestDeadlineWhileTencentHangs(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Tencent, standin.Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a := verify(t, ctx, tencent.New(http.DefaultClient), keys(), s.URL(standin.Tencent), ticketRequest(s.IssueTicket(standin.TencentAppID)))
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "timeout" {
		t.Fatalf("%+v", a)
	}
	if s.Requests(standin.Tencent) != 1 {
		t.Fatalf("%d requests", s.Requests(standin.Tencent))
	}
}

// The backup endpoint knows the same tickets; the client does not fail
// over by itself (the core chooses the endpoint), so each call is one
// request to the endpoint it was given.
func TestBackupEndpoint(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Tencent, standin.TencentError("InternalError"))
	c := tencent.New(http.DefaultClient)
	req := ticketRequest(s.IssueTicket(standin.TencentAppID))
	if a := verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), req); a.Reason != captcha.ReasonVendorUnavailable {
		t.Fatalf("primary: %+v", a)
	}
	if a := verify(t, context.Background(), c, keys(), s.URL(standin.TencentBackup), req); a.Reason != captcha.ReasonOK {
		t.Fatalf("backup: %+v", a)
	}
	if s.Requests(standin.Tencent) != 1 || s.Requests(standin.TencentBackup) != 1 {
		t.Fatalf("requests %d, %d", s.Requests(standin.Tencent), s.Requests(standin.TencentBackup))
	}
	eps := c.DefaultEndpoints()
	if len(eps) != 2 || eps[0] != "https://captcha.tencentcloudapi.com/" || !strings.Contains(eps[1], "ap-guangzhou") {
		t.Fatalf("DefaultEndpoints = %v", eps)
	}
	eps[0] = "changed"
	if c.DefaultEndpoints()[0] == "changed" {
		t.Fatal("DefaultEndpoints shares its slice")
	}
}

// The answer was lost after Tencent consumed the ticket: a retry is told 9,
// which is why such a failure is not retryable.
func TestLostAnswerConsumedTheTicket(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	s.Fail(standin.Tencent, standin.Fault{Hang: true, AfterVerify: true, Times: 1})
	c := tencent.New(http.DefaultClient)
	req := ticketRequest(s.IssueTicket(standin.TencentAppID))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if a := verify(t, ctx, c, keys(), s.URL(standin.Tencent), req); a.VendorCode != "timeout" || a.Retryable {
		t.Fatalf("first: %+v", a)
	}
	if a := verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), req); a.Reason != captcha.ReasonDuplicate {
		t.Fatalf("retry: %+v", a)
	}
}

func TestConnectError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()
	a := verify(t, context.Background(), tencent.New(http.DefaultClient), keys(), url, ticketRequest("t03x", "@x"))
	if a.Reason != captcha.ReasonVendorUnavailable || a.VendorCode != "connect_error" || !a.Retryable {
		t.Fatalf("%+v", a)
	}
}

func TestClockSkewIsAConfigError(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	c := &tencent.Client{HTTP: http.DefaultClient, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	a := verify(t, context.Background(), c, keys(), s.URL(standin.Tencent), ticketRequest(s.IssueTicket(standin.TencentAppID)))
	if a.Reason != captcha.ReasonConfigError || a.VendorCode != "AuthFailure.SignatureExpire" {
		t.Fatalf("%+v", a)
	}
}

// What needs no call to Tencent is answered without one.
func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	ticket, randstr := s.IssueTicket(standin.TencentAppID)
	cases := []struct {
		name   string
		keys   func(k *captcha.Keys)
		req    captcha.Request
		reason captcha.Reason
	}{
		{"app id not an integer", func(k *captcha.Keys) { k.AppID = "app-1" }, ticketRequest(ticket, randstr), captcha.ReasonConfigError},
		{"no AppSecretKey", func(k *captcha.Keys) { k.AppSecret = "" }, ticketRequest(ticket, randstr), captcha.ReasonConfigError},
		{"no SecretId", func(k *captcha.Keys) { k.SecretID = "" }, ticketRequest(ticket, randstr), captcha.ReasonConfigError},
		{"no SecretKey", func(k *captcha.Keys) { k.SecretKey = "" }, ticketRequest(ticket, randstr), captcha.ReasonConfigError},
		{"no ticket", func(*captcha.Keys) {}, ticketRequest("", randstr), captcha.ReasonInvalidToken},
		{"no randstr", func(*captcha.Keys) {}, ticketRequest(ticket, ""), captcha.ReasonInvalidToken},
	}
	for _, tc := range cases {
		k := keys()
		tc.keys(&k)
		a := verify(t, context.Background(), tencent.New(http.DefaultClient), k, s.URL(standin.Tencent), tc.req)
		if a.Reason != tc.reason {
			t.Errorf("%s: %+v, want %s", tc.name, a, tc.reason)
		}
	}
	if n := s.Requests(standin.Tencent); n != 0 {
		t.Fatalf("%d requests reached Tencent", n)
	}
	// The ticket was not consumed by any of them.
	if a := verify(t, context.Background(), tencent.New(http.DefaultClient), keys(), s.URL(standin.Tencent), ticketRequest(ticket, randstr)); a.Reason != captcha.ReasonOK {
		t.Fatalf("%+v", a)
	}
}

// The request carries what DescribeCaptchaResult documents, typed as it
// documents (CaptchaAppId and CaptchaType are integers).
func TestRequestParameters(t *testing.T) {
	t.Parallel()
	s := standin.New(t)
	k := keys()
	k.Region = "ap-guangzhou"
	ticket, randstr := s.IssueTicket(standin.TencentAppID)
	if a := verify(t, context.Background(), tencent.New(http.DefaultClient), k, s.URL(standin.Tencent), ticketRequest(ticket, randstr)); a.Reason != captcha.ReasonOK {
		t.Fatalf("%+v", a)
	}
	got, ok := s.Last(standin.Tencent)
	if !ok {
		t.Fatal("no request recorded")
	}
	want := map[string]string{
		"CaptchaType":  "9",
		"Ticket":       ticket,
		"Randstr":      randstr,
		"UserIp":       "203.0.113.7",
		"CaptchaAppId": standin.TencentAppID,
		"AppSecretKey": standin.TencentAppSecret,
	}
	for k, v := range want {
		if got.Params[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Params[k], v)
		}
	}
	if strings.Contains(string(got.Body), `"CaptchaAppId":"`) {
		t.Errorf("CaptchaAppId sent as a string: %s", got.Body)
	}
	for h, v := range map[string]string{
		"X-TC-Action":  "DescribeCaptchaResult",
		"X-TC-Version": "2019-07-22",
		"X-TC-Region":  "ap-guangzhou",
		"Content-Type": "application/json; charset=utf-8",
	} {
		if got.Header.Get(h) != v {
			t.Errorf("%s = %q, want %q", h, got.Header.Get(h), v)
		}
	}
	if !strings.HasPrefix(got.Header.Get("Authorization"), "TC3-HMAC-SHA256 Credential="+standin.TencentSecretID+"/") {
		t.Errorf("Authorization = %q", got.Header.Get("Authorization"))
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	var v captcha.Vendor = tencent.New(nil)
	if v.Name() != "tencent" {
		t.Fatal(v.Name())
	}
	if a := v.Verify(context.Background(), keys(), "", ticketRequest("t", "r")); a.Reason != captcha.ReasonConfigError {
		t.Fatalf("nil client: %+v", a)
	}
}

// Answers that are not a verdict: never a pass, never a degrade.
func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`<html>gateway login</html>`, `{}`, `{"Response":{"RequestId":"x"}}`, `[]`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		a := verify(t, context.Background(), tencent.New(srv.Client()), keys(), srv.URL, ticketRequest("t03x", "@x"))
		srv.Close()
		if a.Reason != captcha.ReasonConfigError || a.VendorCode != "bad_answer" {
			t.Errorf("%s: %+v", body, a)
		}
	}
}

// Tencent International documents EvilLevel as not available: a pass
// without one is a pass.
func TestPassWithoutEvilLevel(t *testing.T) {
	t.Parallel()
	var ans tencent.Answer
	one := int64(1)
	ans.Response.CaptchaCode = &one
	if a := tencent.Judge(ans, captcha.Request{}); a.Reason != captcha.ReasonOK || a.EvilLevel != nil {
		t.Fatalf("%+v", a)
	}
}

func TestErrorReason(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]captcha.Reason{
		"InternalError":                         captcha.ReasonVendorUnavailable,
		"InternalError.ServerError":             captcha.ReasonVendorUnavailable,
		"ServiceUnavailable":                    captcha.ReasonVendorUnavailable,
		"RequestLimitExceeded":                  captcha.ReasonVendorThrottled,
		"RequestLimitExceeded.UinLimitExceeded": captcha.ReasonVendorThrottled,
		"AuthFailure.SignatureFailure":          captcha.ReasonConfigError,
		"AuthFailure.SecretIdNotFound":          captcha.ReasonConfigError,
		"InvalidParameter":                      captcha.ReasonConfigError,
		"InvalidParameterValue":                 captcha.ReasonConfigError,
		"MissingParameter":                      captcha.ReasonConfigError,
		"UnauthorizedOperation.ErrAuth":         captcha.ReasonConfigError,
		"LimitExceeded":                         captcha.ReasonConfigError,
		"InternalErrorish":                      captcha.ReasonConfigError,
		"":                                      captcha.ReasonConfigError,
	} {
		if got := tencent.ErrorReason(code); got != want {
			t.Errorf("%q: %s, want %s", code, got, want)
		}
	}
}
