package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"carrier/internal/quota"
	"carrier/internal/store"
)

// CodeLimitExceeded answers a request that would take a project past one of
// its limits (a *subscription.LimitError).
const CodeLimitExceeded = "limit_exceeded"

// CodeRateLimited answers a request over one of a project's rates.
const CodeRateLimited = "rate_limited"

// listBuckets is each project's allowance of list payload, a token bucket
// in bytes (Deps.ListBytesPerSecond, with a burst of twice that or two full
// pages, whichever is more): lists of large records cost real CPU to read and
// encode, and a project reading them in a loop would take it from every
// other project. nil: no limit.
func listBuckets(rate int) *quota.Buckets {
	return quota.New(float64(rate), max(2*float64(rate), 2*float64(store.ListBytes)))
}

// allowList refuses a list while the project's list budget is spent,
// saying in Retry-After when to come back.
func (s *Server) allowList(w http.ResponseWriter, projectID string) error {
	wait := s.reads.Wait(projectID)
	if wait <= 0 {
		return nil
	}
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
		Message: fmt.Sprintf("this project listed more than CARRIER_LIST_BYTES_PER_SECOND (%d bytes a second) of payload; retry in %d s", s.ListBytesPerSecond, secs)}
}

// spendList charges a list answer's payload to the project's budget.
func (s *Server) spendList(projectID string, bytes int) { s.reads.Spend(projectID, float64(bytes)) }
