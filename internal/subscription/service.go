// Package subscription is the subscription service: who wants which events,
// and where they go. It creates, updates, activates, deactivates and deletes
// subscriptions, rotates their signing secrets, replays and recovers their
// deliveries and sends them test events, for any transport (the REST API's
// /v1/webhooks and /v1/subscriptions, and Go code without HTTP). It owns the
// rules: every input is validated here (errors are *dest.FieldError naming
// the field as the caller's API shows it), destination settings through the
// dest.Registry the delivery engine sends with, addresses through the SSRF
// guard; and after a change it refreshes this node's matcher and wakes the
// delivery engine.
package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/dest/webhook"
	"carrier/internal/ingest"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

// API is the shape a call comes in. The two REST APIs share one model (a
// webhook is a subscription whose destination is an HTTP endpoint) but name
// a webhook's settings differently, and under /v1/webhooks only webhooks
// exist. Every method on a subscription takes the API (Create and Update in
// their Input), so that its errors name the fields and the resource as the
// caller knows them.
type API int

const (
	// Subscriptions is /v1/subscriptions: every destination kind, with its
	// settings in the destination object ("destination.url").
	Subscriptions API = iota
	// Webhooks is /v1/webhooks: only webhook subscriptions, whose URL and
	// custom headers are the top-level "webhook_url" and "custom_headers".
	Webhooks
)

// Resource is what the API calls a subscription: "webhook" or "subscription".
func (a API) Resource() string {
	if a == Webhooks {
		return "webhook"
	}
	return "subscription"
}

// urlField names a webhook's URL in errors.
func (a API) urlField() string {
	if a == Webhooks {
		return "webhook_url"
	}
	return "destination.url"
}

// headersField names a webhook's custom headers in errors.
func (a API) headersField() string {
	if a == Webhooks {
		return "custom_headers"
	}
	return "destination.custom_headers"
}

// Store is what the service needs of the store.
type Store interface {
	CreateSubscription(ctx context.Context, s store.Subscription) error
	GetSubscription(ctx context.Context, projectID, id string) (store.Subscription, error)
	ListSubscriptions(ctx context.Context, projectID string) ([]store.Subscription, error)
	UpdateSubscription(ctx context.Context, s store.Subscription) error
	SetSubscriptionActive(ctx context.Context, projectID, id string, active bool, reason string, at time.Time) error
	DeleteSubscription(ctx context.Context, projectID, id string) error
	GetDelivery(ctx context.Context, projectID, id string) (store.Delivery, error)
	ReplayDelivery(ctx context.Context, projectID, subscriptionID, deliveryID string, now time.Time) (store.Delivery, error)
	RecoverDeliveries(ctx context.Context, f store.RecoverFilter, now time.Time) (int, error)
}

// Publisher publishes events (the test event).
type Publisher interface {
	Publish(ctx context.Context, in ingest.Input) (ingest.Result, error)
}

// Queues finds a project's pull queue by id or name, for queue destinations.
type Queues interface {
	Resolve(ctx context.Context, projectID, ref string) (store.Queue, error)
}

// Deps are what the service needs from the rest of Carrier.
type Deps struct {
	Store Store
	// Destinations are the destination kinds a subscription may have: the
	// registry the delivery engine sends with.
	Destinations *dest.Registry
	// Guard checks every address a subscription names.
	Guard *netguard.Guard
	// Queues resolves queue destinations; nil refuses them.
	Queues Queues
	// Publisher publishes test events.
	Publisher Publisher
	// Refresh makes this node's matcher see a change at once (force: reload
	// even if the store's subscription version seems unchanged); nil when
	// there is no matcher.
	Refresh func(ctx context.Context, force bool) error
	// Wake tells the delivery engine that deliveries may have become due.
	Wake func()
	// RotationOverlap is how long a rotated-out secret keeps signing unless
	// the rotation says otherwise.
	RotationOverlap time.Duration
	// MaxSubscriptions is the most subscriptions one project may have
	// (CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT; 0: no limit).
	MaxSubscriptions int
	Log              *slog.Logger
}

