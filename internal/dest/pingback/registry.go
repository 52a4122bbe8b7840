package pingback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"carrier/internal/clock"
	"carrier/internal/filter"
	"carrier/internal/store"
)

// Retry settings of the pingback subscriptions Carrier makes: ten retries,
// doubling from CARRIER_RETRY_BASE, so a receiver may be down for many hours
// before a pingback fails (and then it is kept, listed and replayable).
const (
	DefaultTimeoutSeconds = 10
	DefaultMaxRetries     = 10
	DefaultMultiplier     = 2
)

// EventTypes are the task events a pingback is sent for: every decided task.
var EventTypes = []string{"task.solved", "task.failed", "task.expired"}

// namespace makes a pingback subscription's id from its project and host, so
// that every process, racing or not, makes the same subscription for a host.
var namespace = uuid.MustParse("5b0c7f5e-8a43-4d0e-9b59-0f3c1e6b2a11")

// Registry keeps one pingback subscription per (project, host). 2captcha's
// add_pingback, get_pingback and del_pingback manage them, and in.php makes
// the one a pingback URL needs.
type Registry struct {
	Store store.Store
	// Refresh makes the matcher see subscription changes (force: reload even
	// if the store's subscription version seems unchanged).
	Refresh func(ctx context.Context, force bool) error
	// Quota, when set, tells whether the project may have one more
	// subscription; Ensure returns its error instead of making one.
	Quota func(ctx context.Context, projectID string) error
}

// SubscriptionID is the id of the pingback subscription of a project's host.
func SubscriptionID(projectID, host string) string {
	return uuid.NewSHA1(namespace, []byte(projectID+"\x00"+host)).String()
}

// Ensure makes sure the host's pingback subscription exists and that this
// process's matcher knows it, so a task event published next reaches it.
func (r *Registry) Ensure(ctx context.Context, projectID, host string) (store.Subscription, error) {
	id := SubscriptionID(projectID, host)
	sub, err := r.Store.GetSubscription(ctx, projectID, id)
	if err == nil {
		// Made earlier, perhaps by another process a moment ago.
		return sub, r.refresh(ctx, false)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return sub, fmt.Errorf("pingback subscription for %s: %w", host, err)
	}
	if r.Quota != nil {
		if err := r.Quota(ctx, projectID); err != nil {
			return sub, err
		}
	}
	sub = newSubscription(projectID, host)
	if err := r.Store.CreateSubscription(ctx, sub); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return sub, fmt.Errorf("create pingback subscription for %s: %w", host, err)
		}
		// Another process made it first: same id, same settings.
		if sub, err = r.Store.GetSubscription(ctx, projectID, id); err != nil {
			return sub, fmt.Errorf("pingback subscription for %s: %w", host, err)
		}
	}
	return sub, r.refresh(ctx, true)
}

// List returns the project's pingback subscriptions.
func (r *Registry) List(ctx context.Context, projectID string) ([]store.Subscription, error) {
	subs, err := r.Store.ListSubscriptions(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("list pingback subscriptions: %w", err)
	}
	out := subs[:0]
	for _, s := range subs {
		if s.Kind == Kind {
			out = append(out, s)
		}
	}
	return out, nil
}

// Hosts are the hosts of the project's pingback subscriptions, in creation order.
func (r *Registry) Hosts(ctx context.Context, projectID string) ([]string, error) {
	subs, err := r.List(ctx, projectID)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(subs))
	for _, s := range subs {
		if c, err := ParseConfig(s.Destination); err == nil {
			hosts = append(hosts, c.Host)
		}
	}
	return hosts, nil
}

// Delete removes the pingback subscription of host ("all": every one of the
// project's), with its delivery history, and returns how many it removed.
func (r *Registry) Delete(ctx context.Context, projectID, host string) (int, error) {
	var ids []string
	if host == "all" {
		subs, err := r.List(ctx, projectID)
		if err != nil {
			return 0, err
		}
		for _, s := range subs {
			ids = append(ids, s.ID)
		}
	} else {
		ids = []string{SubscriptionID(projectID, host)}
	}
	n := 0
	for _, id := range ids {
		err := r.Store.DeleteSubscription(ctx, projectID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("delete pingback subscription: %w", err)
		}
		n++
	}
	if n > 0 {
		return n, r.refresh(ctx, true)
	}
	return 0, nil
}

func (r *Registry) refresh(ctx context.Context, force bool) error {
	if r.Refresh == nil {
		return nil
	}
	return r.Refresh(ctx, force)
}

// newSubscription is the pingback subscription of a project's host.
func newSubscription(projectID, host string) store.Subscription {
	at := clock.Now()
	settings, _ := json.Marshal(Config{Host: host})
	policy, _ := json.Marshal(map[string][]string{AttrHost: {host}})
	return store.Subscription{
		ID: SubscriptionID(projectID, host), ProjectID: projectID,
		Name:        "pingbacks to " + host,
		Description: "Results of tasks whose in.php pingback URL is on " + strings.TrimSpace(host) + ", sent as 2captcha sends them. Made by Carrier; edit its retries or timeout as for any subscription.",
		Kind:        Kind, URL: "pingback:" + host, Destination: settings,
		FilterPolicy: policy, FilterScope: filter.ScopeAttributes,
		EventTypes: EventTypes, Scope: "all",
		TimeoutSeconds: DefaultTimeoutSeconds, MaxRetries: DefaultMaxRetries, BackoffMultiplier: DefaultMultiplier,
		Active: true, CreatedAt: at, UpdatedAt: at,
	}
}
