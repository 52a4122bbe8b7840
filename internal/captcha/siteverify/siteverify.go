// Package siteverify is the protocol reCAPTCHA, hCaptcha and Cloudflare
// Turnstile share: the site's backend POSTs secret, response and remoteip
// to the vendor's siteverify URL and reads back
//
//	{"success": bool, "challenge_ts": "...", "hostname": "...",
//	 "error-codes": [...], "score": n, "action": "..."}
//
// (reCAPTCHA: developers.google.com/recaptcha/docs/verify and docs/v3;
// hCaptcha: docs.hcaptcha.com, "Verify the User Response Server Side";
// Turnstile: developers.cloudflare.com/turnstile/get-started/server-side-validation,
// which says its endpoint "behaves similar to reCAPTCHA's or hCaptcha's").
// Each vendor package supplies its own table of error codes; Judge turns
// the answer into a captcha.Answer the same way for all three.
package siteverify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"carrier/internal/captcha"
	"carrier/internal/captcha/vendorhttp"
)

// Response is a siteverify answer. Fields a vendor does not send stay zero.
type Response struct {
	Success     bool     `json:"success"`
	ChallengeTS string   `json:"challenge_ts,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	ErrorCodes  []string `json:"error-codes,omitempty"`
	Score       *float64 `json:"score,omitempty"`  // reCAPTCHA v3, hCaptcha Enterprise
	Action      string   `json:"action,omitempty"` // reCAPTCHA v3, Turnstile
	CData       string   `json:"cdata,omitempty"`  // Turnstile
}

// Codes maps a vendor's documented error codes to reasons. A code missing
// from the table is a config_error: an answer nobody documented is never
// read as a pass, nor as the vendor's own failure (which would degrade).
type Codes map[string]captcha.Reason

// PostForm sends form (application/x-www-form-urlencoded) to endpoint and
// decodes the answer.
func PostForm(ctx context.Context, client captcha.HTTPClient, endpoint string, form url.Values) (Response, captcha.Answer, bool) {
	return post(ctx, client, vendorhttp.Request{
		URL:         endpoint,
		ContentType: "application/x-www-form-urlencoded",
		Body:        []byte(form.Encode()),
	})
}

// PostJSON sends body as application/json to endpoint and decodes the
// answer.
func PostJSON(ctx context.Context, client captcha.HTTPClient, endpoint string, body any) (Response, captcha.Answer, bool) {
	b, err := json.Marshal(body)
	if err != nil {
		return Response{}, vendorhttp.Failure(captcha.ReasonConfigError, "bad_request", err.Error()), false
	}
	return post(ctx, client, vendorhttp.Request{URL: endpoint, ContentType: "application/json", Body: b})
}

func post(ctx context.Context, client captcha.HTTPClient, req vendorhttp.Request) (Response, captcha.Answer, bool) {
	resp, failed, ok := vendorhttp.Send(ctx, client, req)
	if !ok {
		return Response{}, failed, false
	}
	var r Response
	if err := json.Unmarshal(resp.Body, &r); err != nil || (resp.Status/100 != 2 && len(r.ErrorCodes) == 0) {
		// A 4xx may still carry error codes (bad-request); one that does not,
		// or a body that is not a siteverify answer, means the endpoint is
		// not what the site's settings think it is.
		code := "http_" + strconv.Itoa(resp.Status)
		if resp.Status/100 == 2 {
			code = "bad_answer"
		}
		return Response{}, vendorhttp.Failure(captcha.ReasonConfigError, code, vendorhttp.Snippet(resp.Body)), false
	}
	return r, captcha.Answer{}, true
}

// Judge turns a decoded answer into an Answer: a failed verification by
// the vendor's codes, a passed one by the hostname the site expects
// (req.ExpectedHostname). Vendor-specific checks (score, action) are the
// caller's, on the Answer Judge returns.
func Judge(r Response, codes Codes, req captcha.Request) captcha.Answer {
	a := captcha.Answer{
		Reason:   captcha.ReasonOK,
		Score:    r.Score,
		Action:   r.Action,
		Hostname: r.Hostname,
	}
	if !r.Success {
		a.Reason, a.VendorCode = reasonOf(r.ErrorCodes, codes)
		return a
	}
	if req.ExpectedHostname != "" && !strings.EqualFold(r.Hostname, req.ExpectedHostname) {
		return Reject(a, captcha.ReasonInvalidToken, "hostname_mismatch",
			fmt.Sprintf("token solved on %q, site expects %q", r.Hostname, req.ExpectedHostname))
	}
	return a
}

// Reject changes a passed answer into a rejection of the token.
func Reject(a captcha.Answer, reason captcha.Reason, code, message string) captcha.Answer {
	a.Reason, a.VendorCode, a.Message = reason, code, message
	return a
}

// severity orders reasons when a vendor answers several codes at once: the
// one that blocks most wins, so a vendor failure degrades only when it is
// the only thing wrong.
var severity = map[captcha.Reason]int{
	captcha.ReasonConfigError:       0,
	captcha.ReasonVendorThrottled:   1,
	captcha.ReasonInvalidToken:      2,
	captcha.ReasonDuplicate:         3,
	captcha.ReasonExpired:           4,
	captcha.ReasonRiskBlock:         5,
	captcha.ReasonVendorUnavailable: 6,
}

// reasonOf is the reason for a failed verification with these codes, and
// the codes joined by "," as the vendor code. A failure without codes is
// the vendor refusing the token without saying why: invalid_token.
func reasonOf(errorCodes []string, codes Codes) (captcha.Reason, string) {
	if len(errorCodes) == 0 {
		return captcha.ReasonInvalidToken, ""
	}
	worst := captcha.ReasonVendorUnavailable
	for _, c := range errorCodes {
		r, ok := codes[c]
		if _, ranked := severity[r]; !ok || !ranked {
			r = captcha.ReasonConfigError // undocumented, or a table that calls a failure a pass
		}
		if severity[r] < severity[worst] {
			worst = r
		}
	}
	return worst, strings.Join(errorCodes, ",")
}

// Form is the request every siteverify vendor takes: secret, response and,
// when known, remoteip.
func Form(keys captcha.Keys, req captcha.Request) url.Values {
	f := url.Values{"secret": {keys.Secret}, "response": {req.Token}}
	if req.RemoteIP != "" {
		f.Set("remoteip", req.RemoteIP)
	}
	return f
}

// Precheck answers what needs no vendor: an empty token is no token, and a
// site without a secret is misconfigured. ok is false when there is
// nothing to send.
func Precheck(keys captcha.Keys, req captcha.Request) (captcha.Answer, bool) {
	if keys.Secret == "" {
		return vendorhttp.Failure(captcha.ReasonConfigError, "no_secret", "the site has no secret key"), false
	}
	if req.Token == "" {
		return vendorhttp.Failure(captcha.ReasonInvalidToken, "no_token", "no token"), false
	}
	return captcha.Answer{}, true
}
