package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/captcha"
	"carrier/internal/captcha/standin"
	"carrier/internal/store/storetest"
)

// captchaRig is a Carrier, a project and the vendors' stand-in.
type captchaRig struct {
	t   *testing.T
	c   *apptest.Carrier
	key string
	si  *standin.Server
}

func newCaptchaRig(t *testing.T, e storetest.Engine) *captchaRig {
	c := apptest.Start(t, e, apptest.Options{})
	_, key := c.NewProject("captcha")
	return &captchaRig{t: t, c: c, key: key, si: standin.New(t)}
}

// site creates a site of vendor on the stand-in with settings (policy, …).
func (r *captchaRig) site(name, vendor string, settings map[string]any) string {
	r.t.Helper()
	keys := map[string]any{}
	var endpoints []string
	switch vendor {
	case "tencent":
		keys = map[string]any{"app_id": standin.TencentAppID, "app_secret": standin.TencentAppSecret,
			"secret_id": standin.TencentSecretID, "secret_key": standin.TencentSecretKey}
		endpoints = []string{r.si.URL(standin.Tencent), r.si.URL(standin.TencentBackup)}
	case "recaptcha":
		keys = map[string]any{"site_key": standin.RecaptchaSiteKey, "secret": standin.RecaptchaSecret}
		endpoints = []string{r.si.URL(standin.Recaptcha)}
	case "hcaptcha":
		keys = map[string]any{"site_key": standin.HcaptchaSiteKey, "secret": standin.HcaptchaSecret}
		endpoints = []string{r.si.URL(standin.Hcaptcha)}
	case "turnstile":
		keys = map[string]any{"site_key": standin.TurnstileSiteKey, "secret": standin.TurnstileSecret}
		endpoints = []string{r.si.URL(standin.Turnstile)}
	}
	if settings == nil {
		settings = map[string]any{}
	}
	settings["endpoints"] = endpoints
	resp := r.c.Do("POST", "/v1/captcha/sites", r.key, map[string]any{"name": name, "vendor": vendor, "keys": keys, "settings": settings})
	if resp.Status != http.StatusCreated {
		r.t.Fatalf("create site: %d %s", resp.Status, resp.Body)
	}
	return resp.Data()["id"].(string)
}

// verify posts a verification and returns the verdict.
func (r *captchaRig) verify(site, token, randstr, ip string) map[string]any {
	r.t.Helper()
	resp := r.c.Do("POST", "/v1/captcha/verify", r.key, map[string]any{"site": site, "token": token, "randstr": randstr, "remote_ip": ip})
	if resp.Status != http.StatusOK {
		r.t.Fatalf("verify: %d %s", resp.Status, resp.Body)
	}
	return resp.Data()
}

func verdict(v map[string]any) string {
	s := fmt.Sprintf("%v/%v", v["decision"], v["reason"])
	if d, ok := v["degraded"].(map[string]any); ok {
		s += fmt.Sprintf(" (degraded: %v)", d["cause"])
	}
	return s
}

// token issues a valid token of vendor's stand-in site.
func (r *captchaRig) token(vendor string) (token, randstr string) {
	switch vendor {
	case "tencent":
		return r.si.IssueTicket(standin.TencentAppID)
	case "recaptcha":
		return r.si.Issue(standin.Recaptcha, standin.RecaptchaSiteKey, "", ""), ""
	case "hcaptcha":
		return r.si.Issue(standin.Hcaptcha, standin.HcaptchaSiteKey, "", ""), ""
	}
	return r.si.Issue(standin.Turnstile, standin.TurnstileSiteKey, "", ""), ""
}

func endpointOf(vendor string) standin.Endpoint {
	return map[string]standin.Endpoint{"tencent": standin.Tencent, "recaptcha": standin.Recaptcha, "hcaptcha": standin.Hcaptcha, "turnstile": standin.Turnstile}[vendor]
}

var vendors = []string{"tencent", "recaptcha", "hcaptcha", "turnstile"}

