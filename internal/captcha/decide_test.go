package captcha

import (
	"fmt"
	"testing"
	"time"
)

// vendorErrors are the answers each vendor can give that are not ok, as the
// vendor clients produce them (reason and vendor code).
var vendorErrors = []Answer{
	// Tencent Cloud Captcha
	{Reason: ReasonExpired, VendorCode: "7"}, {Reason: ReasonExpired, VendorCode: "8"}, {Reason: ReasonDuplicate, VendorCode: "9"},
	{Reason: ReasonInvalidToken, VendorCode: "15"}, {Reason: ReasonConfigError, VendorCode: "16"}, {Reason: ReasonInvalidToken, VendorCode: "21"},
	{Reason: ReasonVendorUnavailable, VendorCode: "26"}, {Reason: ReasonConfigError, VendorCode: "100"}, {Reason: ReasonRiskBlock, VendorCode: "1"},
	{Reason: ReasonVendorUnavailable, VendorCode: "InternalError"}, {Reason: ReasonConfigError, VendorCode: "AuthFailure.SignatureFailure"},
	{Reason: ReasonConfigError, VendorCode: "InvalidParameterValue"}, {Reason: ReasonVendorThrottled, VendorCode: "RequestLimitExceeded"},
	// siteverify vendors
	{Reason: ReasonConfigError, VendorCode: "missing-input-secret"}, {Reason: ReasonConfigError, VendorCode: "invalid-input-secret"},
	{Reason: ReasonInvalidToken, VendorCode: "missing-input-response"}, {Reason: ReasonInvalidToken, VendorCode: "invalid-input-response"},
	{Reason: ReasonConfigError, VendorCode: "bad-request"}, {Reason: ReasonDuplicate, VendorCode: "timeout-or-duplicate"},
	{Reason: ReasonDuplicate, VendorCode: "already-seen-response"}, {Reason: ReasonConfigError, VendorCode: "sitekey-secret-mismatch"},
	{Reason: ReasonVendorUnavailable, VendorCode: "internal-error"}, {Reason: ReasonRiskBlock, VendorCode: "score"},
	{Reason: ReasonInvalidToken, VendorCode: "action-mismatch"}, {Reason: ReasonInvalidToken, VendorCode: "hostname-mismatch"},
	// transport
	{Reason: ReasonVendorUnavailable, VendorCode: "timeout"}, {Reason: ReasonVendorUnavailable, VendorCode: "connect_error", Retryable: true},
	{Reason: ReasonVendorUnavailable, VendorCode: "http_500"}, {Reason: ReasonVendorUnavailable, VendorCode: "http_503"},
	{Reason: ReasonVendorThrottled, VendorCode: "http_429"}, {Reason: ReasonConfigError, VendorCode: "http_400"},
	{Reason: ReasonVendorUnavailable, VendorCode: "circuit_open"},
}

var policies = []Policy{FailClosed, FailOpen, FailOpenBudgeted, StepUp}

// TestNoConfigOrTokenErrorEverAllows runs every vendor error through every
// policy, with the degraded budget available and not: only the vendor's
// own failure may yield anything but deny, and nothing but ok yields allow.
func TestNoConfigOrTokenErrorEverAllows(t *testing.T) {
	for _, a := range vendorErrors {
		for _, p := range policies {
			for _, budget := range []bool{true, false} {
				o := Decide(p, a, func() bool { return budget })
				name := fmt.Sprintf("%s/%s/%s/budget=%v", a.Reason, a.VendorCode, p, budget)
				if o.Decision == Allow {
					t.Errorf("%s: allowed", name)
				}
				if a.Reason != ReasonVendorUnavailable && o.Decision != Deny {
					t.Errorf("%s: %s, want deny (not the vendor's own failure)", name, o.Decision)
				}
				if o.Decision == DegradedAllow && !(p == FailOpen || p == FailOpenBudgeted && budget) {
					t.Errorf("%s: degraded allow outside fail_open or the budget", name)
				}
			}
		}
	}
	// And the reverse: the vendor's own failures do degrade under each policy.
	want := map[Policy]string{FailClosed: Deny, FailOpen: DegradedAllow, FailOpenBudgeted: DegradedAllow, StepUp: Challenge}
	for p, d := range want {
		if o := Decide(p, Answer{Reason: ReasonVendorUnavailable, VendorCode: "26"}, func() bool { return true }); o.Decision != d || o.Degraded != "26" {
			t.Errorf("%s on code 26: %+v, want %s degraded by 26", p, o, d)
		}
	}
	if o := Decide(FailClosed, Answer{Reason: ReasonOK, VendorCode: "1"}, nil); o.Decision != Allow {
		t.Errorf("ok: %+v", o)
	}
}

