package task

import (
	"context"
	"errors"
	"fmt"

	"carrier/internal/store"
)

// ErrNotSolved is returned for a report on a task that is not solved (or
// was never submitted): the provider has nothing to record.
var ErrNotSolved = errors.New("the task is not solved")

// Price is a solved task's price: what the provider reported with the
// result, else asked of it once (res.php action=get2) and recorded on the
// task, so later reads do not ask again. "" when it cannot be known; the
// error says why the provider could not tell.
func (s *Service) Price(ctx context.Context, t store.Task) (string, error) {
	if t.Cost != "" || t.ProviderID == "" {
		return t.Cost, nil
	}
	res, err := s.upstream.Get(ctx, t.ProviderID)
	s.countUpstream("get", err)
	if err != nil {
		return "", err
	}
	if res.Cost == "" {
		return "", nil
	}
	t.Cost = res.Cost
	if _, err := s.store.UpdateTask(ctx, t, t.Version, nil); err != nil && !errors.Is(err, store.ErrConflict) {
		// The price is still right; it is asked again next time.
		return res.Cost, fmt.Errorf("record the price: %w", err)
	}
	return res.Cost, nil
}

// Report tells the provider whether a solved task's answer was right
// (reportgood) or wrong (reportbad).
func (s *Service) Report(ctx context.Context, t store.Task, good bool) error {
	if t.Status != store.TaskSolved || t.ProviderID == "" {
		return ErrNotSolved
	}
	err := s.upstream.Report(ctx, t.ProviderID, good)
	s.countUpstream("report", err)
	return err
}
