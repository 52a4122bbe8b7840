package backoff

import (
	"net/http"
	"testing"
	"time"
)

func TestDelayFollowsTheSeedSchedule(t *testing.T) {
	// max_retries 3, multiplier 2, base 1 minute: 1, 2, 4 minutes.
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute} {
		if got := Delay(n, 2, time.Minute, 0.5); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestDelayJitterStaysWithinBounds(t *testing.T) {
	lo, hi := Delay(1, 2, time.Minute, 0), Delay(1, 2, time.Minute, 0.999999)
	if lo != 54*time.Second {
		t.Errorf("low = %v, want 54s", lo)
	}
	if hi < 65*time.Second || hi > 66*time.Second {
		t.Errorf("high = %v, want about 66s", hi)
	}
}

func TestDelayIsCapped(t *testing.T) {
	if got := Delay(60, 10, time.Minute, 0.5); got != MaxDelay {
		t.Errorf("got %v, want %v", got, MaxDelay)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"abc", 0, false},
		{"-3", 0, false},
		{"5", 5 * time.Second, true},
		{"99999", time.Hour, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := RetryAfter(tt.in, now, time.Hour)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
