package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"carrier/internal/dest/webhook"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// States a delivery can be in, in the order filters show them.
var states = []string{store.StatePending, store.StateRetrying, store.StateDelivered, store.StateFailed}

// logFilter is the delivery log's filter as the form sends it.
type logFilter struct {
	States       []string
	Subscription string
	EventType    string
	Status       string // "2xx" … "5xx", "none"
	From, To     string // datetime-local, UTC
	Search       string
	Order        string // "newest" (default) or "oldest"
	After        string // cursor: "<ms>.<id>"
}

func parseFilter(q url.Values) logFilter {
	f := logFilter{Subscription: q.Get("subscription"), EventType: strings.TrimSpace(q.Get("type")), Status: q.Get("status"),
		From: q.Get("from"), To: q.Get("to"), Search: strings.TrimSpace(q.Get("q")), Order: q.Get("order"), After: q.Get("after")}
	for _, s := range q["state"] {
		for _, known := range states {
			if s == known {
				f.States = append(f.States, s)
			}
		}
	}
	return f
}

// timeLayouts are what a datetime-local input sends.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

func parseTime(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("%q is not a time (YYYY-MM-DDTHH:MM, UTC)", s)
}

// query turns the filter into a store query for project.
func (f logFilter) query(project string, limit int) (store.DeliveryQuery, error) {
	q := store.DeliveryQuery{ProjectID: project, States: f.States, SubscriptionID: f.Subscription, EventType: f.EventType,
		Search: f.Search, Oldest: f.Order == "oldest", Limit: limit}
	switch f.Status {
	case "2xx", "3xx", "4xx", "5xx":
		q.StatusClass = int(f.Status[0] - '0')
	case "none":
		q.StatusClass = -1
	}
	var err error
	if q.From, err = parseTime(f.From); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseTime(f.To); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	if f.After != "" {
		msPart, id, ok := strings.Cut(f.After, ".")
		n, err := strconv.ParseInt(msPart, 10, 64)
		if !ok || err != nil || id == "" {
			return q, errors.New("after: not a cursor of this log")
		}
		q.After = &store.DeliveryCursor{CreatedAt: time.UnixMilli(n).UTC(), ID: id}
	}
	return q, nil
}

