package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/captcha/tencent/tc3"
)

// These tests speak to the stand-in over raw HTTP, not through the vendor
// clients, so that its rules are checked on their own.

func within[T any](t *testing.T, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("did not return")
		panic("unreachable")
	}
}

type answer struct {
	status int
	body   map[string]any
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	return within(t, func() answer {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", req.URL, err)
			return answer{}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return answer{resp.StatusCode, m}
	})
}

// signedTencent is a DescribeCaptchaResult request signed with the
// default credentials; edit may change it after signing.
func signedTencent(t *testing.T, s *Server, body string, edit func(*http.Request)) *http.Request {
	t.Helper()
	u, _ := url.Parse(s.URL(Tencent))
	ts := time.Now().Unix()
	sig := tc3.Authorization(TencentSecretID, TencentSecretKey, "captcha", ts, tc3.Request{
		Method: "POST", URI: u.Path,
		Headers: map[string]string{"content-type": "application/json; charset=utf-8", "host": u.Host},
		Payload: []byte(body),
	})
	req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", sig)
	req.Header.Set("X-TC-Action", "DescribeCaptchaResult")
	req.Header.Set("X-TC-Version", "2019-07-22")
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	if edit != nil {
		edit(req)
	}
	return req
}

func tencentBody(ticket, randstr, appID, secret string) string {
	return `{"CaptchaType":9,"Ticket":"` + ticket + `","UserIp":"203.0.113.1","Randstr":"` + randstr +
		`","CaptchaAppId":` + appID + `,"AppSecretKey":"` + secret + `"}`
}

func tencentOutcome(a answer) string {
	r, _ := a.body["Response"].(map[string]any)
	if e, ok := r["Error"].(map[string]any); ok {
		return e["Code"].(string)
	}
	if c, ok := r["CaptchaCode"].(float64); ok {
		return strconv.Itoa(int(c))
	}
	return "?"
}

