// Package clock is the one place Carrier mints record ids and timestamps and
// renders times as text, so every package stamps records the same way:
//
//   - ids are UUIDv7 strings, time-ordered so that indexes on them stay
//     compact and a listing by id is a listing by creation;
//   - the current time is UTC at millisecond precision, the precision the
//     store keeps, so a time read back equals the time written;
//   - times in the API and in payloads are RFC 3339 in UTC with exactly three
//     decimals (Layout), as in the webhook source documents.
package clock

import (
	"time"

	"github.com/google/uuid"
)

// Layout is the text form of times in the API, payloads and headers: RFC 3339,
// UTC, milliseconds ("2026-01-02T15:04:05.000Z").
const Layout = "2006-01-02T15:04:05.000Z07:00"

// NewID returns a new UUIDv7 string.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Now returns the current time in UTC, truncated to milliseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Format renders t in Layout, in UTC whatever t's location.
func Format(t time.Time) string { return t.UTC().Format(Layout) }