// values is the filter as a query string, without the cursor.
func (f logFilter) values() url.Values {
	v := url.Values{}
	for _, s := range f.States {
		v.Add("state", s)
	}
	for k, val := range map[string]string{"subscription": f.Subscription, "type": f.EventType, "status": f.Status, "from": f.From,
		"to": f.To, "q": f.Search, "order": f.Order} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

func (f logFilter) HasState(s string) bool {
	for _, x := range f.States {
		if x == s {
			return true
		}
	}
	return false
}

// row is one delivery as the log shows it.
type row struct {
	store.Delivery
	Subscription string
}

type logData struct {
	Filter        logFilter
	States        []string
	Rows          []row
	Next          string // query string of the next page ("" at the end)
	Query         string // the filter as a query string
	Subscriptions []store.Subscription
	ServerMS      float64
}

const logPage = 50

func (c *Console) subscriptionNames(r *http.Request) (map[string]string, []store.Subscription) {
	subs, _ := c.d.Subscriptions.List(r.Context(), project(r), subscription.Subscriptions)
	names := make(map[string]string, len(subs))
	for _, s := range subs {
		names[s.ID] = s.Name
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	return names, subs
}

// deliveries is the delivery log.
func (c *Console) deliveries(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	f := parseFilter(r.URL.Query())
	data := logData{Filter: f, States: states, Query: f.values().Encode()}
	names, subs := c.subscriptionNames(r)
	data.Subscriptions = subs
	q, err := f.query(project(r), logPage)
	if err != nil {
		r.URL.RawQuery += "&error=" + url.QueryEscape(err.Error())
		c.render(w, r, "deliveries", "Deliveries", data, http.StatusBadRequest)
		return
	}
	ds, err := c.d.Store.DeliveryLog(r.Context(), q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, d := range ds {
		data.Rows = append(data.Rows, row{Delivery: d, Subscription: names[d.SubscriptionID]})
	}
	if len(ds) == logPage {
		last := ds[len(ds)-1]
		v := f.values()
		v.Set("after", fmt.Sprintf("%d.%s", last.CreatedAt.UnixMilli(), last.ID))
		data.Next = v.Encode()
	}
	data.ServerMS = float64(time.Since(start).Microseconds()) / 1000
	w.Header().Set("Server-Timing", fmt.Sprintf("log;dur=%.2f", data.ServerMS))
	c.render(w, r, "deliveries", "Deliveries", data, http.StatusOK)
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c.d.Log.Error("console", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// attemptView is one attempt as the timeline shows it.
type attemptView struct {
	store.Attempt
	Class string // the error's class: network, timeout, http, …
}

type deliveryData struct {
	Delivery     store.Delivery
	Subscription store.Subscription
	Destination  string
	Event        store.Event
	Attempts     []attemptView
	Request      string // the request body as sent (webhooks), pretty
	Headers      []string
	Curl         string
}

// delivery is a delivery's detail: its attempts, the request, replay.
func (c *Console) delivery(w http.ResponseWriter, r *http.Request) {
	ctx, pid := r.Context(), project(r)
	d, err := c.d.Store.GetDelivery(ctx, pid, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := deliveryData{Delivery: d}
	data.Subscription, _ = c.d.Subscriptions.Get(ctx, pid, d.SubscriptionID, subscription.Subscriptions)
	if k, ok := c.d.Destinations.Lookup(data.Subscription.Kind); ok {
		data.Destination = k.Summary(destinationSettings(k, data.Subscription))
	}
	if data.Event, err = c.d.Store.GetEvent(ctx, pid, d.EventID); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, err)
		return
	}
	attempts, err := c.d.Store.ListAttempts(ctx, pid, d.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, a := range attempts {
		data.Attempts = append(data.Attempts, attemptView{Attempt: a, Class: errorClass(a)})
	}
	if data.Subscription.Kind == webhook.Kind || data.Subscription.Kind == "" {
		body, _ := webhook.Body(data.Event)
		var pretty strings.Builder
		enc := json.NewEncoder(&pretty)
		enc.SetIndent("", "  ")
		var v any
		json.Unmarshal(body, &v)
		enc.Encode(v)
		data.Request = pretty.String()
		data.Headers = []string{"Content-Type: application/json", "User-Agent: " + webhook.UserAgent, "webhook-id: " + d.ID,
			"webhook-timestamp: <unix seconds of the attempt>", "webhook-signature: v1,<redacted>", "X-Webhook-Event: " + d.EventType,
			"X-Webhook-Delivery-Id: " + d.ID}
		names := make([]string, 0, len(data.Subscription.Headers))
		for name := range data.Subscription.Headers {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			data.Headers = append(data.Headers, name+": ***hidden***")
		}
		data.Curl = curl(data.Subscription.URL, data.Headers, string(body))
	}
	c.render(w, r, "delivery", "Delivery "+d.ID, data, http.StatusOK)
}

// destinationSettings is the destination object a kind summarises.
func destinationSettings(k interface{ Name() string }, sub store.Subscription) json.RawMessage {
	if cs, ok := k.(interface {
		Settings(store.Subscription) json.RawMessage
	}); ok {
		return cs.Settings(sub)
	}
	return sub.Destination
}

// errorClass groups an attempt's error code for the timeline.
func errorClass(a store.Attempt) string {
	switch code := a.ErrorCode; {
	case code == "":
		if a.StatusCode >= 200 && a.StatusCode < 300 {
			return "delivered"
		}
		return ""
	case strings.HasPrefix(code, "http_"), code == "redirect_not_followed", code == "endpoint_gone":
		return "http"
	case strings.Contains(code, "timeout"):
		return "timeout"
	case strings.Contains(code, "ssrf"), code == "url_not_allowed":
		return "blocked"
	case strings.Contains(code, "dns"), strings.Contains(code, "connection"), strings.Contains(code, "tls"), strings.Contains(code, "network"):
		return "network"
	}
	return "other"
}

// curl is a shell command that sends the request again, secrets left out.
func curl(u string, headers []string, body string) string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	var b strings.Builder
	b.WriteString("curl -X POST " + q(u))
	for _, h := range headers {
		b.WriteString(" \\\n  -H " + q(h))
	}
	b.WriteString(" \\\n  --data-raw " + q(body))
	return b.String()
}

// replay sends a delivery again (a new attempt, same webhook-id).
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	ctx, pid := r.Context(), project(r)
	d, err := c.d.Store.GetDelivery(ctx, pid, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.d.Subscriptions.Replay(ctx, pid, d.SubscriptionID, d.ID, subscription.Subscriptions); err != nil {
		c.back(w, r, "/deliveries/"+d.ID, "", "Replay refused: "+err.Error())
		return
	}
	c.back(w, r, "/deliveries/"+d.ID, "Replay scheduled: a new attempt follows.", "")
}