func TestTencentRules(t *testing.T) {
	t.Parallel()
	s := New(t)
	ticket, randstr := s.IssueTicket(TencentAppID)
	ok := tencentBody(ticket, randstr, TencentAppID, TencentAppSecret)
	cases := []struct {
		name string
		req  *http.Request
		want string
	}{
		{"unsigned", signedTencent(t, s, ok, func(r *http.Request) { r.Header.Del("Authorization") }), "AuthFailure.InvalidAuthorization"},
		{"body changed after signing", signedTencent(t, s, ok, func(r *http.Request) {
			b := tencentBody(ticket, randstr+"x", TencentAppID, TencentAppSecret)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
		}), "AuthFailure.SignatureFailure"},
		{"content type changed after signing", signedTencent(t, s, ok, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/json")
		}), "AuthFailure.SignatureFailure"},
		{"timestamp changed after signing", signedTencent(t, s, ok, func(r *http.Request) {
			r.Header.Set("X-TC-Timestamp", strconv.FormatInt(time.Now().Unix()-1, 10))
		}), "AuthFailure.SignatureFailure"},
		{"old timestamp", signedTencent(t, s, ok, func(r *http.Request) {
			r.Header.Set("X-TC-Timestamp", strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10))
		}), "AuthFailure.SignatureExpire"},
		{"wrong action", signedTencent(t, s, ok, func(r *http.Request) { r.Header.Set("X-TC-Action", "DescribeInstances") }), "InvalidAction"},
		{"wrong version", signedTencent(t, s, ok, func(r *http.Request) { r.Header.Set("X-TC-Version", "2017-03-12") }), "NoSuchVersion"},
		{"app id as a string", signedTencent(t, s,
			strings.Replace(ok, `"CaptchaAppId":`+TencentAppID, `"CaptchaAppId":"`+TencentAppID+`"`, 1), nil), "InvalidParameter"},
		{"CaptchaType not 9", signedTencent(t, s, strings.Replace(ok, `"CaptchaType":9`, `"CaptchaType":8`, 1), nil), "InvalidParameterValue"},
		{"no Ticket", signedTencent(t, s, `{"CaptchaType":9,"UserIp":"1.2.3.4","Randstr":"@a","CaptchaAppId":1,"AppSecretKey":"k"}`, nil), "MissingParameter"},
		{"wrong app secret", signedTencent(t, s, tencentBody(ticket, randstr, TencentAppID, "nope"), nil), "100"},
		{"pass", signedTencent(t, s, ok, nil), "1"},
		{"again", signedTencent(t, s, ok, nil), "9"},
	}
	for _, tc := range cases {
		if got := tencentOutcome(do(t, tc.req)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestTencentTicketLife(t *testing.T) {
	t.Parallel()
	s := New(t)
	verify := func(ticket, randstr, appID string) string {
		return tencentOutcome(do(t, signedTencent(t, s, tencentBody(ticket, randstr, appID, TencentAppSecret), nil)))
	}
	// A wrong randstr consumes the ticket: it is verified once.
	ticket, randstr := s.IssueTicket(TencentAppID)
	if got := verify(ticket, "@wrong", TencentAppID); got != "7" {
		t.Errorf("wrong randstr: %s", got)
	}
	if got := verify(ticket, randstr, TencentAppID); got != "9" {
		t.Errorf("after a wrong randstr: %s", got)
	}
	ticket, randstr = s.IssueTicket(TencentAppID)
	s.Advance(TencentTTL + time.Second)
	if got := verify(ticket, randstr, TencentAppID); got != "8" {
		t.Errorf("expired: %s", got)
	}
	s.AddTencentApp("2000000009", TencentAppSecret)
	ticket, randstr = s.IssueTicket("2000000009")
	if got := verify(ticket, randstr, TencentAppID); got != "16" {
		t.Errorf("another app's ticket: %s", got)
	}
	if got := verify("t03unknown", "@x", TencentAppID); got != "15" {
		t.Errorf("unknown: %s", got)
	}
	dr, drRand := DRTicket(TencentAppID, s.Now())
	if !strings.HasPrefix(dr, "terror_1001_"+TencentAppID+"_") {
		t.Errorf("DRTicket = %s", dr)
	}
	if got := verify(dr, drRand, TencentAppID); got != "21" {
		t.Errorf("DR ticket: %s", got)
	}
	if got := verify("trerror_1001_"+TencentAppID+"_1", "@x", TencentAppID); got != "21" {
		t.Errorf("trerror_ ticket: %s", got)
	}
	ticket, randstr = s.IssueRiskyTicket(TencentAppID, 100)
	a := do(t, signedTencent(t, s, tencentBody(ticket, randstr, TencentAppID, TencentAppSecret), nil))
	if r := a.body["Response"].(map[string]any); r["CaptchaCode"] != 1.0 || r["EvilLevel"] != 100.0 {
		t.Errorf("risky ticket: %v", r)
	}
	s.SetTencentCredentials("AKIDnew", "newkey")
	if got := verify(ticket, randstr, TencentAppID); got != "AuthFailure.SecretIdNotFound" {
		t.Errorf("old credentials: %s", got)
	}
}

func form(t *testing.T, s *Server, ep Endpoint, v url.Values) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL(ep), strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func jsonReq(t *testing.T, s *Server, ep Endpoint, body string) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL(ep), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func codes(a answer) string {
	if a.body["success"] == true {
		return "success"
	}
	var out []string
	cs, _ := a.body["error-codes"].([]any)
	for _, c := range cs {
		out = append(out, c.(string))
	}
	return strings.Join(out, ",")
}

func TestSiteverifyRules(t *testing.T) {
	t.Parallel()
	s := New(t)
	rc := s.Issue(Recaptcha, RecaptchaSiteKey, "", "h")
	hc := s.Issue(Hcaptcha, HcaptchaSiteKey, "", "h")
	ts := s.Issue(Turnstile, TurnstileSiteKey, "login", "h")
	get, _ := http.NewRequest(http.MethodGet, s.URL(Recaptcha)+"?secret="+RecaptchaSecret+"&response="+rc, nil)
	cases := []struct {
		name string
		req  *http.Request
		want string
	}{
		{"reCAPTCHA without a secret", form(t, s, Recaptcha, url.Values{"response": {rc}}), "missing-input-secret"},
		{"reCAPTCHA with JSON", jsonReq(t, s, Recaptcha, `{"secret":"`+RecaptchaSecret+`","response":"`+rc+`"}`), "missing-input-secret"},
		{"reCAPTCHA with GET", get, "bad-request"},
		{"reCAPTCHA without a response", form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}}), "missing-input-response"},
		{"reCAPTCHA, hCaptcha's token", form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {hc}}), "invalid-input-response"},
		{"reCAPTCHA pass", form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {rc}}), "success"},
		{"reCAPTCHA again", form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {rc}}), "timeout-or-duplicate"},
		{"hCaptcha sitekey mismatch", form(t, s, Hcaptcha, url.Values{"secret": {HcaptchaSecret}, "response": {hc}, "sitekey": {"other"}}), "sitekey-secret-mismatch"},
		{"hCaptcha pass", form(t, s, Hcaptcha, url.Values{"secret": {HcaptchaSecret}, "response": {hc}, "sitekey": {HcaptchaSiteKey}}), "success"},
		{"hCaptcha again", form(t, s, Hcaptcha, url.Values{"secret": {HcaptchaSecret}, "response": {hc}}), "already-seen-response"},
		{"Turnstile JSON, number field", jsonReq(t, s, Turnstile, `{"secret":1,"response":"x"}`), "bad-request"},
		{"Turnstile too long", form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {strings.Repeat("x", 2049)}}), "invalid-input-response"},
		{"Turnstile pass, JSON", jsonReq(t, s, Turnstile, `{"secret":"`+TurnstileSecret+`","response":"`+ts+`","idempotency_key":"k1"}`), "success"},
		{"Turnstile same key", form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {ts}, "idempotency_key": {"k1"}}), "success"},
		{"Turnstile other key", form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {ts}, "idempotency_key": {"k2"}}), "timeout-or-duplicate"},
		{"Turnstile no key", form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {ts}}), "timeout-or-duplicate"},
	}
	for _, tc := range cases {
		if got := codes(do(t, tc.req)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestSiteverifyAnswers(t *testing.T) {
	t.Parallel()
	s := New(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetNow(at)
	if !s.Now().Equal(at) {
		t.Fatalf("Now = %v", s.Now())
	}
	v3 := s.Issue(Recaptcha, RecaptchaSiteKey, "login", "shop.example")
	v2 := s.Issue(Recaptcha, RecaptchaSiteKey, "", "shop.example")
	ts := s.Issue(Turnstile, TurnstileSiteKey, "login", "shop.example")
	hs := s.IssueScored(Hcaptcha, HcaptchaSiteKey, "", "shop.example", 0.3)
	s.Advance(time.Minute)

	a := do(t, form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {v3}})).body
	if a["score"] != 0.9 || a["action"] != "login" || a["hostname"] != "shop.example" || a["challenge_ts"] != "2026-03-01T12:00:00Z" {
		t.Errorf("v3: %v", a)
	}
	a = do(t, form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {v2}})).body
	if _, has := a["score"]; has || a["success"] != true {
		t.Errorf("v2: %v", a)
	}
	a = do(t, form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {ts}})).body
	if a["action"] != "login" || a["challenge_ts"] != "2026-03-01T12:00:00.000Z" {
		t.Errorf("Turnstile: %v", a)
	}
	a = do(t, form(t, s, Hcaptcha, url.Values{"secret": {HcaptchaSecret}, "response": {hs}})).body
	if a["score"] != 0.3 || a["success"] != true {
		t.Errorf("hCaptcha: %v", a)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	for ep, ttl := range map[Endpoint]time.Duration{Recaptcha: RecaptchaTTL, Hcaptcha: HcaptchaTTL, Turnstile: TurnstileTTL} {
		s := New(t)
		secret := map[Endpoint]string{Recaptcha: RecaptchaSecret, Hcaptcha: HcaptchaSecret, Turnstile: TurnstileSecret}[ep]
		site := map[Endpoint]string{Recaptcha: RecaptchaSiteKey, Hcaptcha: HcaptchaSiteKey, Turnstile: TurnstileSiteKey}[ep]
		fresh, stale := s.Issue(ep, site, "", "h"), s.Issue(ep, site, "", "h")
		s.Advance(ttl)
		if got := codes(do(t, form(t, s, ep, url.Values{"secret": {secret}, "response": {fresh}}))); got != "success" {
			t.Errorf("%s at its lifetime: %s", ep, got)
		}
		s.Advance(time.Second)
		want := vendorRules[ep].expired
		if got := codes(do(t, form(t, s, ep, url.Values{"secret": {secret}, "response": {stale}}))); got != want {
			t.Errorf("%s past its lifetime: %s, want %s", ep, got, want)
		}
	}
}

