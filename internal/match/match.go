// Package match decides which subscriptions want an event. It keeps an
// in-memory index of the subscriptions, rebuilt when they change, so the
// publish path never queries subscriptions.
package match

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"carrier/internal/filter"
	"carrier/internal/store"
)

// TypeMatches reports whether an event type matches a subscription pattern:
// an exact type, "*" for every type, or "prefix.*" for every type under prefix.
func TypeMatches(pattern, eventType string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(eventType, pattern[:len(pattern)-1])
	default:
		return pattern == eventType
	}
}

type entry struct {
	id       string
	exact    map[string]bool
	patterns []string
	subjects map[string]bool // nil: scope all
	policy   *filter.Policy  // nil: no filter policy
	fifo     bool            // the subscription keeps FIFO order per ordering key
}

func (e *entry) wants(ev Event, body *decodedBody) bool {
	if e.subjects != nil && !e.subjects[ev.Subject] {
		return false
	}
	if !e.exact[ev.Type] && !e.matchesPattern(ev.Type) {
		return false
	}
	switch {
	case e.policy == nil:
		return true
	case e.policy.Scope() == filter.ScopeBody:
		return e.policy.MatchBody(body.get(ev.Data))
	default:
		return e.policy.MatchAttributes(ev.Attributes)
	}
}

// decodedBody decodes an event's data once, for every body-scope policy.
type decodedBody struct {
	done bool
	v    any
}

func (b *decodedBody) get(data []byte) any {
	if !b.done {
		b.done = true
		if json.Unmarshal(data, &b.v) != nil {
			b.v = nil
		}
	}
	return b.v
}

func (e *entry) matchesPattern(eventType string) bool {
	for _, p := range e.patterns {
		if TypeMatches(p, eventType) {
			return true
		}
	}
	return false
}

// Event is what matching looks at.
type Event struct {
	Type       string
	Subject    string
	Attributes map[string]string
	Data       []byte // JSON, for filter policies with body scope
}

// Index is an immutable snapshot of the subscriptions by project.
type Index struct {
	byProject map[string][]*entry
}

// NewIndex builds an index from subscriptions. Inactive ones match too: their
// deliveries wait as pending until the subscription is activated (the engine
// claims only active subscriptions' deliveries), so nothing published while a
// webhook is deactivated or auto-disabled is lost.
func NewIndex(subs []store.Subscription) *Index {
	ix := &Index{byProject: map[string][]*entry{}}
	for _, s := range subs {
		e := &entry{id: s.ID, exact: map[string]bool{}, fifo: s.Ordering == store.OrderingFIFO}
		for _, t := range s.EventTypes {
			if t == "*" || strings.HasSuffix(t, ".*") {
				e.patterns = append(e.patterns, t)
			} else {
				e.exact[t] = true
			}
		}
		if len(s.FilterPolicy) > 0 {
			// Policies are validated when saved; one that no longer compiles
			// filters nothing rather than dropping events.
			if p, err := filter.Compile(s.FilterPolicy, s.FilterScope); err == nil {
				e.policy = p
			}
		}
		if s.Scope == "specific" {
			e.subjects = map[string]bool{}
			for _, id := range s.SubjectIDs {
				e.subjects[id] = true
			}
		}
		ix.byProject[s.ProjectID] = append(ix.byProject[s.ProjectID], e)
	}
	return ix
}

// Match returns the ids of the subscriptions of a project that want an event:
// its type matches, its subject is in scope, and its filter policy (if any) matches.
func (ix *Index) Match(projectID string, ev Event) []string {
	var ids []string
	var body decodedBody
	for _, e := range ix.byProject[projectID] {
		if e.wants(ev, &body) {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// MatchesFIFO says whether a subscription of the project that keeps FIFO
// order wants the event.
func (ix *Index) MatchesFIFO(projectID string, ev Event) bool {
	var body decodedBody
	for _, e := range ix.byProject[projectID] {
		if e.fifo && e.wants(ev, &body) {
			return true
		}
	}
	return false
}

// Source is what the matcher reads of the store: every subscription, and
// the version that tells when they changed.
type Source interface {
	AllSubscriptions(ctx context.Context) ([]store.Subscription, error)
	SubscriptionsVersion(ctx context.Context) (int64, error)
}

// Matcher keeps an Index current with the store.
type Matcher struct {
	store   Source
	index   atomic.Pointer[Index]
	mu      sync.Mutex // serialises reloads
	version int64
}

// NewMatcher loads the subscriptions and returns a Matcher over them.
func NewMatcher(ctx context.Context, s Source) (*Matcher, error) {
	m := &Matcher{store: s}
	if err := m.Refresh(ctx, true); err != nil {
		return nil, err
	}
	return m, nil
}

// Index returns the current snapshot.
func (m *Matcher) Index() *Index { return m.index.Load() }

// Refresh reloads the index when the store's subscriptions version has moved
// (or always, with force). Other nodes' changes arrive through the version.
func (m *Matcher) Refresh(ctx context.Context, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.store.SubscriptionsVersion(ctx)
	if err != nil {
		return fmt.Errorf("refresh matcher: %w", err)
	}
	if !force && v == m.version && m.index.Load() != nil {
		return nil
	}
	subs, err := m.store.AllSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("refresh matcher: %w", err)
	}
	m.index.Store(NewIndex(subs))
	m.version = v
	return nil
}
