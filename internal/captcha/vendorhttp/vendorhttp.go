// Package vendorhttp sends one verification request to a CAPTCHA vendor and
// says, when there is no answer to read, what kind of failure it was. It is
// the one place the vendor clients (tencent, recaptcha, hcaptcha, turnstile)
// do HTTP, so they classify transport failures alike:
//
//   - the site's deadline (ctx) ended first: vendor_unavailable "timeout";
//   - the connection could not be made (refused, no route, DNS): the request
//     never reached the vendor, so vendor_unavailable "connect_error" with
//     Retryable set;
//   - the connection broke after the request was sent: vendor_unavailable
//     "no_answer" (the vendor may have consumed the token);
//   - HTTP 5xx: vendor_unavailable "http_5xx"; HTTP 429: vendor_throttled;
//   - the SSRF guard refused the endpoint, or the endpoint is not a URL: the
//     site is misconfigured, config_error, never a vendor outage.
//
// Every other status is handed back with its body (read up to MaxBody) for
// the vendor client to judge: vendors answer their own errors in the body.
package vendorhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"carrier/internal/captcha"
	"carrier/internal/netguard"
)

// MaxBody is the most of an answer read; a vendor's verdict is a few
// hundred bytes.
const MaxBody = 64 << 10

// Request is one POST to a vendor.
type Request struct {
	URL         string
	ContentType string
	Header      http.Header // extra headers (Tencent's X-TC-* and Authorization)
	Body        []byte
}

// Response is a vendor's answer that was read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

type result struct {
	resp   Response
	failed captcha.Answer
	ok     bool
}

// Send posts req with client. ok is true with the vendor's answer when one
// with a status below 500 (and not 429) was read in full; otherwise failed
// says why there is none. Send returns when ctx ends even if client does
// not honour ctx itself.
func Send(ctx context.Context, client captcha.HTTPClient, req Request) (resp Response, failed captcha.Answer, ok bool) {
	if client == nil {
		return Response{}, Failure(captcha.ReasonConfigError, "no_http_client", "no HTTP client configured"), false
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Response{}, Failure(captcha.ReasonConfigError, "bad_endpoint", fmt.Sprintf("endpoint %q is not an http(s) URL", req.URL)), false
	}
	if ctx.Err() != nil {
		a := Failure(captcha.ReasonVendorUnavailable, "timeout", "the deadline ended before the request was sent")
		a.Retryable = true
		return Response{}, a, false
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return Response{}, Failure(captcha.ReasonConfigError, "bad_endpoint", err.Error()), false
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	if req.ContentType != "" {
		hreq.Header.Set("Content-Type", req.ContentType)
	}
	hreq.Header.Set("Accept", "application/json")

	done := make(chan result, 1)
	go func() { done <- roundTrip(ctx, client, hreq) }()
	select {
	case r := <-done:
		return r.resp, r.failed, r.ok
	case <-ctx.Done():
		select { // an answer that arrived together with the deadline still counts
		case r := <-done:
			return r.resp, r.failed, r.ok
		default:
		}
		return Response{}, Failure(captcha.ReasonVendorUnavailable, "timeout", "no answer before the deadline"), false
	}
}

func roundTrip(ctx context.Context, client captcha.HTTPClient, hreq *http.Request) result {
	hresp, err := client.Do(hreq)
	if err != nil {
		return result{failed: transportFailure(ctx, err)}
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, MaxBody+1))
	switch {
	case hresp.StatusCode >= 500:
		return result{failed: Failure(captcha.ReasonVendorUnavailable, "http_"+strconv.Itoa(hresp.StatusCode), Snippet(body))}
	case hresp.StatusCode == http.StatusTooManyRequests:
		return result{failed: Failure(captcha.ReasonVendorThrottled, "http_429", Snippet(body))}
	case err != nil:
		if ctx.Err() != nil {
			return result{failed: Failure(captcha.ReasonVendorUnavailable, "timeout", "the deadline ended while the answer was read")}
		}
		return result{failed: Failure(captcha.ReasonVendorUnavailable, "no_answer", "reading the answer: "+err.Error())}
	case len(body) > MaxBody:
		return result{failed: Failure(captcha.ReasonConfigError, "answer_too_large",
			fmt.Sprintf("HTTP %d answer larger than %d bytes: not a verification endpoint", hresp.StatusCode, MaxBody))}
	}
	return result{resp: Response{Status: hresp.StatusCode, Header: hresp.Header, Body: body}, ok: true}
}

func transportFailure(ctx context.Context, err error) captcha.Answer {
	if netguard.IsBlocked(err) {
		return Failure(captcha.ReasonConfigError, "endpoint_blocked", err.Error())
	}
	unsent := dialFailed(err) // nothing was sent, so nothing was consumed
	if ctx.Err() != nil {
		a := Failure(captcha.ReasonVendorUnavailable, "timeout", err.Error())
		a.Retryable = unsent
		return a
	}
	if unsent {
		a := Failure(captcha.ReasonVendorUnavailable, "connect_error", err.Error())
		a.Retryable = true
		return a
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Failure(captcha.ReasonVendorUnavailable, "timeout", err.Error())
	}
	return Failure(captcha.ReasonVendorUnavailable, "no_answer", err.Error())
}

// dialFailed reports whether err happened while connecting, before any
// byte of the request was written.
func dialFailed(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Failure is an Answer without a verdict on the token.
func Failure(reason captcha.Reason, code, message string) captcha.Answer {
	return captcha.Answer{Reason: reason, VendorCode: code, Message: message}
}

// Snippet is the start of an answer's body, valid UTF-8, for a log line.
func Snippet(body []byte) string {
	const max = 200
	if len(body) > max {
		body = body[:max]
	}
	return string(bytes.ToValidUTF8(body, []byte("?")))
}
