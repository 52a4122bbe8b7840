package quota

import (
	"testing"
	"time"
)

// TestTake: all or nothing, refilled with time up to the burst, one bucket
// per key, saying how long until the tokens are there.
func TestTake(t *testing.T) {
	b := New(10, 20)
	at := time.Unix(1000, 0)
	b.Now = func() time.Time { return at }
	if got := b.Take("a", 20); got != 0 {
		t.Fatalf("the burst: wait %v, want 0", got)
	}
	if got, want := b.Take("a", 1), 100*time.Millisecond; got != want {
		t.Fatalf("past the burst: wait %v, want %v", got, want)
	}
	if got := b.Take("b", 5); got != 0 {
		t.Errorf("another key pays for the first: wait %v", got)
	}
	at = at.Add(500 * time.Millisecond) // 5 tokens back
	if got := b.Take("a", 6); got == 0 {
		t.Error("6 taken with 5 in the bucket")
	}
	if got := b.Take("a", 5); got != 0 {
		t.Errorf("5 refused with 5 in the bucket (a refusal must take nothing): wait %v", got)
	}
	at = at.Add(time.Hour)
	if got := b.Take("a", 20); got != 0 {
		t.Errorf("refilled only to the burst: wait %v", got)
	}
	if got := b.Take("a", 1); got == 0 {
		t.Error("an hour refilled past the burst")
	}
}

// TestSpendThenWait: a cost paid afterwards may overdraw the bucket; the key
// then waits until the debt is paid back, and other keys do not.
func TestSpendThenWait(t *testing.T) {
	b := New(0.05, 1) // 50 ms of work a second, bursts of 1 s
	at := time.Unix(1000, 0)
	b.Now = func() time.Time { return at }
	if got := b.Wait("a"); got != 0 {
		t.Fatalf("a fresh key waits %v", got)
	}
	b.Spend("a", 0.6)
	if got := b.Wait("a"); got != 0 {
		t.Fatalf("with 0.4 left: wait %v, want 0", got)
	}
	b.Spend("a", 0.5) // 0.1 in debt: two seconds of refill
	got := b.Wait("a")
	if got < 2*time.Second || got > 2*time.Second+50*time.Millisecond {
		t.Fatalf("0.1 in debt at 0.05 a second: wait %v, want about 2s", got)
	}
	if got := b.Wait("b"); got != 0 {
		t.Errorf("another key waits %v for the first's debt", got)
	}
	at = at.Add(got)
	if got := b.Wait("a"); got != 0 {
		t.Errorf("after the wait it asked for: wait %v, want 0", got)
	}
}

// TestNil: no limit.
func TestNil(t *testing.T) {
	b := New(0, 10)
	if b != nil {
		t.Fatal("rate 0 made buckets")
	}
	b.Spend("a", 1e9)
	if got := b.Take("a", 1e9) + b.Wait("a"); got != 0 {
		t.Errorf("nil buckets: wait %v", got)
	}
}

// TestForgetsFullBuckets: the map of keys does not grow without bound; a
// key forgotten comes back with a full bucket, as it would have had.
func TestForgetsFullBuckets(t *testing.T) {
	b := New(1, 1)
	at := time.Unix(1000, 0)
	b.Now = func() time.Time { return at }
	for i := range maxIdleBuckets {
		b.Take(string(rune('a'+i%26))+time.Duration(i).String(), 1)
	}
	at = at.Add(2 * time.Second) // every bucket refilled
	b.Take("new", 1)
	if got := len(b.buckets); got != 1 {
		t.Errorf("%d buckets kept, want only the new one", got)
	}
}
