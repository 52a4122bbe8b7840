// Package captcha verifies CAPTCHA tokens for a site with its vendor
// (Tencent Cloud Captcha, reCAPTCHA, hCaptcha, Cloudflare Turnstile) and
// decides within a deadline, with a degraded mode for vendor outages that
// an attacker cannot turn into a bypass: only what a vendor documents as
// its own failure degrades, never a configuration error, a rate limit or a
// token error.
package captcha

import (
	"context"
	"net/http"
)

// Reason is a normalised verification outcome.
type Reason string

// The reasons a verification can have.
const (
	ReasonOK                Reason = "ok"
	ReasonInvalidToken      Reason = "invalid_token" // malformed, unknown, wrong site, action or hostname mismatch
	ReasonExpired           Reason = "expired"
	ReasonDuplicate         Reason = "duplicate"          // already verified once (single use)
	ReasonRiskBlock         Reason = "risk_block"         // the vendor judged it a bot (score, EvilLevel, code 9…)
	ReasonConfigError       Reason = "config_error"       // wrong secret, site key or app id, or a bad request
	ReasonVendorUnavailable Reason = "vendor_unavailable" // the vendor's own failure: timeout, no answer, 5xx, InternalError, code 26
	ReasonVendorThrottled   Reason = "vendor_throttled"   // 429, RequestLimitExceeded: never degraded
	ReasonDRTicket          Reason = "dr_ticket"          // a disaster-recovery ticket
)

// Keys are a site's credentials with its vendor. Which are used depends on
// the vendor: SiteKey and Secret for reCAPTCHA, hCaptcha and Turnstile;
// AppID (CaptchaAppId), AppSecret (AppSecretKey), SecretID and SecretKey
// (Tencent Cloud API credentials, TC3-HMAC-SHA256) and Region for Tencent.
type Keys struct {
	SiteKey   string `json:"site_key,omitempty"`
	Secret    string `json:"secret,omitempty"`
	AppID     string `json:"app_id,omitempty"`
	AppSecret string `json:"app_secret,omitempty"`
	SecretID  string `json:"secret_id,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	Region    string `json:"region,omitempty"`
}

// Request is one token to verify.
type Request struct {
	Token            string // the ticket (Tencent) or response token
	Randstr          string // Tencent only
	RemoteIP         string
	ExpectedAction   string // reCAPTCHA v3, Turnstile: the action the token must carry
	ExpectedHostname string // reCAPTCHA, hCaptcha, Turnstile: the hostname it must carry
	// IdempotencyKey makes a retry of the same verification safe where the
	// vendor supports it (Turnstile's idempotency_key): a UUID.
	IdempotencyKey string
	// MinScore is the least reCAPTCHA v3 score accepted (0 disables the check).
	MinScore float64
	// MaxEvilLevel is the highest Tencent EvilLevel accepted (0: only 0).
	MaxEvilLevel int
}

// Answer is what a vendor said about a token, normalised.
type Answer struct {
	Reason Reason
	// VendorCode is the vendor's own code: Tencent's CaptchaCode ("1",
	// "26") or error code ("InternalError", "AuthFailure.SignatureFailure"),
	// the siteverify error codes joined by "," ("invalid-input-response"),
	// an HTTP status ("http_503") or a transport failure ("timeout",
	// "connect_error").
	VendorCode string
	Message    string   // the vendor's message, for logs; never shown to end users
	Score      *float64 // reCAPTCHA v3
	EvilLevel  *int     // Tencent
	Action     string
	Hostname   string
	// Retryable says a second try cannot be answered "duplicate": the
	// request never reached the vendor (a connect error), or the vendor
	// deduplicates it (Turnstile with an idempotency key).
	Retryable bool
}

// Vendor verifies tokens with one CAPTCHA vendor. Verify must return when
// ctx ends (the site's deadline) with ReasonVendorUnavailable and
// VendorCode "timeout"; it never returns an error: every failure is an
// Answer, so the policy sees what kind of failure it was.
type Vendor interface {
	Name() string // "tencent", "recaptcha", "hcaptcha" or "turnstile"
	Verify(ctx context.Context, keys Keys, endpoint string, req Request) Answer
	// DefaultEndpoints are the vendor's verification endpoints, primary
	// first, then backups (Tencent's captcha.tencentcloudapi.com and a
	// regional one; the siteverify URLs have none).
	DefaultEndpoints() []string
}

// HTTPClient is what vendors send with: an *http.Client whose transport
// refuses what the SSRF guard refuses (tests: loopback allowed).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}
