package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"carrier/internal/store"
)

// CodeLimitExceeded answers a request that would take a project past one of
// its limits (a *subscription.LimitError).
const CodeLimitExceeded = "limit_exceeded"

// CodeRateLimited answers a request over one of a project's rates.
const CodeRateLimited = "rate_limited"

// readBudget is each project's allowance of list payload, a token bucket in
// bytes: lists of large records cost real CPU to read and encode, and a
// project reading them in a loop would take it from every other project.
type readBudget struct {
	mu      sync.Mutex
	buckets map[string]*readBucket
}

type readBucket struct {
	tokens float64 // bytes that may still be listed; negative after a large page
	at     time.Time
}

// allowList refuses a list while the project's list budget is spent
// (Deps.ListBytesPerSecond, with a burst of twice that or two full pages,
// whichever is more), saying in Retry-After when to come back.
func (s *Server) allowList(w http.ResponseWriter, projectID string) error {
	rate := float64(s.ListBytesPerSecond)
	if rate <= 0 {
		return nil
	}
	b := &s.reads
	b.mu.Lock()
	defer b.mu.Unlock()
	burst := max(2*rate, 2*float64(store.ListBytes))
	if b.buckets == nil {
		b.buckets = map[string]*readBucket{}
	}
	now := time.Now()
	k, ok := b.buckets[projectID]
	if !ok {
		k = &readBucket{tokens: burst, at: now}
		b.buckets[projectID] = k
	}
	k.tokens = min(burst, k.tokens+now.Sub(k.at).Seconds()*rate)
	k.at = now
	if k.tokens > 0 {
		return nil
	}
	wait := max(1, int(math.Ceil(-k.tokens/rate)))
	w.Header().Set("Retry-After", strconv.Itoa(wait))
	return &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
		Message: fmt.Sprintf("this project listed more than CARRIER_LIST_BYTES_PER_SECOND (%d bytes a second) of payload; retry in %d s", s.ListBytesPerSecond, wait)}
}

// spendList charges a list answer's payload to the project's budget.
func (s *Server) spendList(projectID string, bytes int) {
	if s.ListBytesPerSecond <= 0 {
		return
	}
	b := &s.reads
	b.mu.Lock()
	if k, ok := b.buckets[projectID]; ok {
		k.tokens -= float64(bytes)
	}
	b.mu.Unlock()
}
