package cluster

import (
	"context"
	"sync"
)

// Topics a node notifies the others of.
const (
	// TopicSubscriptions: subscriptions changed; matchers reload.
	TopicSubscriptions = "subscriptions"
	// TopicDeliveries: deliveries were published or became due; engines claim.
	TopicDeliveries = "deliveries"
	// TopicQueue: a message became visible in the queue named by the payload
	// (its id); long polls on it look again.
	TopicQueue = "queue"
	// TopicKeys: an API key was revoked; key caches drop what they hold.
	TopicKeys = "keys"
)

// Notifier tells every node of the cluster (this one included) that
// something changed. Notifications are hints, not data: a listener
// re-reads the store, so a lost or repeated notification costs only
// latency (the slow polls catch up) or a read.
type Notifier interface {
	// Notify sends topic and payload to every listener of the cluster. It
	// does not block; notifications sent close together may be merged.
	Notify(topic, payload string)
	// Listen calls fn for every notification of topic, and with payload ""
	// when notifications may have been missed (a reconnection), so that fn
	// re-reads everything. fn must return quickly. Call Listen before Run.
	Listen(topic string, fn func(payload string))
	// Run delivers notifications until ctx ends.
	Run(ctx context.Context)
}

// Listeners is the topic → callbacks table every notifier dispatches with.
type Listeners struct {
	mu  sync.Mutex
	fns map[string][]func(string)
}

// Add registers fn for topic.
func (l *Listeners) Add(topic string, fn func(string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fns == nil {
		l.fns = map[string][]func(string){}
	}
	l.fns[topic] = append(l.fns[topic], fn)
}

// Dispatch calls topic's listeners with payload.
func (l *Listeners) Dispatch(topic, payload string) {
	l.mu.Lock()
	fns := l.fns[topic]
	l.mu.Unlock()
	for _, fn := range fns {
		fn(payload)
	}
}

// Topics returns every topic with a listener.
func (l *Listeners) Topics() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.fns))
	for t := range l.fns {
		out = append(out, t)
	}
	return out
}

// Local is the notifier of a cluster of one process (SQLite): a
// notification goes straight to this process's listeners.
type Local struct {
	Listeners
}

// Notify calls the listeners of topic.
func (n *Local) Notify(topic, payload string) { n.Dispatch(topic, payload) }

// Listen registers fn for topic.
func (n *Local) Listen(topic string, fn func(string)) { n.Add(topic, fn) }

// Run does nothing: Local delivers as Notify is called.
func (n *Local) Run(ctx context.Context) { <-ctx.Done() }
