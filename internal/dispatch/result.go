package dispatch

import "time"

// Result is what one attempt came to, as a destination reports it.
type Result struct {
	Delivered  bool
	Retryable  bool          // a failure worth retrying (timeouts, 408, 429, 5xx, network errors)
	Disable    bool          // deactivate the subscription (HTTP 410 Gone)
	RetryAfter time.Duration // the endpoint asked for this pause (Retry-After)
	// Throttled: the destination refused because of its rate limit (HTTP 429
	// with a retry_after). The delivery waits RetryAfter without using up one
	// of its retries.
	Throttled    bool
	StatusCode   int
	Duration     time.Duration
	ErrorCode    string
	ErrorMessage string
	ResponseBody string // at most the first 4 KiB
	// ResponseHeaders are the answer's headers as recorded (see dest.RecordHeaders).
	ResponseHeaders string
	// URL is where the attempt went, when the destination chose it per
	// delivery (a task's pingback URL); "" records the subscription's URL.
	URL string
}
