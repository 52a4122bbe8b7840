// Package recaptcha verifies Google reCAPTCHA v2 and v3 tokens with the
// siteverify API (developers.google.com/recaptcha/docs/verify): a form POST
// of secret, response and remoteip to
// https://www.google.com/recaptcha/api/siteverify, answered with success,
// challenge_ts, hostname and error-codes, and for v3 (docs/v3) score and
// action, which the site must check itself.
//
// A token is valid for two minutes and can be verified once. Google answers
// both a token verified twice and one that is too old with the one code
// timeout-or-duplicate ("The response is no longer valid: either is too old
// or has been used previously"), so this client cannot tell them apart and
// reports duplicate for both.
package recaptcha

import (
	"context"
	"fmt"
	"strconv"

	"carrier/internal/captcha"
	"carrier/internal/captcha/siteverify"
)

// Endpoint is Google's siteverify URL.
const Endpoint = "https://www.google.com/recaptcha/api/siteverify"

// Codes are the error codes of the siteverify "Error code reference".
var Codes = siteverify.Codes{
	"missing-input-secret":   captcha.ReasonConfigError, // the secret parameter is missing
	"invalid-input-secret":   captcha.ReasonConfigError, // the secret parameter is invalid or malformed
	"missing-input-response": captcha.ReasonInvalidToken,
	"invalid-input-response": captcha.ReasonInvalidToken,
	"bad-request":            captcha.ReasonConfigError, // the request is invalid or malformed
	"timeout-or-duplicate":   captcha.ReasonDuplicate,   // too old or used before: one code for both
}

// Client verifies reCAPTCHA tokens.
type Client struct {
	HTTP captcha.HTTPClient
}

var _ captcha.Vendor = (*Client)(nil)

// New returns a client that sends with http.
func New(http captcha.HTTPClient) *Client { return &Client{HTTP: http} }

// Name is "recaptcha".
func (c *Client) Name() string { return "recaptcha" }

// DefaultEndpoints is the one siteverify URL; Google documents no backup.
func (c *Client) DefaultEndpoints() []string { return []string{Endpoint} }

// Verify asks Google about req.Token. On top of the answer it checks, as
// the v3 guide asks the site to, the hostname (ExpectedHostname), the
// action (ExpectedAction) and the score (MinScore; a token without a score,
// a v2 token, does not pass a site that wants one).
func (c *Client) Verify(ctx context.Context, keys captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	if a, ok := siteverify.Precheck(keys, req); !ok {
		return a
	}
	if endpoint == "" {
		endpoint = Endpoint
	}
	r, failed, ok := siteverify.PostForm(ctx, c.HTTP, endpoint, siteverify.Form(keys, req))
	if !ok {
		return failed
	}
	a := siteverify.Judge(r, Codes, req)
	if a.Reason != captcha.ReasonOK {
		return a
	}
	if req.ExpectedAction != "" && r.Action != req.ExpectedAction {
		return siteverify.Reject(a, captcha.ReasonInvalidToken, "action_mismatch",
			fmt.Sprintf("token made for action %q, site expects %q", r.Action, req.ExpectedAction))
	}
	if req.MinScore > 0 {
		if r.Score == nil {
			return siteverify.Reject(a, captcha.ReasonInvalidToken, "score_missing", "the token has no score (not a v3 token)")
		}
		if *r.Score < req.MinScore {
			return siteverify.Reject(a, captcha.ReasonRiskBlock, "score_below_minimum",
				"score "+strconv.FormatFloat(*r.Score, 'f', -1, 64)+" is below the site's "+strconv.FormatFloat(req.MinScore, 'f', -1, 64))
		}
	}
	return a
}
