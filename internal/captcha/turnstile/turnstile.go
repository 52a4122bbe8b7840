// Package turnstile verifies Cloudflare Turnstile tokens with the
// siteverify API (developers.cloudflare.com/turnstile/get-started/
// server-side-validation): a POST, form or JSON (this client sends JSON),
// of secret, response, remoteip and idempotency_key to
// https://challenges.cloudflare.com/turnstile/v0/siteverify, answered with
// success, challenge_ts, hostname, error-codes, action and cdata.
//
// A token is at most 2048 characters, valid for 300 seconds and verified
// once. A site that must retry a verification sends a UUID as
// idempotency_key with the first request and the same UUID with every
// retry of it; Cloudflare then answers the retry as it answered the first,
// instead of "already consumed". That is what Answer.Retryable says.
package turnstile

import (
	"context"
	"fmt"

	"carrier/internal/captcha"
	"carrier/internal/captcha/siteverify"
	"carrier/internal/captcha/vendorhttp"
)

// Endpoint is Cloudflare's siteverify URL.
const Endpoint = "https://challenges.cloudflare.com/turnstile/v0/siteverify"

// MaxToken is the documented longest token.
const MaxToken = 2048

// Codes are the codes of the page's "Error codes" table.
var Codes = siteverify.Codes{
	"missing-input-secret":   captcha.ReasonConfigError, // the secret parameter was not passed
	"invalid-input-secret":   captcha.ReasonConfigError, // the secret was invalid or did not exist
	"missing-input-response": captcha.ReasonInvalidToken,
	"invalid-input-response": captcha.ReasonInvalidToken, // invalid or expired; "most of the time ... a fake token"
	"bad-request":            captcha.ReasonConfigError,  // the request was malformed
	// "has already been validated before ... issued five minutes ago and is
	// no longer valid, or it was already redeemed": one code for both.
	"timeout-or-duplicate": captcha.ReasonDuplicate,
	// "An internal error happened while validating the response. The
	// request can be retried." Cloudflare's own failure.
	"internal-error": captcha.ReasonVendorUnavailable,
}

// Client verifies Turnstile tokens.
type Client struct {
	HTTP captcha.HTTPClient
}

var _ captcha.Vendor = (*Client)(nil)

// New returns a client that sends with http.
func New(http captcha.HTTPClient) *Client { return &Client{HTTP: http} }

// Name is "turnstile".
func (c *Client) Name() string { return "turnstile" }

// DefaultEndpoints is the one siteverify URL; Cloudflare documents no
// backup.
func (c *Client) DefaultEndpoints() []string { return []string{Endpoint} }

type request struct {
	Secret         string `json:"secret"`
	Response       string `json:"response"`
	RemoteIP       string `json:"remoteip,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Verify asks Cloudflare about req.Token and checks the hostname
// (ExpectedHostname) and action (ExpectedAction) it carries, as the
// documentation recommends.
func (c *Client) Verify(ctx context.Context, keys captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	a := c.verify(ctx, keys, endpoint, req)
	if req.IdempotencyKey != "" {
		a.Retryable = true
	}
	return a
}

func (c *Client) verify(ctx context.Context, keys captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	if a, ok := siteverify.Precheck(keys, req); !ok {
		return a
	}
	if len(req.Token) > MaxToken {
		return vendorhttp.Failure(captcha.ReasonInvalidToken, "token_too_long", fmt.Sprintf("a token has at most %d characters", MaxToken))
	}
	if endpoint == "" {
		endpoint = Endpoint
	}
	r, failed, ok := siteverify.PostJSON(ctx, c.HTTP, endpoint, request{
		Secret:         keys.Secret,
		Response:       req.Token,
		RemoteIP:       req.RemoteIP,
		IdempotencyKey: req.IdempotencyKey,
	})
	if !ok {
		return failed
	}
	a := siteverify.Judge(r, Codes, req)
	if a.Reason == captcha.ReasonOK && req.ExpectedAction != "" && r.Action != req.ExpectedAction {
		return siteverify.Reject(a, captcha.ReasonInvalidToken, "action_mismatch",
			fmt.Sprintf("token made for action %q, site expects %q", r.Action, req.ExpectedAction))
	}
	return a
}
