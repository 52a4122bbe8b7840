package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"time"

	"carrier/internal/clock"
	"carrier/internal/ingest"
	"carrier/internal/sign"
	"carrier/internal/store"
)

// newSecret mints a signing secret.
var newSecret = sign.NewSecret

// Rotation is a secret rotation.
type Rotation struct {
	// OverlapSeconds is how long the rotated-out secret keeps signing next
	// to the new one (a whole number from 0 to 604800); nil is
	// Deps.RotationOverlap.
	OverlapSeconds *float64
}

// RotateSecret gives subscription id a new signing secret and returns the
// subscription with it in Secret (shown once), the old one in
// PreviousSecret until PreviousSecretUntil (nil with no overlap).
func (s *Service) RotateSecret(ctx context.Context, projectID, id string, api API, r Rotation) (store.Subscription, error) {
	overlap := s.d.RotationOverlap
	if r.OverlapSeconds != nil {
		v := *r.OverlapSeconds
		if v < 0 || v > 7*24*3600 || v != math.Trunc(v) {
			return store.Subscription{}, invalid("overlap_seconds", "must be a whole number from 0 to 604800")
		}
		overlap = time.Duration(v) * time.Second
	}
	sub, err := s.Get(ctx, projectID, id, api)
	if err != nil {
		return sub, err
	}
	secret, err := newSecret()
	if err != nil {
		return store.Subscription{}, err
	}
	t := clock.Now()
	until := t.Add(overlap)
	sub.PreviousSecret, sub.PreviousSecretUntil = sub.Secret, &until
	if overlap == 0 {
		sub.PreviousSecret, sub.PreviousSecretUntil = "", nil
	}
	sub.Secret = secret
	sub.UpdatedAt = t
	if err := s.d.Store.UpdateSubscription(ctx, sub); err != nil {
		return store.Subscription{}, err
	}
	s.changed(ctx)
	return sub, nil
}

// Delivery returns delivery deliveryID of subscription id.
func (s *Service) Delivery(ctx context.Context, projectID, id, deliveryID string, api API) (store.Delivery, error) {
	sub, err := s.Get(ctx, projectID, id, api)
	if err != nil {
		return store.Delivery{}, err
	}
	d, err := s.d.Store.GetDelivery(ctx, projectID, deliveryID)
	if err != nil || d.SubscriptionID != sub.ID {
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return d, &NotFoundError{What: "delivery"}
		}
		return d, err
	}
	return d, nil
}

// Replay puts delivery deliveryID of subscription id back to pending with a
// fresh retry budget, and returns it. While an attempt of it is under way
// it answers *InFlightError.
func (s *Service) Replay(ctx context.Context, projectID, id, deliveryID string, api API) (store.Delivery, error) {
	d, err := s.Delivery(ctx, projectID, id, deliveryID, api)
	if err != nil {
		return d, err
	}
	d, err = s.d.Store.ReplayDelivery(ctx, projectID, d.SubscriptionID, d.ID, clock.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, &NotFoundError{What: "delivery"}
	case errors.Is(err, store.ErrConflict):
		return d, &InFlightError{}
	case err != nil:
		return d, err
	}
	s.d.Wake()
	return d, nil
}

// Window selects failed deliveries to recover.
type Window struct {
	// From is required; To is now when nil.
	From, To *time.Time
	// EventTypes limits recovery to these types; empty: all.
	EventTypes []string
}

// Recover replays every failed delivery of subscription id whose event was
// published in the window, and returns how many.
func (s *Service) Recover(ctx context.Context, projectID, id string, api API, w Window) (int, error) {
	if w.From == nil {
		return 0, invalid("from", "is required (RFC 3339 time)")
	}
	to := clock.Now()
	if w.To != nil {
		to = *w.To
	}
	if to.Before(*w.From) {
		return 0, invalid("to", "must not be before from")
	}
	sub, err := s.Get(ctx, projectID, id, api)
	if err != nil {
		return 0, err
	}
	n, err := s.d.Store.RecoverDeliveries(ctx, store.RecoverFilter{ProjectID: projectID, SubscriptionID: sub.ID, From: *w.From, To: to, EventTypes: w.EventTypes}, clock.Now())
	if err != nil {
		return 0, err
	}
	s.d.Wake()
	return n, nil
}

// SendTest publishes a webhook.test event to subscription id alone, and
// returns the publish result with the subscription (an inactive one gets
// the event when it is activated).
func (s *Service) SendTest(ctx context.Context, projectID, id string, api API) (ingest.Result, store.Subscription, error) {
	sub, err := s.Get(ctx, projectID, id, api)
	if err != nil {
		return ingest.Result{}, sub, err
	}
	data, _ := json.Marshal(map[string]any{
		"message":    "This is a test webhook from Carrier",
		"timestamp":  clock.Format(clock.Now()),
		"webhook_id": sub.ID,
	})
	res, err := s.d.Publisher.Publish(ctx, ingest.Input{ProjectID: projectID, Type: "webhook.test", Subject: sub.ID, Data: data, OnlySubscription: sub.ID})
	return res, sub, err
}
