package vendorhttp

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/netguard"
)

// bound fails the test if f has not returned within a generous time: it
// only catches a hang, it measures nothing.
func bound[T any](t *testing.T, f func() T) T {
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

type sent struct {
	resp   Response
	failed captcha.Answer
	ok     bool
}

func send(t *testing.T, ctx context.Context, c captcha.HTTPClient, url string) sent {
	t.Helper()
	return bound(t, func() sent {
		r, f, ok := Send(ctx, c, Request{URL: url, ContentType: "application/json", Body: []byte(`{}`)})
		return sent{r, f, ok}
	})
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		ok     bool
		reason captcha.Reason
		code   string
	}{
		{200, `{"success":true}`, true, "", ""},
		{400, `{"success":false,"error-codes":["bad-request"]}`, true, "", ""},
		{404, `not found`, true, "", ""},
		{429, `slow down`, false, captcha.ReasonVendorThrottled, "http_429"},
		{500, `oops`, false, captcha.ReasonVendorUnavailable, "http_500"},
		{502, ``, false, captcha.ReasonVendorUnavailable, "http_502"},
		{503, `busy`, false, captcha.ReasonVendorUnavailable, "http_503"},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %s", r.Method, r.Header.Get("Content-Type"))
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		got := send(t, context.Background(), srv.Client(), srv.URL)
		srv.Close()
		if got.ok != tc.ok {
			t.Errorf("HTTP %d: ok = %v, want %v (%+v)", tc.status, got.ok, tc.ok, got.failed)
			continue
		}
		if tc.ok {
			if got.resp.Status != tc.status || string(got.resp.Body) != tc.body {
				t.Errorf("HTTP %d: resp = %d %q", tc.status, got.resp.Status, got.resp.Body)
			}
			continue
		}
		if got.failed.Reason != tc.reason || got.failed.VendorCode != tc.code || got.failed.Retryable {
			t.Errorf("HTTP %d: failed = %+v, want %s %s", tc.status, got.failed, tc.reason, tc.code)
		}
	}
}

func TestAnswerTooLarge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", MaxBody+1)))
	}))
	defer srv.Close()
	got := send(t, context.Background(), srv.Client(), srv.URL)
	if got.ok || got.failed.Reason != captcha.ReasonConfigError || got.failed.VendorCode != "answer_too_large" {
		t.Fatalf("got %+v", got)
	}
}

func TestConnectErrorIsRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: the dial is refused
	got := send(t, context.Background(), http.DefaultClient, "http://"+addr+"/")
	if got.ok || got.failed.Reason != captcha.ReasonVendorUnavailable || got.failed.VendorCode != "connect_error" || !got.failed.Retryable {
		t.Fatalf("got %+v", got.failed)
	}
}

// A hanging vendor costs the caller its deadline, no more: Send answers
// "timeout" when ctx ends.
func TestDeadlineWhileVendorHangs(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := send(t, ctx, srv.Client(), srv.URL)
	<-arrived
	if got.ok || got.failed.Reason != captcha.ReasonVendorUnavailable || got.failed.VendorCode != "timeout" || got.failed.Retryable {
		t.Fatalf("got %+v", got.failed)
	}
	if ctx.Err() == nil {
		t.Fatal("returned before the deadline")
	}
}

// blockingClient never answers until the test ends: a client that ignores
// ctx. Send must not wait for it.
type blockingClient struct{ release chan struct{} }

func (b blockingClient) Do(*http.Request) (*http.Response, error) {
	<-b.release
	return nil, context.Canceled
}

func TestDeadlineWithAClientThatIgnoresIt(t *testing.T) {
	t.Parallel()
	c := blockingClient{release: make(chan struct{})}
	defer close(c.release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got := send(t, ctx, c, "http://127.0.0.1:9/")
	if got.ok || got.failed.VendorCode != "timeout" {
		t.Fatalf("got %+v", got.failed)
	}
}

func TestEndedContextSendsNothing(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := send(t, ctx, srv.Client(), srv.URL)
	if got.ok || got.failed.VendorCode != "timeout" || !got.failed.Retryable || hits.Load() != 0 {
		t.Fatalf("got %+v after %d requests", got.failed, hits.Load())
	}
}

// The connection dies after the request was sent: the vendor may have
// consumed the token, so the failure is not retryable.
func TestBrokenConnectionAfterSending(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	got := send(t, context.Background(), srv.Client(), srv.URL)
	if got.ok || got.failed.Reason != captcha.ReasonVendorUnavailable || got.failed.VendorCode != "no_answer" || got.failed.Retryable {
		t.Fatalf("got %+v", got.failed)
	}
}

// An endpoint the SSRF guard refuses is the site's misconfiguration, not a
// vendor outage: it must never degrade.
func TestBlockedEndpointIsAConfigError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the guard let the request through")
	}))
	defer srv.Close()
	got := send(t, context.Background(), (&netguard.Guard{}).Client(0), srv.URL)
	if got.ok || got.failed.Reason != captcha.ReasonConfigError || got.failed.VendorCode != "endpoint_blocked" {
		t.Fatalf("got %+v", got.failed)
	}
}

func TestBadEndpoints(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "captcha.tencentcloudapi.com", "ftp://x/", "http://", "://bad"} {
		got := send(t, context.Background(), http.DefaultClient, u)
		if got.ok || got.failed.Reason != captcha.ReasonConfigError || got.failed.VendorCode != "bad_endpoint" {
			t.Errorf("%q: got %+v", u, got.failed)
		}
	}
	_, f, ok := Send(context.Background(), nil, Request{URL: "http://127.0.0.1:9/"})
	if ok || f.Reason != captcha.ReasonConfigError {
		t.Errorf("nil client: %+v", f)
	}
}

func TestHeadersAreSent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-TC-Action") != "DescribeCaptchaResult" || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("headers: %v", r.Header)
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	_, f, ok := Send(context.Background(), srv.Client(), Request{
		URL: srv.URL, ContentType: "application/json; charset=utf-8",
		Header: http.Header{"X-TC-Action": {"DescribeCaptchaResult"}}, Body: []byte("{}"),
	})
	if !ok {
		t.Fatal(f)
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	if got := Snippet([]byte(strings.Repeat("a", 500))); len(got) != 200 {
		t.Errorf("len = %d", len(got))
	}
	if got := Snippet([]byte{0xff, 'a'}); got != "?a" {
		t.Errorf("got %q", got)
	}
}