func TestParseDRTicket(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want DRTicket
	}{
		{"terror_1001_190000000_1700000000", true, DRTicket{Code: "1001", AppID: "190000000", At: time.Unix(1700000000, 0)}},
		{"trerror_1001_190000000_1700000000", true, DRTicket{Code: "1001", AppID: "190000000", At: time.Unix(1700000000, 0)}},
		{"terror_1001_190000000", false, DRTicket{}},
		{"terror_1001_19x_1700000000", false, DRTicket{}},
		{"terror_1001_190000000_1700000000_extra", false, DRTicket{}},
		{"t03abc", false, DRTicket{}},
		{"terror_1001_190000000_99999999999999999", false, DRTicket{}},
	}
	for _, tt := range tests {
		got, ok := ParseDRTicket(tt.in)
		if ok != tt.ok || !got.At.Equal(tt.want.At) || got.Code != tt.want.Code || got.AppID != tt.want.AppID {
			t.Errorf("%s: got %+v %v, want %+v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	now := time.Unix(1700000000, 0)
	for _, tt := range []struct {
		t    DRTicket
		want bool
	}{
		{DRTicket{AppID: "1", At: now.Add(-4 * time.Minute)}, true},
		{DRTicket{AppID: "2", At: now}, false},
		{DRTicket{AppID: "1", At: now.Add(-6 * time.Minute)}, false},
		{DRTicket{AppID: "1", At: now.Add(10 * time.Minute)}, false},
	} {
		if got := checkDR(tt.t, "1", now, DefaultDRMaxAge) == ""; got != tt.want {
			t.Errorf("%+v: accepted %v, want %v", tt.t, got, tt.want)
		}
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	b := NewBreaker(DefaultBreaker)
	now := time.Unix(0, 0)
	// 4 failures of 4: below the minimum of 5.
	for range 4 {
		b.Allow(now)
		b.Record(now, true)
	}
	if b.State() != CircuitClosed {
		t.Fatalf("after 4 failures: %s", b.State())
	}
	// 5 failures of 7 (71%): below 75%.
	b = NewBreaker(DefaultBreaker)
	for i := range 7 {
		b.Allow(now)
		b.Record(now, i >= 2) // two successes, then five failures
	}
	if b.State() != CircuitClosed {
		t.Fatalf("after 5 of 7 failures: %s", b.State())
	}
	b.Allow(now)
	if _, to := b.Record(now, true); to != CircuitOpen { // 6 of 8
		t.Fatalf("after 6 of 8 failures: %s", to)
	}
	if b.Allow(now.Add(59 * time.Second)) {
		t.Fatal("a call let through while open")
	}
	// After 60 s: 5 probes, no more until they answer.
	at := now.Add(61 * time.Second)
	for i := range 5 {
		if !b.Allow(at) {
			t.Fatalf("probe %d refused", i)
		}
	}
	if b.Allow(at) {
		t.Fatal("a sixth probe let through")
	}
	for i := range 4 {
		if _, to := b.Record(at, false); to != CircuitHalfOpen {
			t.Fatalf("after %d good probes: %s", i+1, to)
		}
	}
	if _, to := b.Record(at, false); to != CircuitClosed {
		t.Fatalf("after 5 good probes: %s", to)
	}
	// A failed probe opens it again.
	for range 6 {
		b.Allow(at)
		b.Record(at, true)
	}
	at = at.Add(61 * time.Second)
	b.Allow(at)
	if _, to := b.Record(at, true); to != CircuitOpen {
		t.Fatalf("a failed probe: %s", to)
	}
}
