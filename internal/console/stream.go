package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"carrier/internal/store"
)

// Live tails are server-sent events: the page's script opens an
// EventSource and adds what arrives (as text, never as HTML). A stream
// polls the store once a second and ends after streamLifetime; the
// browser's EventSource reconnects by itself.
const (
	streamPoll     = time.Second
	streamLifetime = 5 * time.Minute
)

type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w: w, f: f}, true
}

func (s *sse) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

// liveDelivery is a delivery as a tail sends it.
type liveDelivery struct {
	ID           string `json:"id"`
	Created      string `json:"created"`
	Subscription string `json:"subscription"`
	Type         string `json:"type"`
	State        string `json:"state"`
	Attempts     int    `json:"attempts"`
	Status       int    `json:"status"`
	Error        string `json:"error"`
	URL          string `json:"url"`
}

func live(d store.Delivery, names map[string]string, prefix string) liveDelivery {
	return liveDelivery{ID: d.ID, Created: d.CreatedAt.UTC().Format("2006-01-02 15:04:05.000"), Subscription: names[d.SubscriptionID],
		Type: d.EventType, State: d.State, Attempts: d.Attempts, Status: d.LastStatus, Error: d.LastError, URL: prefix + "/deliveries/" + d.ID}
}

// deliveriesTail streams the deliveries the filter selects that are created
// from now on, oldest first.
func (c *Console) deliveriesTail(w http.ResponseWriter, r *http.Request) {
	f := parseFilter(r.URL.Query())
	f.Order, f.After = "oldest", ""
	q, err := f.query(project(r), 100)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s, ok := startSSE(w)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	names, _ := c.subscriptionNames(r)
	q.After = &store.DeliveryCursor{CreatedAt: time.Now().Add(-2 * time.Second), ID: ""}
	deadline := time.Now().Add(streamLifetime)
	for i := 0; time.Now().Before(deadline); i++ {
		ds, err := c.d.Store.DeliveryLog(r.Context(), q)
		if err != nil {
			return
		}
		for _, d := range ds {
			if s.send("delivery", live(d, names, c.prefix)) != nil {
				return
			}
			q.After = &store.DeliveryCursor{CreatedAt: d.CreatedAt, ID: d.ID}
		}
		if i%15 == 0 && s.send("ping", map[string]any{}) != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(streamPoll):
		}
	}
}

// liveAttempt is an attempt as the delivery page's tail sends it.
type liveAttempt struct {
	Number   int    `json:"number"`
	At       string `json:"at"`
	Status   int    `json:"status"`
	Duration int64  `json:"duration_ms"`
	Code     string `json:"error_code"`
	Message  string `json:"error_message"`
	Response string `json:"response"`
	Headers  string `json:"headers"`
	Class    string `json:"class"`
}

// deliveryStream streams a delivery's state and each attempt made from now on.
func (c *Console) deliveryStream(w http.ResponseWriter, r *http.Request) {
	ctx, pid, id := r.Context(), project(r), r.PathValue("id")
	if _, err := c.d.Store.GetDelivery(ctx, pid, id); err != nil {
		c.fail(w, r, err)
		return
	}
	seen := -1
	if v := r.URL.Query().Get("seen"); v != "" {
		fmt.Sscan(v, &seen)
	}
	s, ok := startSSE(w)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	lastState := ""
	deadline := time.Now().Add(streamLifetime)
	for i := 0; time.Now().Before(deadline); i++ {
		d, err := c.d.Store.GetDelivery(ctx, pid, id)
		if err != nil {
			return
		}
		attempts, err := c.d.Store.ListAttempts(ctx, pid, id)
		if err != nil {
			return
		}
		for _, a := range attempts {
			if a.Number <= seen {
				continue
			}
			seen = a.Number
			if s.send("attempt", liveAttempt{Number: a.Number, At: a.CreatedAt.UTC().Format("2006-01-02 15:04:05.000"), Status: a.StatusCode,
				Duration: a.DurationMS, Code: a.ErrorCode, Message: a.ErrorMessage, Response: a.ResponseBody, Headers: a.ResponseHeaders, Class: errorClass(a)}) != nil {
				return
			}
		}
		if d.State != lastState {
			lastState = d.State
			next := ""
			if d.State == store.StateRetrying || d.State == store.StatePending {
				next = d.NextAttemptAt.UTC().Format("2006-01-02 15:04:05")
			}
			if s.send("state", map[string]any{"state": d.State, "attempts": d.Attempts, "next_attempt": next}) != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(streamPoll):
		}
	}
}