// TestCaptchaVendors: per vendor, through the API against its stand-in: a
// good token allows; the same token again from the same address gets the
// same verdict without a second vendor call; from another address the
// vendor answers duplicate; a made-up token is invalid; every one of them
// a deny under fail_open, which degrades only on the vendor's own failure.
func TestCaptchaVendors(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newCaptchaRig(t, e)
			for _, vendor := range vendors {
				site := r.site(vendor, vendor, map[string]any{"policy": "fail_open"})
				ep := endpointOf(vendor)
				tok, rnd := r.token(vendor)
				if got := verdict(r.verify(site, tok, rnd, "203.0.113.7")); got != "allow/ok" {
					t.Errorf("%s good token: %s", vendor, got)
				}
				calls := r.si.Requests(ep)
				again := r.verify(site, tok, rnd, "203.0.113.7")
				if verdict(again) != "allow/ok" || again["cached"] != true || r.si.Requests(ep) != calls {
					t.Errorf("%s retry: %v, %d vendor calls after %d; want the cached allow", vendor, again, r.si.Requests(ep), calls)
				}
				if got := verdict(r.verify(site, tok, rnd, "198.51.100.9")); got != "deny/duplicate" {
					t.Errorf("%s replay from another address: %s, want deny/duplicate", vendor, got)
				}
				if got := verdict(r.verify(site, "made-up-token", "@x", "203.0.113.7")); !strings.HasPrefix(got, "deny/") || strings.Contains(got, "degraded") {
					t.Errorf("%s made-up token: %s, want a plain deny", vendor, got)
				}
				// A rate limit is not the vendor's own failure: no degraded allow.
				r.si.Fail(ep, standin.HTTPStatus(http.StatusTooManyRequests))
				tok, rnd = r.token(vendor)
				if got := verdict(r.verify(site, tok, rnd, "203.0.113.8")); got != "deny/vendor_throttled" {
					t.Errorf("%s on 429: %s, want deny/vendor_throttled", vendor, got)
				}
				r.si.Heal(ep)
			}
			// A wrong secret is a configuration error, never degraded.
			resp := r.c.Do("POST", "/v1/captcha/sites", r.key, map[string]any{"name": "wrong secret", "vendor": "turnstile",
				"keys":     map[string]any{"site_key": standin.TurnstileSiteKey, "secret": "0x4AAAAAAAwrong"},
				"settings": map[string]any{"policy": "fail_open", "endpoints": []string{r.si.URL(standin.Turnstile)}}})
			if resp.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", resp.Status, resp.Body)
			}
			tok, _ := r.token("turnstile")
			if got := verdict(r.verify("wrong secret", tok, "", "203.0.113.7")); got != "deny/config_error" {
				t.Errorf("wrong secret: %s, want deny/config_error", got)
			}
			// Secrets are never shown; another project sees nothing.
			got := r.c.Do("GET", "/v1/captcha/sites", r.key, nil)
			if strings.Contains(string(got.Body), standin.TurnstileSecret) || strings.Contains(string(got.Body), standin.TencentSecretKey) {
				t.Errorf("a secret is shown: %s", got.Body)
			}
			_, other := r.c.NewProject("other")
			if resp := r.c.Do("POST", "/v1/captcha/verify", other, map[string]any{"site": "turnstile", "token": "x", "remote_ip": "203.0.113.7"}); resp.Status != http.StatusNotFound || resp.ErrorField() != "site" {
				t.Errorf("another project verifies with the site: %d %s", resp.Status, resp.Body)
			}
			if resp := r.c.Do("POST", "/v1/captcha/verify", r.key, map[string]any{"site": "turnstile", "token": "x", "remote_ip": "not an ip"}); resp.Status != http.StatusBadRequest || resp.ErrorField() != "remote_ip" {
				t.Errorf("bad remote_ip: %d %s", resp.Status, resp.Body)
			}
		})
	}
}

