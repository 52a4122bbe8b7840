package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Subscriptions the harness creates: every event reaches plain, chaos.even
// events reach fifo (ordered per key), chaos.odd events reach odd, so that
// "every matching subscription" is more than "every subscription". While the
// database is unreachable a node refuses (503) the publishes a FIFO
// subscription wants rather than spool them, and spools the odd ones: both
// paths run under the faults.
var subscriptions = []struct {
	name, types, ordering string
}{
	{"plain", "chaos.*", ""},
	{"fifo", "chaos.even", "fifo"},
	{"odd", "chaos.odd", ""},
}

// Accepted is one event the API answered 202 for.
type Accepted struct {
	EventID, Key, Type string
	Seq                int   // position in its key's publish order
	Sent, Acked        int64 // unix microseconds
	Spooled            bool
}

// Load publishes through the REST API: one worker per ordering key, each
// publishing its key's events one at a time (so each key has a defined
// order), spread over the nodes that run.
type Load struct {
	Nodes []*Node
	Rate  int // events a second, over all keys
	Keys  int

	client   *http.Client
	mu       sync.Mutex
	accepted []Accepted
	refused  atomic.Int64 // answered, not 202
	failed   atomic.Int64 // no answer (node down, paused, timeout)
	next     atomic.Int64
}

// CreateSubscriptions creates the harness's webhooks named in only (all when
// empty) through node and returns their ids by name.
func CreateSubscriptions(ctx context.Context, node *Node, sink *Sink, only []string) (map[string]string, error) {
	ids := map[string]string{}
	for _, s := range subscriptions {
		if len(only) > 0 && !slices.Contains(only, s.name) {
			continue
		}
		body := map[string]any{"name": s.name, "webhook_url": sink.URL(s.name), "event_types": []string{s.types},
			"timeout_seconds": 2, "max_retries": 10, "retry_backoff_multiplier": 2, "ordering": s.ordering}
		var out struct {
			WebhookID string `json:"webhook_id"`
		}
		if code, err := call(ctx, http.DefaultClient, node, "POST", "/v1/webhooks", body, &out); err != nil || code != http.StatusCreated {
			return nil, fmt.Errorf("create webhook %s: %d %v", s.name, code, err)
		}
		ids[s.name] = out.WebhookID
	}
	return ids, nil
}

// Activate activates every subscription again: a sink that failed for a
// while can have them disabled (ten failures in a row), which an operator
// would undo the same way.
func Activate(ctx context.Context, nodes []*Node, ids map[string]string) error {
	var last error
	for _, id := range ids {
		done := false
		for _, n := range nodes {
			if !n.Running() {
				continue
			}
			if code, err := call(ctx, http.DefaultClient, n, "PUT", "/v1/webhooks/"+id+"/activate", nil, nil); err == nil && code == http.StatusOK {
				done = true
				break
			} else {
				last = fmt.Errorf("activate %s: %d %v", id, code, err)
			}
		}
		if !done {
			return last
		}
	}
	return nil
}

// Run publishes until ctx ends.
func (l *Load) Run(ctx context.Context) {
	l.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: l.Keys}}
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) * float64(l.Keys) / float64(l.Rate))
	for k := range l.Keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ctx, fmt.Sprintf("key-%02d", k), k, every)
		}()
	}
	wg.Wait()
}

func (l *Load) worker(ctx context.Context, key string, k int, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	seq := 0
	for i := k; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := l.pick(i)
		typ := "chaos.even"
		if l.next.Add(1)%2 == 1 {
			typ = "chaos.odd"
		}
		body := map[string]any{"type": typ, "ordering_key": key, "data": map[string]any{"key": key, "seq": seq}}
		var out struct {
			EventID string `json:"event_id"`
			Spooled bool   `json:"spooled"`
		}
		sent := time.Now()
		code, err := call(ctx, l.client, n, "POST", "/v1/events", body, &out)
		switch {
		case err != nil:
			l.failed.Add(1)
		case code != http.StatusAccepted:
			l.refused.Add(1)
		default:
			l.mu.Lock()
			l.accepted = append(l.accepted, Accepted{EventID: out.EventID, Key: key, Type: typ, Seq: seq,
				Sent: sent.UnixMicro(), Acked: time.Now().UnixMicro(), Spooled: out.Spooled})
			l.mu.Unlock()
			seq++
		}
	}
}

// pick chooses a running node, round robin from i.
func (l *Load) pick(i int) *Node {
	for j := range l.Nodes {
		if n := l.Nodes[(i+j)%len(l.Nodes)]; n.Running() {
			return n
		}
	}
	return l.Nodes[i%len(l.Nodes)]
}

// Accepted returns the events accepted so far.
func (l *Load) Accepted() []Accepted {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Accepted(nil), l.accepted...)
}

func call(ctx context.Context, client *http.Client, n *Node, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.Addr+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil && resp.StatusCode < 300 {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			return resp.StatusCode, err
		}
		if err := json.Unmarshal(env.Data, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}