// Service runs subscriptions. Its methods are safe for concurrent use.
type Service struct {
	d Deps
}

// New returns the service.
func New(d Deps) *Service {
	if d.Wake == nil {
		d.Wake = func() {}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{d: d}
}

// NotFoundError is the answer for a subscription or delivery that does not
// exist in the project (or, through the Webhooks API, is not a webhook).
// It wraps store.ErrNotFound.
type NotFoundError struct {
	// What is "webhook", "subscription" or "delivery".
	What string
}

func (e *NotFoundError) Error() string { return e.What + " not found" }

// Unwrap returns store.ErrNotFound.
func (e *NotFoundError) Unwrap() error { return store.ErrNotFound }

// LimitError refuses a change that would take a project past one of its
// limits (the subscription quota).
type LimitError struct{ Message string }

func (e *LimitError) Error() string { return e.Message }

// InFlightError refuses to replay a delivery while an attempt of it is
// under way. It wraps store.ErrConflict.
type InFlightError struct{}

func (e *InFlightError) Error() string {
	return "an attempt for this delivery is in flight; try again when it finishes"
}

// Unwrap returns store.ErrConflict.
func (e *InFlightError) Unwrap() error { return store.ErrConflict }

// Refusal tells an error the service made to refuse a request (the quota's)
// from a failure, and returns its message, for other fronts (the 2captcha
// front's pingback subscriptions) to pass on in their own shape.
func Refusal(err error) (message string, ok bool) {
	var l *LimitError
	if errors.As(err, &l) {
		return l.Message, true
	}
	return "", false
}

// CheckQuota tells whether a project may have one more subscription (of any
// kind, pingback subscriptions included): at most Deps.MaxSubscriptions, so
// one project cannot make every publish fan out to thousands of deliveries.
func (s *Service) CheckQuota(ctx context.Context, projectID string) error {
	if s.d.MaxSubscriptions <= 0 {
		return nil
	}
	subs, err := s.d.Store.ListSubscriptions(ctx, projectID)
	if err != nil {
		return err
	}
	if len(subs) >= s.d.MaxSubscriptions {
		return &LimitError{Message: fmt.Sprintf("the project has %d subscriptions, the most CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT allows; delete one first", len(subs))}
	}
	return nil
}

// Defaults from the webhooks source document.
const (
	defaultTimeout    = 10
	defaultRetries    = 3
	defaultMultiplier = 2.0
)

// Create validates in and stores a new subscription of projectID. A webhook
// gets a signing secret, returned in the subscription's Secret: it is shown
// once.
func (s *Service) Create(ctx context.Context, projectID string, in Input) (store.Subscription, error) {
	if err := s.CheckQuota(ctx, projectID); err != nil {
		return store.Subscription{}, err
	}
	t := clock.Now()
	sub := store.Subscription{
		ID: clock.NewID(), ProjectID: projectID, Scope: "all",
		TimeoutSeconds: defaultTimeout, MaxRetries: defaultRetries, BackoffMultiplier: defaultMultiplier,
		Active: true, CreatedAt: t, UpdatedAt: t,
	}
	if in.API == Webhooks {
		sub.Kind = webhook.Kind
	}
	if err := s.apply(ctx, in, &sub, true); err != nil {
		return store.Subscription{}, err
	}
	if sub.Kind == webhook.Kind {
		secret, err := newSecret()
		if err != nil {
			return store.Subscription{}, err
		}
		sub.Secret = secret
	}
	if err := s.d.Store.CreateSubscription(ctx, sub); err != nil {
		return store.Subscription{}, err
	}
	s.changed(ctx)
	return sub, nil
}

// Get returns subscription id of projectID.
func (s *Service) Get(ctx context.Context, projectID, id string, api API) (store.Subscription, error) {
	sub, err := s.d.Store.GetSubscription(ctx, projectID, id)
	if err == nil && api == Webhooks && sub.Kind != webhook.Kind {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return sub, &NotFoundError{What: api.Resource()}
	}
	return sub, err
}

// List returns projectID's subscriptions (through the Webhooks API, its
// webhooks).
func (s *Service) List(ctx context.Context, projectID string, api API) ([]store.Subscription, error) {
	subs, err := s.d.Store.ListSubscriptions(ctx, projectID)
	if err != nil || api != Webhooks {
		return subs, err
	}
	var out []store.Subscription
	for _, sub := range subs {
		if sub.Kind == webhook.Kind {
			out = append(out, sub)
		}
	}
	return out, nil
}

// Update validates in and applies the fields it sets to subscription id:
// fields it leaves nil are kept.
func (s *Service) Update(ctx context.Context, projectID, id string, in Input) (store.Subscription, error) {
	sub, err := s.Get(ctx, projectID, id, in.API)
	if err != nil {
		return sub, err
	}
	if err := s.apply(ctx, in, &sub, false); err != nil {
		return store.Subscription{}, err
	}
	sub.UpdatedAt = clock.Now()
	if err := s.d.Store.UpdateSubscription(ctx, sub); err != nil {
		return store.Subscription{}, err
	}
	s.changed(ctx)
	return sub, nil
}

// Delete removes subscription id with its deliveries and attempts.
func (s *Service) Delete(ctx context.Context, projectID, id string, api API) error {
	if _, err := s.Get(ctx, projectID, id, api); err != nil {
		return err
	}
	if err := s.d.Store.DeleteSubscription(ctx, projectID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{What: api.Resource()}
		}
		return err
	}
	s.changed(ctx)
	return nil
}