// TestCaptchaPoliciesOnVendorFailure: Tencent's own failures (InternalError,
// CaptchaCode 26, HTTP 503, a hang past the deadline) under each policy.
func TestCaptchaPoliciesOnVendorFailure(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newCaptchaRig(t, e)
			want := map[string]string{"fail_closed": "deny", "fail_open": "degraded_allow", "fail_open_budgeted": "degraded_allow", "step_up": "challenge"}
			faults := map[string]standin.Fault{"InternalError": standin.TencentError("InternalError"), "26": standin.TencentCaptchaCode(26),
				"http_503": standin.HTTPStatus(503), "timeout": standin.Hang()}
			for policy, decision := range want {
				site := r.site(policy, "tencent", map[string]any{"policy": policy, "deadline_ms": 300})
				for code, f := range faults {
					r.si.Fail(standin.Tencent, f)
					r.si.Fail(standin.TencentBackup, f)
					tok, rnd := r.token("tencent")
					v := r.verify(site, tok, rnd, fmt.Sprintf("203.0.113.%d", len(code)))
					r.si.Heal(standin.Tencent)
					r.si.Heal(standin.TencentBackup)
					if v["decision"] != decision || v["reason"] != "vendor_unavailable" {
						t.Errorf("%s on %s: %s, want %s/vendor_unavailable", policy, code, verdict(v), decision)
					}
					if lat, _ := v["latency_ms"].(float64); lat > 300+50 {
						t.Errorf("%s on %s: decided after %v ms, past the 300 ms deadline + 50 ms", policy, code, lat)
					}
				}
			}
			// fail_open_budgeted: at most degraded_per_ip degraded allows per address a minute.
			site := r.site("budgeted", "tencent", map[string]any{"policy": "fail_open_budgeted", "degraded_per_ip": 2, "deadline_ms": 200})
			r.si.Fail(standin.Tencent, standin.TencentCaptchaCode(26))
			r.si.Fail(standin.TencentBackup, standin.TencentCaptchaCode(26))
			var got []string
			for range 4 {
				tok, rnd := r.token("tencent")
				got = append(got, fmt.Sprint(r.verify(site, tok, rnd, "192.0.2.1")["decision"]))
			}
			if strings.Join(got, ",") != "degraded_allow,degraded_allow,deny,deny" {
				t.Errorf("budgeted from one address: %v", got)
			}
		})
	}
}

// TestCaptchaDeadlineHolds: with the vendor hanging, the answer comes at
// the site's deadline (and a retry of a hung request is not made: the
// ticket may have been consumed).
func TestCaptchaDeadlineHolds(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newCaptchaRig(t, e)
			site := r.site("hang", "tencent", map[string]any{"policy": "step_up", "deadline_ms": 500})
			r.si.Fail(standin.Tencent, standin.Hang())
			r.si.Fail(standin.TencentBackup, standin.Hang())
			tok, rnd := r.token("tencent")
			start := time.Now()
			v := r.verify(site, tok, rnd, "203.0.113.7")
			took := time.Since(start)
			lat, _ := v["latency_ms"].(float64)
			t.Logf("hanging vendor: %s after %v (server: %v ms)", verdict(v), took, lat)
			if verdict(v) != "challenge/vendor_unavailable (degraded: timeout)" || lat < 500 || lat > 550 {
				t.Errorf("got %s in %v ms, want challenge at the 500 ms deadline (+50 ms)", verdict(v), lat)
			}
			if n := r.si.Requests(standin.Tencent) + r.si.Requests(standin.TencentBackup); n != 1 {
				t.Errorf("%d vendor requests, want 1 (no retry of a request that may have reached the vendor)", n)
			}
		})
	}
}

// TestCaptchaCircuitOpensAndCloses: five failures in a row open the site's
// circuit (captcha.vendor.degraded is published), calls then decide
// without the vendor, and after the open time five good probes close it
// (captcha.vendor.recovered).
func TestCaptchaCircuitOpensAndCloses(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newCaptchaRig(t, e)
			cfg := captcha.DefaultBreaker
			cfg.OpenFor = 500 * time.Millisecond
			r.c.App.Captcha.Breaker = cfg
			hook := apptest.NewEndpoint(t, nil)
			r.c.CreateWebhook(r.key, map[string]any{"webhook_url": hook.URL, "event_types": []string{"captcha.vendor.*"}})
			site := r.site("circuit", "tencent", map[string]any{"policy": "fail_closed"})
			r.si.Fail(standin.Tencent, standin.TencentError("InternalError"))
			r.si.Fail(standin.TencentBackup, standin.TencentError("InternalError"))
			for range 5 {
				tok, rnd := r.token("tencent")
				r.verify(site, tok, rnd, "203.0.113.7")
			}
			before := r.si.Requests(standin.Tencent) + r.si.Requests(standin.TencentBackup)
			tok, rnd := r.token("tencent")
			v := r.verify(site, tok, rnd, "203.0.113.7")
			if v["vendor_code"] != "circuit_open" || r.si.Requests(standin.Tencent)+r.si.Requests(standin.TencentBackup) != before {
				t.Errorf("after 5 failures: %v with %d more vendor calls, want circuit_open without calling", v, r.si.Requests(standin.Tencent)+r.si.Requests(standin.TencentBackup)-before)
			}
			reqs := hook.WaitRequests(t, 1, 20*time.Second)
			var ev struct{ Type string }
			json.Unmarshal(reqs[0].Body, &ev)
			if ev.Type != "captcha.vendor.degraded" {
				t.Errorf("event %s, want captcha.vendor.degraded", reqs[0].Body)
			}
			r.si.Heal(standin.Tencent)
			r.si.Heal(standin.TencentBackup)
			time.Sleep(600 * time.Millisecond)
			for i := range 5 {
				tok, rnd := r.token("tencent")
				if got := verdict(r.verify(site, tok, rnd, "203.0.113.7")); got != "allow/ok" {
					t.Errorf("probe %d: %s", i, got)
				}
			}
			reqs = hook.WaitRequests(t, 2, 20*time.Second)
			json.Unmarshal(reqs[1].Body, &ev)
			if ev.Type != "captcha.vendor.recovered" {
				t.Errorf("event %s, want captcha.vendor.recovered", reqs[1].Body)
			}
		})
	}
}

