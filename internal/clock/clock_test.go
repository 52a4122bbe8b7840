package clock

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewIDIsAVersion7UUID(t *testing.T) {
	t.Parallel()
	a, b := NewID(), NewID()
	for _, id := range []string{a, b} {
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("NewID() = %q (%v), want a UUIDv7", id, err)
		}
	}
	if a == b {
		t.Errorf("two NewID calls returned %q", a)
	}
}

func TestNowIsUTCMilliseconds(t *testing.T) {
	t.Parallel()
	n := Now()
	if n.Location() != time.UTC {
		t.Errorf("Now() location = %v, want UTC", n.Location())
	}
	if n.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("Now() = %v has sub-millisecond digits", n)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("+02", 2*3600)
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), "2026-01-02T15:04:05.000Z"},
		{time.Date(2026, 1, 2, 17, 4, 5, 123456789, plus2), "2026-01-02T15:04:05.123Z"},
	}
	for _, c := range cases {
		if got := Format(c.in); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.in, got, c.want)
		}
		if back, err := time.Parse(time.RFC3339Nano, Format(c.in)); err != nil || !back.Equal(c.in.Truncate(time.Millisecond)) {
			t.Errorf("Format(%v) does not parse back as RFC 3339: %v, %v", c.in, back, err)
		}
	}
}