// SetActive activates subscription id (resetting its failure count, and
// sending the deliveries held while it was inactive) or deactivates it, and
// returns it as it is now.
func (s *Service) SetActive(ctx context.Context, projectID, id string, api API, active bool) (store.Subscription, error) {
	reason := ""
	if !active {
		reason = "deactivated by API"
	}
	if _, err := s.Get(ctx, projectID, id, api); err != nil {
		return store.Subscription{}, err
	}
	if err := s.d.Store.SetSubscriptionActive(ctx, projectID, id, active, reason, clock.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Subscription{}, &NotFoundError{What: api.Resource()}
		}
		return store.Subscription{}, err
	}
	s.changed(ctx)
	return s.Get(ctx, projectID, id, api)
}

// changed refreshes this node's matcher at once, so the next publish sees
// the change (other nodes follow within a second), and wakes the engine.
// Changed tells the matcher and the engine that subscriptions changed
// behind the service's back (a topic deleted with its subscriptions).
func (s *Service) Changed(ctx context.Context) { s.changed(ctx) }

func (s *Service) changed(ctx context.Context) {
	if s.d.Refresh != nil {
		if err := s.d.Refresh(ctx, true); err != nil {
			s.d.Log.Error("refresh matcher", "err", err)
		}
	}
	s.d.Wake()
}

// invalid is the field error for field.
func invalid(field, format string, args ...any) *dest.FieldError {
	return &dest.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// checkAddress checks url, named field, against the SSRF rules. A refusal
// wraps netguard.ErrBlocked and names the setting that allows such
// addresses, because the usual reason to meet it is pointing a destination at
// a receiver on one's own machine.
func (s *Service) checkAddress(ctx context.Context, field, url string) error {
	err := s.d.Guard.CheckURL(ctx, url)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netguard.ErrBlocked):
		return &dest.FieldError{Field: field, Err: err,
			Message: "is not allowed: " + err.Error() + "; loopback and private addresses are reachable only when " +
				"Carrier runs with CARRIER_ALLOW_PRIVATE_NETWORKS=true (or carrier serve --dev), for development and tests"}
	default:
		return invalid(field, "is not a valid destination: %v", err)
	}
}

// compactJSON returns raw without insignificant space.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