// TestCaptchaDRTickets: a disaster-recovery ticket passes as degraded_allow
// only when it checks out: fresh, the site's app id, unused, within the
// address's budget; while the vendor is up it is still verified (answered
// 21); an address minting many raises captcha.dr.suspicious.
func TestCaptchaDRTickets(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newCaptchaRig(t, e)
			hook := apptest.NewEndpoint(t, nil)
			r.c.CreateWebhook(r.key, map[string]any{"webhook_url": hook.URL, "event_types": []string{"captcha.dr.suspicious"}})
			site := r.site("dr", "tencent", map[string]any{"policy": "fail_closed", "accept_dr_tickets": true, "dr_per_ip": 3})
			now := time.Now()
			tk, rnd := standin.DRTicket(standin.TencentAppID, now)
			calls := r.si.Requests(standin.Tencent)
			if got := verdict(r.verify(site, tk, rnd, "203.0.113.1")); got != "degraded_allow/dr_ticket (degraded: dr_ticket)" {
				t.Errorf("fresh DR ticket: %s", got)
			}
			if r.si.Requests(standin.Tencent) != calls+1 {
				t.Errorf("the DR ticket was not verified with the vendor while it is up")
			}
			if got := verdict(r.verify(site, tk, rnd, "203.0.113.2")); got != "deny/duplicate" {
				t.Errorf("replayed DR ticket: %s, want deny/duplicate", got)
			}
			for name, ticket := range map[string]string{
				"forged app id": "terror_1001_2999999999_" + fmt.Sprint(now.Unix()),
				"stale":         "terror_1001_" + standin.TencentAppID + "_" + fmt.Sprint(now.Add(-6*time.Minute).Unix()),
				"future":        "terror_1001_" + standin.TencentAppID + "_" + fmt.Sprint(now.Add(10*time.Minute).Unix()),
			} {
				if got := verdict(r.verify(site, ticket, "@abc", "203.0.113.3")); got != "deny/dr_ticket" {
					t.Errorf("%s: %s, want deny/dr_ticket", name, got)
				}
			}
			// One address minting tickets: three pass, then deny and an event.
			var got []string
			for i := range 5 {
				tk, rnd := standin.DRTicket(standin.TencentAppID, now.Add(time.Duration(i)*time.Second))
				got = append(got, fmt.Sprint(r.verify(site, tk, rnd, "198.51.100.66")["decision"]))
			}
			if strings.Join(got, ",") != "degraded_allow,degraded_allow,degraded_allow,deny,deny" {
				t.Errorf("one address minting DR tickets: %v", got)
			}
			reqs := hook.WaitRequests(t, 1, 20*time.Second)
			if !strings.Contains(string(reqs[0].Body), "198.51.100.66") {
				t.Errorf("suspicious event: %s", reqs[0].Body)
			}
			// A site that does not accept DR tickets denies them.
			plain := r.site("plain", "tencent", nil)
			tk, rnd = standin.DRTicket(standin.TencentAppID, now)
			if got := verdict(r.verify(plain, tk, rnd, "203.0.113.9")); got != "deny/dr_ticket" {
				t.Errorf("a site without accept_dr_tickets: %s", got)
			}
			// While the vendor is down, a DR ticket passes on its own checks.
			r.si.Fail(standin.Tencent, standin.Hang())
			r.si.Fail(standin.TencentBackup, standin.Hang())
			tk, rnd = standin.DRTicket(standin.TencentAppID, now)
			if got := verdict(r.verify(site, tk, rnd, "203.0.113.10")); got != "degraded_allow/dr_ticket (degraded: dr_ticket)" {
				t.Errorf("DR ticket while the vendor hangs: %s", got)
			}
		})
	}
}
