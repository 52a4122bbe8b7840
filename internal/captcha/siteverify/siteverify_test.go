package siteverify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"carrier/internal/captcha"
)

var codes = Codes{
	"invalid-input-secret":   captcha.ReasonConfigError,
	"invalid-input-response": captcha.ReasonInvalidToken,
	"timeout-or-duplicate":   captcha.ReasonDuplicate,
	"expired":                captcha.ReasonExpired,
	"internal-error":         captcha.ReasonVendorUnavailable,
	"says-ok":                captcha.ReasonOK,
}

func TestJudge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		r      Response
		req    captcha.Request
		reason captcha.Reason
		code   string
	}{
		{"pass", Response{Success: true, Hostname: "example.com"}, captcha.Request{}, captcha.ReasonOK, ""},
		{"hostname matches, any case", Response{Success: true, Hostname: "Example.COM"},
			captcha.Request{ExpectedHostname: "example.com"}, captcha.ReasonOK, ""},
		{"hostname differs", Response{Success: true, Hostname: "evil.example"},
			captcha.Request{ExpectedHostname: "example.com"}, captcha.ReasonInvalidToken, "hostname_mismatch"},
		{"hostname missing", Response{Success: true},
			captcha.Request{ExpectedHostname: "example.com"}, captcha.ReasonInvalidToken, "hostname_mismatch"},
		{"one code", Response{ErrorCodes: []string{"invalid-input-response"}}, captcha.Request{},
			captcha.ReasonInvalidToken, "invalid-input-response"},
		{"vendor failure alone degrades", Response{ErrorCodes: []string{"internal-error"}}, captcha.Request{},
			captcha.ReasonVendorUnavailable, "internal-error"},
		{"vendor failure with a token error does not", Response{ErrorCodes: []string{"internal-error", "timeout-or-duplicate"}},
			captcha.Request{}, captcha.ReasonDuplicate, "internal-error,timeout-or-duplicate"},
		{"config error wins", Response{ErrorCodes: []string{"invalid-input-response", "invalid-input-secret"}},
			captcha.Request{}, captcha.ReasonConfigError, "invalid-input-response,invalid-input-secret"},
		{"unknown code is a config error", Response{ErrorCodes: []string{"brand-new-code"}}, captcha.Request{},
			captcha.ReasonConfigError, "brand-new-code"},
		{"unknown code beats a vendor failure", Response{ErrorCodes: []string{"internal-error", "brand-new-code"}},
			captcha.Request{}, captcha.ReasonConfigError, "internal-error,brand-new-code"},
		{"failure without codes", Response{}, captcha.Request{}, captcha.ReasonInvalidToken, ""},
		{"a failure code is never a pass", Response{ErrorCodes: []string{"says-ok"}}, captcha.Request{},
			captcha.ReasonConfigError, "says-ok"},
		{"failure never passes even with a hostname", Response{Hostname: "example.com", ErrorCodes: []string{"expired"}},
			captcha.Request{ExpectedHostname: "example.com"}, captcha.ReasonExpired, "expired"},
	}
	for _, tc := range cases {
		a := Judge(tc.r, codes, tc.req)
		if a.Reason != tc.reason || a.VendorCode != tc.code {
			t.Errorf("%s: %s %q, want %s %q", tc.name, a.Reason, a.VendorCode, tc.reason, tc.code)
		}
	}
}

func TestPost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		ok     bool
		code   string // VendorCode of the config_error when !ok
	}{
		{200, `{"success":true,"hostname":"h","score":0.5,"action":"a"}`, true, ""},
		{200, `{"success":false,"error-codes":["invalid-input-response"]}`, true, ""},
		{400, `{"success":false,"error-codes":["bad-request"]}`, true, ""},
		{400, `{"error":"nope"}`, false, "http_400"},
		{403, `<html>forbidden</html>`, false, "http_403"},
		{200, `<html>a login page</html>`, false, "bad_answer"},
		{302, ``, false, "http_302"},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil || r.PostForm.Get("secret") != "s" || r.PostForm.Get("response") != "tok" {
				t.Errorf("form: %v %v", err, r.PostForm)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		r, failed, ok := PostForm(context.Background(), srv.Client(), srv.URL, url.Values{"secret": {"s"}, "response": {"tok"}})
		srv.Close()
		if ok != tc.ok {
			t.Errorf("%d %s: ok = %v (%+v)", tc.status, tc.body, ok, failed)
			continue
		}
		if !ok && (failed.Reason != captcha.ReasonConfigError || failed.VendorCode != tc.code) {
			t.Errorf("%d %s: %+v, want config_error %s", tc.status, tc.body, failed, tc.code)
		}
		if ok && tc.status == 200 && r.Success && (r.Hostname != "h" || r.Action != "a" || r.Score == nil || *r.Score != 0.5) {
			t.Errorf("decoded %+v", r)
		}
	}
}

func TestPostJSON(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	if _, failed, ok := PostJSON(context.Background(), srv.Client(), srv.URL, map[string]string{"secret": "s"}); !ok {
		t.Fatal(failed)
	}
	if _, failed, ok := PostJSON(context.Background(), srv.Client(), srv.URL, func() {}); ok || failed.Reason != captcha.ReasonConfigError {
		t.Fatalf("unencodable body: %+v", failed)
	}
}

func TestPrecheckAndForm(t *testing.T) {
	t.Parallel()
	if a, ok := Precheck(captcha.Keys{}, captcha.Request{Token: "t"}); ok || a.Reason != captcha.ReasonConfigError {
		t.Errorf("no secret: %+v", a)
	}
	if a, ok := Precheck(captcha.Keys{Secret: "s"}, captcha.Request{}); ok || a.Reason != captcha.ReasonInvalidToken {
		t.Errorf("no token: %+v", a)
	}
	if _, ok := Precheck(captcha.Keys{Secret: "s"}, captcha.Request{Token: "t"}); !ok {
		t.Error("refused a complete request")
	}
	f := Form(captcha.Keys{Secret: "s"}, captcha.Request{Token: "t"})
	if f.Encode() != "response=t&secret=s" {
		t.Errorf("form without an IP: %s", f.Encode())
	}
	f = Form(captcha.Keys{Secret: "s"}, captcha.Request{Token: "t", RemoteIP: "203.0.113.7"})
	if f.Get("remoteip") != "203.0.113.7" {
		t.Errorf("form: %s", f.Encode())
	}
}
