package dest

import (
	"context"
	"slices"
	"time"

	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// Registry holds every destination kind of a process by name. It is built
// once at start (internal/app) and then only read, so it needs no lock. It
// is the delivery engine's dispatch.Sender: each job goes to its kind.
type Registry struct {
	kinds map[string]Kind
	names []string
	// unset is the kind of subscriptions stored without one (rows older
	// than destination kinds, which are all webhooks).
	unset string
}

// NewRegistry returns an empty registry in which a subscription without a
// kind is of kind unset.
func NewRegistry(unset string) *Registry {
	return &Registry{kinds: map[string]Kind{}, unset: unset}
}

// Register adds k. Registering two kinds under one name is a wiring mistake
// and panics at start.
func (r *Registry) Register(k Kind) {
	name := k.Name()
	if _, dup := r.kinds[name]; dup {
		panic("dest: destination kind " + name + " registered twice")
	}
	r.kinds[name] = k
	r.names = append(r.names, name)
}

// Lookup returns the kind named name ("" is the registry's unset kind).
func (r *Registry) Lookup(name string) (Kind, bool) {
	if name == "" {
		name = r.unset
	}
	k, ok := r.kinds[name]
	return k, ok
}

// Names returns the names of the registered kinds in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Send sends job with the kind of its subscription; an unknown kind fails
// the attempt without a retry.
func (r *Registry) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	name := job.Subscription.Kind
	if name == "" {
		name = r.unset
	}
	k, ok := r.kinds[name]
	if !ok {
		return dispatch.Result{ErrorCode: "unknown_destination", ErrorMessage: "no sender for destination kind " + name}
	}
	return k.Send(ctx, job, at)
}