// Single use holds under a race: of many verifications of one token at
// once, exactly one passes.
func TestSingleUseUnderRace(t *testing.T) {
	t.Parallel()
	s := New(t)
	tok := s.Issue(Turnstile, TurnstileSiteKey, "", "h")
	ticket, randstr := s.IssueTicket(TencentAppID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passes := map[string]int{}
	for i := 0; i < 16; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if codes(do(t, form(t, s, Turnstile, url.Values{"secret": {TurnstileSecret}, "response": {tok}}))) == "success" {
				mu.Lock()
				passes["turnstile"]++
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			if tencentOutcome(do(t, signedTencent(t, s, tencentBody(ticket, randstr, TencentAppID, TencentAppSecret), nil))) == "1" {
				mu.Lock()
				passes["tencent"]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passes["turnstile"] != 1 || passes["tencent"] != 1 {
		t.Fatalf("passes %v, want one each", passes)
	}
	if s.Requests(Turnstile) != 16 || s.Requests(Tencent) != 16 {
		t.Fatalf("requests %d, %d", s.Requests(Turnstile), s.Requests(Tencent))
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := New(t)
	req := func() *http.Request {
		return form(t, s, Recaptcha, url.Values{"secret": {RecaptchaSecret}, "response": {s.Issue(Recaptcha, RecaptchaSiteKey, "", "h")}})
	}
	f := HTTPStatus(http.StatusServiceUnavailable)
	f.Times = 2
	s.Fail(Recaptcha, f)
	for i, want := range []int{503, 503, 200} {
		if got := do(t, req()).status; got != want {
			t.Errorf("request %d: HTTP %d, want %d", i, got, want)
		}
	}
	s.Fail(Recaptcha, SiteverifyErrors("internal-error"))
	if got := codes(do(t, req())); got != "internal-error" {
		t.Errorf("error codes: %s", got)
	}
	s.Heal(Recaptcha)
	if got := codes(do(t, req())); got != "success" {
		t.Errorf("healed: %s", got)
	}
	s.Fail(Recaptcha, Delay(20*time.Millisecond))
	if got := codes(do(t, req())); got != "success" {
		t.Errorf("delayed: %s", got)
	}
	s.Heal(Recaptcha)
	for _, tc := range []struct {
		f    Fault
		want string
	}{
		{TencentError("InternalError"), "InternalError"},
		{TencentError("RequestLimitExceeded"), "RequestLimitExceeded"},
		{TencentCaptchaCode(26), "26"},
	} {
		s.Fail(Tencent, tc.f)
		ticket, randstr := s.IssueTicket(TencentAppID)
		if got := tencentOutcome(do(t, signedTencent(t, s, tencentBody(ticket, randstr, TencentAppID, TencentAppSecret), nil))); got != tc.want {
			t.Errorf("%+v: %s", tc.f, got)
		}
	}
	// Faults are per endpoint: the backup still answers.
	u := strings.Replace(s.URL(TencentBackup), s.srv.URL, "", 1)
	ticket, randstr := s.IssueTicket(TencentAppID)
	breq := signedTencentAt(t, s, u, tencentBody(ticket, randstr, TencentAppID, TencentAppSecret))
	if got := tencentOutcome(do(t, breq)); got != "1" {
		t.Errorf("backup: %s", got)
	}
	if n := s.Requests(Recaptcha); n != 6 {
		t.Errorf("%d reCAPTCHA requests", n)
	}
}

func signedTencentAt(t *testing.T, s *Server, path, body string) *http.Request {
	t.Helper()
	u, _ := url.Parse(s.srv.URL + path)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", tc3.Authorization(TencentSecretID, TencentSecretKey, "captcha", ts, tc3.Request{
		Method: "POST", URI: u.Path,
		Headers: map[string]string{"content-type": "application/json; charset=utf-8", "host": u.Host},
		Payload: []byte(body),
	}))
	req.Header.Set("X-TC-Action", "DescribeCaptchaResult")
	req.Header.Set("X-TC-Version", "2019-07-22")
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	return req
}

// A hanging request ends when its caller gives up, and at the latest when
// the stand-in closes.
func TestHangEnds(t *testing.T) {
	t.Parallel()
	s := Start()
	s.Fail(Hcaptcha, Hang())
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL(Hcaptcha), "application/x-www-form-urlencoded", strings.NewReader("secret=x"))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitRequests(ctx, Hcaptcha, 1); err != nil {
		t.Fatal(err)
	}
	within(t, func() bool { s.Close(); return true })
	within(t, func() error { return <-done })
	if _, ok := s.Last(Hcaptcha); ok {
		t.Error("a request that hung before verifying was recorded")
	}
}

func TestWaitRequestsEndsWithItsContext(t *testing.T) {
	t.Parallel()
	s := New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitRequests(ctx, Turnstile, 1); err == nil {
		t.Fatal("no error")
	}
	if err := s.WaitRequests(ctx, Turnstile, 0); err != nil {
		t.Fatal(err)
	}
}
