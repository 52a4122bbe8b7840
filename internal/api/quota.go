package api

import (
	"context"
	"fmt"
	"net/http"
)

// CodeLimitExceeded answers a request that would take a project past one of
// its limits.
const CodeLimitExceeded = "limit_exceeded"

// CheckSubscriptionQuota tells whether a project may have one more
// subscription (of any kind, pingback subscriptions included): at most
// Deps.MaxSubscriptions, so one project cannot make every publish fan out to
// thousands of deliveries. Zero means no limit.
func (s *Server) CheckSubscriptionQuota(ctx context.Context, projectID string) error {
	if s.MaxSubscriptions <= 0 {
		return nil
	}
	subs, err := s.Store.ListSubscriptions(ctx, projectID)
	if err != nil {
		return err
	}
	if len(subs) >= s.MaxSubscriptions {
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded,
			Message: fmt.Sprintf("the project has %d subscriptions, the most CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT allows; delete one first", len(subs))}
	}
	return nil
}
