package dispatch

import "time"

// Result is what one attempt came to, as a destination reports it.
type Result struct {
	Delivered    bool
	Retryable    bool          // a failure worth retrying (timeouts, 408, 429, 5xx, network errors)
	Disable      bool          // deactivate the subscription (HTTP 410 Gone)
	RetryAfter   time.Duration // the endpoint asked for this pause (Retry-After)
	StatusCode   int
	Duration     time.Duration
	ErrorCode    string
	ErrorMessage string
	ResponseBody string // at most the first 4 KiB
}
