package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// --- helpers ---

// apiExpectError checks an error answer: status, error.code and (when field is
// not "") error.field. A field such as "event_types[0]" or
// "custom_headers.X-Foo" names the field "event_types" / "custom_headers".
func apiExpectError(t *testing.T, what string, r apptest.Response, status int, code, field string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Errorf("%s: got %d %s, want %d with code %q", what, r.Status, r.Body, status, code)
		return
	}
	if r.JSON["success"] != false {
		t.Errorf("%s: success = %v, want false", what, r.JSON["success"])
	}
	if field != "" && !apiNamesField(r.ErrorField(), field) {
		t.Errorf("%s: error.field = %q, want %q (%s)", what, r.ErrorField(), field, r.Body)
	}
}

func apiNamesField(got, want string) bool {
	return got == want || strings.HasPrefix(got, want+"[") || strings.HasPrefix(got, want+".")
}

// apiDecodeExact decodes JSON keeping numbers as their exact text.
func apiDecodeExact(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// apiEventCount is how many events GET /v1/events lists for key.
func apiEventCount(t *testing.T, c *apptest.Carrier, key string) int {
	t.Helper()
	n, offset := 0, 0
	for page := 0; page < 1000; page++ { // pages stop at store.ListBytes too
		r := c.Do("GET", "/v1/events?limit=1000&offset="+strconv.Itoa(offset), key, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list events: %d %s", r.Status, r.Body)
		}
		n += len(r.List())
		meta, _ := r.JSON["meta"].(map[string]any)
		if meta["has_more"] != true {
			return n
		}
		offset = int(meta["next_offset"].(float64))
	}
	t.Fatal("list events: more than 1000 pages")
	return n
}

// apiWebhookCount is how many webhooks GET /v1/webhooks lists for key.
func apiWebhookCount(t *testing.T, c *apptest.Carrier, key string) int {
	t.Helper()
	r := c.Do("GET", "/v1/webhooks", key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list webhooks: %d %s", r.Status, r.Body)
	}
	return len(r.List())
}

// apiEventDeliveries returns the deliveries GET /v1/events/{id} shows.
func apiEventDeliveries(t *testing.T, c *apptest.Carrier, key, eventID string) []map[string]any {
	t.Helper()
	r := c.Do("GET", "/v1/events/"+eventID, key, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get event %s: %d %s", eventID, r.Status, r.Body)
	}
	raw, _ := r.Data()["deliveries"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// apiDeliveredTo lists the webhook ids an event has deliveries for, sorted.
func apiDeliveredTo(t *testing.T, c *apptest.Carrier, key, eventID string) []string {
	t.Helper()
	var ids []string
	for _, d := range apiEventDeliveries(t, c, key, eventID) {
		ids = append(ids, fmt.Sprint(d["webhookSubscriptionUuid"]))
	}
	slices.Sort(ids)
	return ids
}

func apiSorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// apiPublish posts an event and checks the answer is 202 with the given number
// of deliveries; it returns the event id.
func apiPublish(t *testing.T, c *apptest.Carrier, key string, event map[string]any, deliveries int) string {
	t.Helper()
	r := c.Do("POST", "/v1/events", key, event)
	if r.Status != http.StatusAccepted {
		t.Fatalf("publish %v: %d %s", event, r.Status, r.Body)
	}
	if got := r.Data()["deliveries"]; got != float64(deliveries) {
		t.Errorf("publish %v: deliveries = %v, want %d", event, got, deliveries)
	}
	if got := r.Data()["duplicate"]; got != false {
		t.Errorf("publish %v: duplicate = %v, want false", event, got)
	}
	id, _ := r.Data()["event_id"].(string)
	if id == "" {
		t.Fatalf("publish %v: no event_id in %s", event, r.Body)
	}
	return id
}

// apiWaitDeliveryState waits until the webhook lists one delivery in state and
// returns it.
func apiWaitDeliveryState(t *testing.T, c *apptest.Carrier, key, webhookID, state string) map[string]any {
	t.Helper()
	var d map[string]any
	apptest.Eventually(t, 15*time.Second, "delivery "+state, func() bool {
		r := c.Do("GET", "/v1/webhooks/"+webhookID+"/deliveries", key, nil)
		l := r.List()
		if r.Status == http.StatusOK && len(l) == 1 && l[0]["status"] == state {
			d = l[0]
			return true
		}
		return false
	})
	return d
}

// apiFakeResolver answers from a fixed table and counts lookups per host.
type apiFakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	calls map[string]int
}

func apiNewFakeResolver(hosts map[string][]string) *apiFakeResolver {
	return &apiFakeResolver{hosts: hosts, calls: map[string]int{}}
}

func (f *apiFakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[host]++
	ips, ok := f.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, len(ips))
	for i, s := range ips {
		out[i] = net.IPAddr{IP: net.ParseIP(s)}
	}
	return out, nil
}

func (f *apiFakeResolver) Calls(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[host]
}

// apiRebindResolver answers rebind.example with a public address while public is
// set and with 127.0.0.1 otherwise, counting both kinds of answers.
type apiRebindResolver struct {
	public         atomic.Bool
	publicAnswers  atomic.Int32
	privateAnswers atomic.Int32
}

func (f *apiRebindResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if host != "rebind.example" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if f.public.Load() {
		f.publicAnswers.Add(1)
		return []net.IPAddr{{IP: net.ParseIP("93.184.216.34")}}, nil
	}
	f.privateAnswers.Add(1)
	return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}, nil
}

// --- 1. events API ---

// TestAPIEventsPublishAndGet publishes an event to two of three webhooks and
// reads it back: type, subject, data (exactly) and attributes, and its deliveries.
func TestAPIEventsPublishAndGet(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			wh1, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL + "/1", "event_types": []string{"scrape.completed"}})
			wh2, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL + "/2", "event_types": []string{"scrape.*"}})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL + "/3", "event_types": []string{"crawl.completed"}})

			data := `{"job_id":"job-1","total":12345678901234567890,"ratio":0.1,"exp":1e2,"neg":-0.0,` +
				`"tags":["a","<b>&",null],"nested":{"ok":true,"text":"ü😀 \"q\" line\nbreak"},"empty":{},"list":[]}`
			body := `{"type":"scrape.completed","subject":"job-1","data":` + data + `,"attributes":{"source":"crawler","region":"eu"}}`
			r := c.Admin("POST", "/v1/events", body)
			if r.Status != http.StatusAccepted {
				t.Fatalf("publish: %d %s", r.Status, r.Body)
			}
			eventID, _ := r.Data()["event_id"].(string)
			if eventID == "" {
				t.Fatalf("no event_id: %s", r.Body)
			}
			if got := r.Data()["deliveries"]; got != float64(2) {
				t.Errorf("deliveries = %v, want 2", got)
			}
			if got := r.Data()["duplicate"]; got != false {
				t.Errorf("duplicate = %v, want false", got)
			}

			g := c.Admin("GET", "/v1/events/"+eventID, nil)
			if g.Status != http.StatusOK {
				t.Fatalf("get event: %d %s", g.Status, g.Body)
			}
			ev := g.Data()
			if ev["id"] != eventID || ev["type"] != "scrape.completed" || ev["subject"] != "job-1" {
				t.Errorf("event id/type/subject = %v/%v/%v", ev["id"], ev["type"], ev["subject"])
			}
			if got, want := ev["attributes"], map[string]any{"source": "crawler", "region": "eu"}; !reflect.DeepEqual(got, want) {
				t.Errorf("attributes = %v, want %v", got, want)
			}
			want := apiDecodeExact(t, []byte(data))
			got := apiDecodeExact(t, g.Body).(map[string]any)["data"].(map[string]any)["data"]
			if !reflect.DeepEqual(got, want) {
				t.Errorf("data did not round-trip:\n got %#v\nwant %#v", got, want)
			}
			if got := apiDeliveredTo(t, c, apptest.AdminKey, eventID); !reflect.DeepEqual(got, apiSorted(wh1, wh2)) {
				t.Errorf("event deliveries go to %v, want %v", got, apiSorted(wh1, wh2))
			}
			for _, d := range apiEventDeliveries(t, c, apptest.AdminKey, eventID) {
				if d["event_id"] != eventID || d["eventType"] != "scrape.completed" {
					t.Errorf("delivery %v: event_id/eventType = %v/%v", d["uuid"], d["event_id"], d["eventType"])
				}
			}

			// Both endpoints get the same data, exactly.
			reqs := ep.WaitRequests(t, 2, 15*time.Second)
			time.Sleep(200 * time.Millisecond)
			if n := len(ep.Requests()); n != 2 {
				t.Errorf("endpoint got %d requests, want 2", n)
			}
			paths := []string{}
			for _, req := range reqs {
				paths = append(paths, req.Path)
				got := apiDecodeExact(t, req.Body).(map[string]any)["data"]
				if !reflect.DeepEqual(got, want) {
					t.Errorf("delivered data to %s:\n got %#v\nwant %#v", req.Path, got, want)
				}
			}
			slices.Sort(paths)
			if !reflect.DeepEqual(paths, []string{"/1", "/2"}) {
				t.Errorf("requests went to %v, want /1 and /2", paths)
			}

			l := c.Admin("GET", "/v1/events", nil)
			if l.Status != http.StatusOK || len(l.List()) != 1 || l.List()[0]["id"] != eventID {
				t.Errorf("list events: %d %s", l.Status, l.Body)
			}
			apiExpectError(t, "unknown event", c.Admin("GET", "/v1/events/00000000-0000-0000-0000-000000000000", nil), http.StatusNotFound, "not_found", "")
		})
	}
}

// TestAPIEventsValidation covers malformed and oversized publishes, and data
// of every JSON kind.
func TestAPIEventsValidation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})

			bad := []struct {
				name, body, code, field string
				status                  int
			}{
				{"malformed", `{"type":"a.b",`, "invalid_json", "", 400},
				{"not json", `hello`, "invalid_json", "", 400},
				{"empty body", ``, "invalid_json", "", 400},
				{"array body", `[{"type":"a.b"}]`, "invalid_json", "", 400},
				{"trailing object", `{"type":"a.b"} {"type":"a.b"}`, "invalid_json", "", 400},
				{"trailing garbage", `{"type":"a.b"} x`, "invalid_json", "", 400},
				{"trailing value", `{"type":"a.b"} 1`, "invalid_json", "", 400},
				{"missing type", `{"data":{"x":1}}`, "validation_error", "type", 400},
				{"empty type", `{"type":""}`, "validation_error", "type", 400},
				{"bad type", `{"type":"bad type!"}`, "validation_error", "type", 400},
				{"type not a string", `{"type":5}`, "validation_error", "type", 400},
				{"unknown field", `{"type":"a.b","colour":"red"}`, "validation_error", "colour", 400},
				{"long subject", `{"type":"a.b","subject":"` + strings.Repeat("s", 256) + `"}`, "validation_error", "subject", 400},
			}
			for _, b := range bad {
				r := c.Admin("POST", "/v1/events", b.body)
				apiExpectError(t, b.name, r, b.status, b.code, b.field)
			}
			if n := apiEventCount(t, c, apptest.AdminKey); n != 0 {
				t.Fatalf("rejected publishes created %d events", n)
			}

			// Any JSON is accepted as data.
			for _, data := range []string{`"just a string"`, `[1,"two",{"three":3}]`, `42`, `-1.5e3`, `true`, `null`, `{}`} {
				r := c.Admin("POST", "/v1/events", `{"type":"any.data","data":`+data+`}`)
				if r.Status != http.StatusAccepted {
					t.Errorf("data %s: %d %s", data, r.Status, r.Body)
					continue
				}
				g := c.Admin("GET", "/v1/events/"+r.Data()["event_id"].(string), nil)
				got := apiDecodeExact(t, g.Body).(map[string]any)["data"].(map[string]any)["data"]
				if want := apiDecodeExact(t, []byte(data)); !reflect.DeepEqual(got, want) {
					t.Errorf("data %s came back as %#v", data, got)
				}
			}
			before := apiEventCount(t, c, apptest.AdminKey)

			// Bodies of exactly n bytes with a long string as data.
			sized := func(n int) string {
				prefix, suffix := `{"type":"big.event","data":"`, `"}`
				return prefix + strings.Repeat("a", n-len(prefix)-len(suffix)) + suffix
			}
			for _, n := range []int{1_000_000, 1 << 20} {
				body := sized(n)
				if len(body) != n {
					t.Fatalf("built %d bytes, want %d", len(body), n)
				}
				r := c.Admin("POST", "/v1/events", body)
				if r.Status != http.StatusAccepted {
					t.Errorf("body of %d bytes: %d %.300s", n, r.Status, r.Body)
					continue
				}
				g := c.Admin("GET", "/v1/events/"+r.Data()["event_id"].(string), nil)
				if s, _ := g.Data()["data"].(string); len(s) != n-len(`{"type":"big.event","data":""}`) {
					t.Errorf("body of %d bytes: data came back with %d bytes", n, len(s))
				}
			}
			before += 2

			for _, n := range []int{1<<20 + 1, 1_100_000 + 40} {
				r := c.Admin("POST", "/v1/events", sized(n))
				apiExpectError(t, fmt.Sprintf("body of %d bytes", n), r, http.StatusRequestEntityTooLarge, "payload_too_large", "")
			}
			if n := apiEventCount(t, c, apptest.AdminKey); n != before {
				t.Errorf("oversized publishes changed the event count from %d to %d", before, n)
			}
		})
	}
}

// --- 2. idempotent publish ---

// TestAPIIdempotentPublish publishes with the same idempotency key twice (in
// the body and in the header) and checks one event, one delivery per webhook.
func TestAPIIdempotentPublish(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep1 := apptest.NewEndpoint(t, nil)
			ep2 := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep1.URL, "event_types": []string{"scrape.completed"}})
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep2.URL, "event_types": []string{"scrape.*"}})

			check := func(what string, send func() apptest.Response, wantEndpointRequests int) {
				t.Helper()
				first := send()
				if first.Status != http.StatusAccepted || first.Data()["duplicate"] != false || first.Data()["deliveries"] != float64(2) {
					t.Fatalf("%s: first publish: %d %s", what, first.Status, first.Body)
				}
				ep1.WaitRequests(t, wantEndpointRequests, 15*time.Second)
				ep2.WaitRequests(t, wantEndpointRequests, 15*time.Second)
				second := send()
				if second.Status != http.StatusOK {
					t.Fatalf("%s: second publish: %d %s, want 200", what, second.Status, second.Body)
				}
				if second.Data()["duplicate"] != true || second.Data()["event_id"] != first.Data()["event_id"] || second.Data()["deliveries"] != float64(2) {
					t.Errorf("%s: second apiPublish answered %s, want duplicate of %s", what, second.Body, first.Body)
				}
				time.Sleep(500 * time.Millisecond)
				if n1, n2 := len(ep1.Requests()), len(ep2.Requests()); n1 != wantEndpointRequests || n2 != wantEndpointRequests {
					t.Errorf("%s: endpoints got %d and %d requests, want %d each", what, n1, n2, wantEndpointRequests)
				}
			}
			event := func(key string) map[string]any {
				m := map[string]any{"type": "scrape.completed", "subject": "job-1", "data": map[string]any{"n": 1}}
				if key != "" {
					m["idempotency_key"] = key
				}
				return m
			}
			check("body key", func() apptest.Response { return c.Admin("POST", "/v1/events", event("key-body")) }, 1)
			check("header key", func() apptest.Response {
				return c.Admin("POST", "/v1/events", event(""), "Idempotency-Key", "key-header")
			}, 2)
			if n := apiEventCount(t, c, apptest.AdminKey); n != 2 {
				t.Errorf("%d events stored, want 2", n)
			}

			// A key sent in the body and then in the header is the same key.
			r := c.Admin("POST", "/v1/events", event(""), "Idempotency-Key", "key-body")
			if r.Status != http.StatusOK || r.Data()["duplicate"] != true {
				t.Errorf("body key repeated as header: %d %s", r.Status, r.Body)
			}
			// The same key in both places is fine.
			r = c.Admin("POST", "/v1/events", event("key-both"), "Idempotency-Key", "key-both")
			if r.Status != http.StatusAccepted {
				t.Errorf("same key in body and header: %d %s", r.Status, r.Body)
			}
			// Different keys in body and header are refused.
			r = c.Admin("POST", "/v1/events", event("key-a"), "Idempotency-Key", "key-b")
			apiExpectError(t, "body and header keys differ", r, http.StatusBadRequest, "validation_error", "idempotency_key")

			// Another project's key space is independent.
			_, p2 := c.NewProject("other")
			r = c.Do("POST", "/v1/events", p2, event("key-body"))
			if r.Status != http.StatusAccepted || r.Data()["duplicate"] != false || r.Data()["deliveries"] != float64(0) {
				t.Errorf("same key in another project: %d %s", r.Status, r.Body)
			}
			r2 := c.Do("POST", "/v1/events", p2, event(""), "Idempotency-Key", "key-header")
			if r2.Status != http.StatusAccepted || r2.Data()["duplicate"] != false {
				t.Errorf("same header key in another project: %d %s", r2.Status, r2.Body)
			}
			if n := apiEventCount(t, c, p2); n != 2 {
				t.Errorf("other project has %d events, want 2", n)
			}
			if n := apiEventCount(t, c, apptest.AdminKey); n != 3 {
				t.Errorf("first project has %d events, want 3", n)
			}
			time.Sleep(200 * time.Millisecond)
			if n1, n2 := len(ep1.Requests()), len(ep2.Requests()); n1 != 3 || n2 != 3 {
				t.Errorf("endpoints got %d and %d requests, want 3 each", n1, n2)
			}
		})
	}
}

// TestAPIIdempotentPublishConcurrent publishes one idempotency key from many
// clients at once: exactly one event is created and delivered, and every
// answer names it.
func TestAPIIdempotentPublishConcurrent(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"scrape.completed"}})

			const clients = 32
			answers := make([]apptest.Response, clients)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					body := map[string]any{"type": "scrape.completed", "data": map[string]any{"n": i}}
					if i%2 == 0 {
						body["idempotency_key"] = "same-key"
						answers[i] = c.Admin("POST", "/v1/events", body)
					} else {
						answers[i] = c.Admin("POST", "/v1/events", body, "Idempotency-Key", "same-key")
					}
				}()
			}
			close(start)
			wg.Wait()

			created, ids := 0, map[any]bool{}
			for i, r := range answers {
				switch {
				case r.Status == http.StatusAccepted && r.Data()["duplicate"] == false:
					created++
				case r.Status == http.StatusOK && r.Data()["duplicate"] == true:
				default:
					t.Errorf("client %d: %d %s", i, r.Status, r.Body)
					continue
				}
				ids[r.Data()["event_id"]] = true
				if r.Data()["deliveries"] != float64(1) {
					t.Errorf("client %d: deliveries = %v, want 1", i, r.Data()["deliveries"])
				}
			}
			if created != 1 || len(ids) != 1 {
				t.Errorf("%d publishes created an event and %d event ids were returned, want 1 and 1", created, len(ids))
			}
			if n := apiEventCount(t, c, apptest.AdminKey); n != 1 {
				t.Errorf("%d events stored, want 1", n)
			}
			ep.WaitRequests(t, 1, 15*time.Second)
			time.Sleep(500 * time.Millisecond)
			if n := len(ep.Requests()); n != 1 {
				t.Errorf("endpoint got %d requests, want 1", n)
			}
		})
	}
}

// --- 3. scope and event-type filtering ---

// TestAPIScopeAndTypeFiltering checks scope "all" / "specific" and exact and
// prefix event types.
func TestAPIScopeAndTypeFiltering(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			k := apptest.AdminKey
			epA := apptest.NewEndpoint(t, nil)
			epB := apptest.NewEndpoint(t, nil)
			a, _ := c.CreateWebhook(k, map[string]any{"webhook_url": epA.URL, "event_types": []string{"task.executed"}, "scope": "all"})
			b, _ := c.CreateWebhook(k, map[string]any{"webhook_url": epB.URL, "event_types": []string{"task.executed"}, "scope": "specific", "specific_task_ids": []string{"task-1"}})
			if got := c.Admin("GET", "/v1/webhooks/"+b, nil).Data(); got["scope"] != "specific" || !reflect.DeepEqual(got["specific_task_ids"], []any{"task-1"}) {
				t.Errorf("webhook B scope/specific_task_ids = %v/%v", got["scope"], got["specific_task_ids"])
			}

			ev1 := apiPublish(t, c, k, map[string]any{"type": "task.executed", "subject": "task-1"}, 2)
			if got := apiDeliveredTo(t, c, k, ev1); !reflect.DeepEqual(got, apiSorted(a, b)) {
				t.Errorf("task-1 went to %v, want A and B", got)
			}
			epA.WaitRequests(t, 1, 15*time.Second)
			epB.WaitRequests(t, 1, 15*time.Second)

			ev2 := apiPublish(t, c, k, map[string]any{"type": "task.executed", "subject": "task-2"}, 1)
			if got := apiDeliveredTo(t, c, k, ev2); !reflect.DeepEqual(got, []string{a}) {
				t.Errorf("task-2 went to %v, want only A", got)
			}
			ev3 := apiPublish(t, c, k, map[string]any{"type": "task.executed"}, 1)
			if got := apiDeliveredTo(t, c, k, ev3); !reflect.DeepEqual(got, []string{a}) {
				t.Errorf("no subject went to %v, want only A", got)
			}
			epA.WaitRequests(t, 3, 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			if n := len(epB.Requests()); n != 1 {
				t.Errorf("B got %d requests, want 1", n)
			}
			var body map[string]any
			json.Unmarshal(epB.Requests()[0].Body, &body)
			if body["subject"] != "task-1" {
				t.Errorf("B got subject %v, want task-1", body["subject"])
			}

			r := c.Admin("POST", "/v1/webhooks", map[string]any{"name": "s", "webhook_url": epB.URL, "event_types": []string{"task.executed"}, "scope": "specific"})
			apiExpectError(t, "specific without ids", r, http.StatusBadRequest, "validation_error", "specific_task_ids")
			r = c.Admin("POST", "/v1/webhooks", map[string]any{"name": "s", "webhook_url": epB.URL, "event_types": []string{"task.executed"}, "scope": "specific", "specific_task_ids": []string{}})
			apiExpectError(t, "specific with empty ids", r, http.StatusBadRequest, "validation_error", "specific_task_ids")
			if n := apiWebhookCount(t, c, k); n != 2 {
				t.Errorf("%d webhooks, want 2", n)
			}
		})
	}
}

// TestAPIEventTypeMatching checks prefix and exact event-type patterns.
func TestAPIEventTypeMatching(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			k := apptest.AdminKey
			ep := apptest.NewEndpoint(t, nil)
			prefix, _ := c.CreateWebhook(k, map[string]any{"webhook_url": ep.URL + "/prefix", "event_types": []string{"scrape.*"}})
			exact, _ := c.CreateWebhook(k, map[string]any{"webhook_url": ep.URL + "/exact", "event_types": []string{"scrape.completed"}})

			cases := []struct {
				typ  string
				want []string
			}{
				{"scrape.completed", apiSorted(prefix, exact)},
				{"scrape.failed", []string{prefix}},
				{"crawl.completed", nil},
				{"scraper.completed", nil},
				{"scrape", nil},
				{"Scrape.completed", nil},
			}
			total := 0
			for _, tc := range cases {
				id := apiPublish(t, c, k, map[string]any{"type": tc.typ}, len(tc.want))
				if got := apiDeliveredTo(t, c, k, id); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s went to %v, want %v", tc.typ, got, tc.want)
				}
				total += len(tc.want)
			}
			reqs := ep.WaitRequests(t, total, 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			reqs = ep.Requests()
			got := map[string]int{}
			for _, r := range reqs {
				got[r.Path+" "+r.Header.Get("X-Webhook-Event")]++
			}
			want := map[string]int{"/prefix scrape.completed": 1, "/exact scrape.completed": 1, "/prefix scrape.failed": 1}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("endpoint got %v, want %v", got, want)
			}
		})
	}
}

// --- 4. tenant isolation, keys and auth ---

// TestAPITenantIsolation checks that one project can neither see nor touch
// another's webhooks, deliveries and events, nor receive its events.
func TestAPITenantIsolation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			_, k1 := c.NewProject("p1")
			_, k2 := c.NewProject("p2")
			ep1 := apptest.NewEndpoint(t, nil)
			ep2 := apptest.NewEndpoint(t, nil)
			types := []string{"scrape.completed"}
			wh1, secret1 := c.CreateWebhook(k1, map[string]any{"name": "p1 hook", "webhook_url": ep1.URL, "event_types": types})
			wh2, _ := c.CreateWebhook(k2, map[string]any{"name": "p2 hook", "webhook_url": ep2.URL, "event_types": types})

			ev1 := apiPublish(t, c, k1, map[string]any{"type": "scrape.completed", "subject": "job-1"}, 1)
			d1 := apiWaitDeliveryState(t, c, k1, wh1, "delivered")
			did := d1["uuid"].(string)
			before := c.Do("GET", "/v1/webhooks/"+wh1, k1, nil)

			base := "/v1/webhooks/" + wh1
			probes := []struct {
				method, path string
				body         any
			}{
				{"GET", base, nil},
				{"PUT", base, map[string]any{"name": "hijacked", "webhook_url": ep2.URL}},
				{"DELETE", base, nil},
				{"GET", base + "/deliveries", nil},
				{"GET", base + "/deliveries/" + did, nil},
				{"POST", base + "/deliveries/" + did + "/replay", nil},
				{"POST", base + "/test", nil},
				{"PUT", base + "/activate", nil},
				{"PUT", base + "/deactivate", nil},
				{"POST", base + "/rotate-secret", nil},
				{"POST", base + "/recover", map[string]any{"from": "2020-01-01T00:00:00Z"}},
				{"GET", "/v1/events/" + ev1, nil},
				// P1's delivery under P2's own webhook.
				{"GET", "/v1/webhooks/" + wh2 + "/deliveries/" + did, nil},
				{"POST", "/v1/webhooks/" + wh2 + "/deliveries/" + did + "/replay", nil},
			}
			for _, p := range probes {
				r := c.Do(p.method, p.path, k2, p.body)
				apiExpectError(t, "P2 "+p.method+" "+p.path, r, http.StatusNotFound, "not_found", "")
				if bytes.Contains(r.Body, []byte("p1 hook")) || bytes.Contains(r.Body, []byte(ep1.URL)) {
					t.Errorf("P2 %s %s leaked P1 data: %s", p.method, p.path, r.Body)
				}
			}

			// Lists show only the caller's own.
			l := c.Do("GET", "/v1/webhooks", k2, nil).List()
			if len(l) != 1 || l[0]["uuid"] != wh2 {
				t.Errorf("P2 lists webhooks %v, want only its own", l)
			}
			if n := apiEventCount(t, c, k2); n != 0 {
				t.Errorf("P2 lists %d events, want 0", n)
			}
			if r := c.Do("GET", "/v1/webhooks/"+wh2+"/deliveries", k2, nil); r.Status != http.StatusOK || len(r.List()) != 0 {
				t.Errorf("P2 deliveries: %d %s", r.Status, r.Body)
			}

			// P1's webhook is untouched: same settings, active, secret not rotated,
			// no test or replayed delivery.
			after := c.Do("GET", "/v1/webhooks/"+wh1, k1, nil)
			if after.Status != http.StatusOK || !reflect.DeepEqual(after.Data(), before.Data()) {
				t.Errorf("P1 webhook changed:\nbefore %s\n after %s", before.Body, after.Body)
			}
			if r := c.Do("GET", "/v1/webhooks/"+wh1+"/deliveries", k1, nil); len(r.List()) != 1 || r.List()[0]["status"] != "delivered" {
				t.Errorf("P1 deliveries after P2's attempts: %s", r.Body)
			}

			// A P1 event never reaches P2's webhook with the same event types.
			apiPublish(t, c, k1, map[string]any{"type": "scrape.completed", "subject": "job-2"}, 1)
			reqs := ep1.WaitRequests(t, 2, 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			if n := len(ep1.Requests()); n != 2 {
				t.Errorf("P1 endpoint got %d requests, want 2", n)
			}
			if n := len(ep2.Requests()); n != 0 {
				t.Errorf("P2 endpoint got %d requests of P1's events", n)
			}
			// Still signed with P1's original secret alone.
			wh, err := standardwebhooks.NewWebhook(secret1)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(reqs[1].Body, reqs[1].Header); err != nil {
				t.Errorf("P1 delivery does not verify with the original secret: %v", err)
			}
			if sigs := strings.Fields(reqs[1].Header.Get("webhook-signature")); len(sigs) != 1 {
				t.Errorf("webhook-signature has %d signatures, want 1 (secret rotated?)", len(sigs))
			}

			// And a P2 event reaches only P2.
			apiPublish(t, c, k2, map[string]any{"type": "scrape.completed"}, 1)
			ep2.WaitRequests(t, 1, 15*time.Second)
			time.Sleep(200 * time.Millisecond)
			if n := len(ep1.Requests()); n != 2 {
				t.Errorf("P1 endpoint got %d requests, want 2", n)
			}
		})
	}
}

// TestAPIKeysAndAuth checks API key management and authentication errors.
func TestAPIKeysAndAuth(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			p1, k1 := c.NewProject("p1")
			p2, k2 := c.NewProject("p2")
			ep := apptest.NewEndpoint(t, nil)
			wh1, _ := c.CreateWebhook(k1, map[string]any{"webhook_url": ep.URL, "event_types": []string{"x.y"}})

			// Only admins create projects.
			apiExpectError(t, "project key creates project", c.Do("POST", "/v1/projects", k1, map[string]any{"name": "x"}), http.StatusForbidden, "forbidden", "")

			// A project key manages its own project's keys.
			r := c.Do("POST", "/v1/projects/"+p1+"/keys", k1, map[string]any{"name": "ci"})
			if r.Status != http.StatusCreated {
				t.Fatalf("create key: %d %s", r.Status, r.Body)
			}
			newKey, _ := r.Data()["key"].(string)
			keyID, _ := r.Data()["id"].(string)
			if newKey == "" || keyID == "" || newKey == k1 {
				t.Fatalf("create key answered %s", r.Body)
			}
			if r.Data()["project_id"] != p1 {
				t.Errorf("new key project_id = %v, want %v", r.Data()["project_id"], p1)
			}
			if r := c.Do("GET", "/v1/webhooks/"+wh1, newKey, nil); r.Status != http.StatusOK {
				t.Errorf("new key cannot read its project's webhook: %d %s", r.Status, r.Body)
			}

			// Another project's keys are not found.
			apiExpectError(t, "P2 creates key in P1", c.Do("POST", "/v1/projects/"+p1+"/keys", k2, map[string]any{"name": "evil"}), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "P2 revokes P1 key", c.Do("DELETE", "/v1/projects/"+p1+"/keys/"+keyID, k2, nil), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "P2 revokes P1 key via own project", c.Do("DELETE", "/v1/projects/"+p2+"/keys/"+keyID, k2, nil), http.StatusNotFound, "not_found", "")
			if r := c.Do("GET", "/v1/webhooks", newKey, nil); r.Status != http.StatusOK {
				t.Errorf("key stopped working after P2's revoke attempts: %d %s", r.Status, r.Body)
			}
			// Admins manage every project's keys.
			r = c.Admin("POST", "/v1/projects/"+p2+"/keys", nil)
			if r.Status != http.StatusCreated || r.Data()["project_id"] != p2 {
				t.Errorf("admin creates key in P2: %d %s", r.Status, r.Body)
			} else if n := apiWebhookCount(t, c, r.Data()["key"].(string)); n != 0 {
				t.Errorf("P2 key created by admin sees %d webhooks", n)
			}
			apiExpectError(t, "create key in unknown project", c.Admin("POST", "/v1/projects/no-such-project/keys", nil), http.StatusNotFound, "not_found", "")

			// Revoking a key stops it at once; the other key keeps working.
			r = c.Do("DELETE", "/v1/projects/"+p1+"/keys/"+keyID, k1, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("revoke key: %d %s", r.Status, r.Body)
			}
			apiExpectError(t, "revoked key", c.Do("GET", "/v1/webhooks", newKey, nil), http.StatusUnauthorized, "unauthorized", "")
			apiExpectError(t, "revoked key publishes", c.Do("POST", "/v1/events", newKey, map[string]any{"type": "x.y"}), http.StatusUnauthorized, "unauthorized", "")
			if r := c.Do("GET", "/v1/webhooks", k1, nil); r.Status != http.StatusOK {
				t.Errorf("P1's other key stopped working: %d %s", r.Status, r.Body)
			}
			apiExpectError(t, "revoke again", c.Do("DELETE", "/v1/projects/"+p1+"/keys/"+keyID, k1, nil), http.StatusNotFound, "not_found", "")

			// Missing or invalid credentials.
			for _, h := range []string{"", "Bearer", "Bearer ", "Bearer nope", "Basic " + k1, k1} {
				var r apptest.Response
				if h == "" {
					r = c.Do("GET", "/v1/webhooks", "", nil)
				} else {
					r = c.Do("GET", "/v1/webhooks", "", nil, "Authorization", h)
				}
				apiExpectError(t, fmt.Sprintf("Authorization %q", h), r, http.StatusUnauthorized, "unauthorized", "")
			}
			apiExpectError(t, "publish without key", c.Do("POST", "/v1/events", "", map[string]any{"type": "x.y"}), http.StatusUnauthorized, "unauthorized", "")
			if n := apiEventCount(t, c, k1); n != 0 {
				t.Errorf("unauthorized publishes created %d events", n)
			}
		})
	}
}

// --- 5. webhook validation, defaults and lifecycle ---

type apiFieldCase struct {
	name  string
	field string // the field the error must name
	set   map[string]any
}

func apiInvalidWebhookFields() []apiFieldCase {
	headers := func(n int) map[string]string {
		h := map[string]string{}
		for i := 0; i < n; i++ {
			h[fmt.Sprintf("X-Custom-%d", i)] = "v"
		}
		return h
	}
	return []apiFieldCase{
		{"empty name", "name", map[string]any{"name": ""}},
		{"256-char name", "name", map[string]any{"name": strings.Repeat("n", 256)}},
		{"256-rune name", "name", map[string]any{"name": strings.Repeat("é", 256)}},
		{"name not a string", "name", map[string]any{"name": 5}},
		{"ftp url", "webhook_url", map[string]any{"webhook_url": "ftp://x"}},
		{"not a url", "webhook_url", map[string]any{"webhook_url": "not a url"}},
		{"empty url", "webhook_url", map[string]any{"webhook_url": ""}},
		{"url without host", "webhook_url", map[string]any{"webhook_url": "http:///path"}},
		{"url with userinfo", "webhook_url", map[string]any{"webhook_url": "http://user:pw@127.0.0.1:9/"}},
		{"url not a string", "webhook_url", map[string]any{"webhook_url": 7}},
		{"empty event_types", "event_types", map[string]any{"event_types": []string{}}},
		{"bad event type", "event_types", map[string]any{"event_types": []string{"bad type!"}}},
		{"event_types not an array", "event_types", map[string]any{"event_types": "scrape.completed"}},
		{"scope some", "scope", map[string]any{"scope": "some"}},
		{"specific without ids", "specific_task_ids", map[string]any{"scope": "specific"}},
		{"timeout 0", "timeout_seconds", map[string]any{"timeout_seconds": 0}},
		{"timeout 61", "timeout_seconds", map[string]any{"timeout_seconds": 61}},
		{"timeout 1.5", "timeout_seconds", map[string]any{"timeout_seconds": 1.5}},
		{"timeout string", "timeout_seconds", map[string]any{"timeout_seconds": "10"}},
		{"max_retries -1", "max_retries", map[string]any{"max_retries": -1}},
		{"max_retries 11", "max_retries", map[string]any{"max_retries": 11}},
		{"max_retries 1.5", "max_retries", map[string]any{"max_retries": 1.5}},
		{"multiplier 0.5", "retry_backoff_multiplier", map[string]any{"retry_backoff_multiplier": 0.5}},
		{"multiplier 11", "retry_backoff_multiplier", map[string]any{"retry_backoff_multiplier": 11}},
		{"21 custom headers", "custom_headers", map[string]any{"custom_headers": headers(21)}},
		{"reserved X-Webhook-Event", "custom_headers", map[string]any{"custom_headers": map[string]string{"X-Webhook-Event": "x"}}},
		{"reserved webhook-signature", "custom_headers", map[string]any{"custom_headers": map[string]string{"webhook-signature": "x"}}},
		{"reserved Content-Type", "custom_headers", map[string]any{"custom_headers": map[string]string{"Content-Type": "text/plain"}}},
		{"header value CRLF", "custom_headers", map[string]any{"custom_headers": map[string]string{"X-Team": "a\r\nX-Injected: 1"}}},
		{"bad header name", "custom_headers", map[string]any{"custom_headers": map[string]string{"Bad Header": "x"}}},
		{"secret", "secret", map[string]any{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		{"webhook_secret", "webhook_secret", map[string]any{"webhook_secret": "mine"}},
		{"unknown field", "colour", map[string]any{"colour": "red"}},
	}
}

// TestAPIWebhookValidation checks every field's limits on create and update.
func TestAPIWebhookValidation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			k := apptest.AdminKey
			base := func() map[string]any {
				return map[string]any{"name": "ok", "webhook_url": "http://127.0.0.1:9/hook", "event_types": []string{"scrape.completed"}}
			}

			// Missing required fields.
			for _, f := range []string{"name", "webhook_url", "event_types"} {
				body := base()
				delete(body, f)
				apiExpectError(t, "create without "+f, c.Do("POST", "/v1/webhooks", k, body), http.StatusBadRequest, "validation_error", f)
			}
			// Bad values.
			for _, fc := range apiInvalidWebhookFields() {
				body := base()
				for name, v := range fc.set {
					body[name] = v
				}
				apiExpectError(t, "create with "+fc.name, c.Do("POST", "/v1/webhooks", k, body), http.StatusBadRequest, "validation_error", fc.field)
			}
			apiExpectError(t, "create with malformed JSON", c.Do("POST", "/v1/webhooks", k, `{"name":`), http.StatusBadRequest, "invalid_json", "")
			huge := base()
			huge["description"] = strings.Repeat("d", 1<<20)
			apiExpectError(t, "create with a body over 1 MiB", c.Do("POST", "/v1/webhooks", k, huge), http.StatusRequestEntityTooLarge, "payload_too_large", "")
			if n := apiWebhookCount(t, c, k); n != 0 {
				t.Fatalf("rejected creates left %d webhooks", n)
			}

			// Boundary values are accepted and stored.
			headers20 := map[string]any{}
			for i := 0; i < 20; i++ {
				headers20[fmt.Sprintf("X-Custom-%d", i)] = "v"
			}
			good := []struct {
				name string
				set  map[string]any
			}{
				{"255-char name", map[string]any{"name": strings.Repeat("n", 255)}},
				{"255-rune name", map[string]any{"name": strings.Repeat("é", 255)}},
				{"timeout 1", map[string]any{"timeout_seconds": 1}},
				{"timeout 60", map[string]any{"timeout_seconds": 60}},
				{"max_retries 0", map[string]any{"max_retries": 0}},
				{"max_retries 10", map[string]any{"max_retries": 10}},
				{"multiplier 1", map[string]any{"retry_backoff_multiplier": 1}},
				{"multiplier 10", map[string]any{"retry_backoff_multiplier": 10}},
				{"multiplier 1.5", map[string]any{"retry_backoff_multiplier": 1.5}},
				{"20 custom headers", map[string]any{"custom_headers": headers20}},
				{"https url", map[string]any{"webhook_url": "https://127.0.0.1:9/hook"}},
				{"specific with ids", map[string]any{"scope": "specific", "specific_task_ids": []string{"t1", "t2"}}},
				{"wildcards", map[string]any{"event_types": []string{"*", "scrape.*", "task.executed"}}},
			}
			for _, g := range good {
				body := base()
				for name, v := range g.set {
					body[name] = v
				}
				r := c.Do("POST", "/v1/webhooks", k, body)
				if r.Status != http.StatusCreated {
					t.Errorf("create with %s: %d %s", g.name, r.Status, r.Body)
					continue
				}
				got := c.Do("GET", "/v1/webhooks/"+r.Data()["webhook_id"].(string), k, nil).Data()
				for name, v := range g.set {
					if h, ok := v.(map[string]any); ok && name == "custom_headers" {
						// Header values are shown hidden, as secrets are.
						hidden := map[string]string{}
						for k := range h {
							hidden[k] = "***hidden***"
						}
						v = hidden
					}
					want := apiDecodeExact(t, apiMustJSON(t, v))
					have := apiDecodeExact(t, apiMustJSON(t, got[name]))
					if !reflect.DeepEqual(fmt.Sprint(have), fmt.Sprint(want)) {
						t.Errorf("create with %s: %s = %v, want %v", g.name, name, got[name], v)
					}
				}
			}
			if n := apiWebhookCount(t, c, k); n != len(good) {
				t.Errorf("%d webhooks, want %d", n, len(good))
			}

			// Updates are validated the same way and change nothing when refused.
			id, _ := c.CreateWebhook(k, base())
			before := c.Do("GET", "/v1/webhooks/"+id, k, nil)
			for _, fc := range apiInvalidWebhookFields() {
				apiExpectError(t, "update with "+fc.name, c.Do("PUT", "/v1/webhooks/"+id, k, fc.set), http.StatusBadRequest, "validation_error", fc.field)
			}
			apiExpectError(t, "update with malformed JSON", c.Do("PUT", "/v1/webhooks/"+id, k, `{"name":`), http.StatusBadRequest, "invalid_json", "")
			after := c.Do("GET", "/v1/webhooks/"+id, k, nil)
			if !reflect.DeepEqual(after.Data(), before.Data()) {
				t.Errorf("refused updates changed the webhook:\nbefore %s\n after %s", before.Body, after.Body)
			}
			apiExpectError(t, "update unknown webhook", c.Do("PUT", "/v1/webhooks/00000000-0000-0000-0000-000000000000", k, map[string]any{"name": "x"}), http.StatusNotFound, "not_found", "")
		})
	}
}

func apiMustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAPIWebhookLifecycle checks the create answer, defaults, the hidden
// secret, partial updates, delete with its history, and the event catalogue.
func TestAPIWebhookLifecycle(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			k := apptest.AdminKey
			ep := apptest.NewEndpoint(t, nil)

			r := c.Do("POST", "/v1/webhooks", k, map[string]any{"name": "Production Notifications", "webhook_url": ep.URL + "/hook", "event_types": []string{"scrape.completed", "scrape.failed"}})
			if r.Status != http.StatusCreated || r.JSON["success"] != true {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			created := r.Data()
			keys := []string{}
			for name := range created {
				keys = append(keys, name)
			}
			slices.Sort(keys)
			if !reflect.DeepEqual(keys, []string{"message", "secret", "webhook_id"}) {
				t.Errorf("create answer data has %v, want webhook_id, secret, message", keys)
			}
			id, _ := created["webhook_id"].(string)
			secret, _ := created["secret"].(string)
			if id == "" || !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+20 {
				t.Errorf("create answer: webhook_id %q secret %q", id, secret)
			}
			if msg, _ := created["message"].(string); msg == "" {
				t.Errorf("create answer has no message")
			}

			g := c.Do("GET", "/v1/webhooks/"+id, k, nil)
			if g.Status != http.StatusOK {
				t.Fatalf("get: %d %s", g.Status, g.Body)
			}
			wantDefaults := map[string]any{
				"uuid": id, "name": "Production Notifications", "webhook_url": ep.URL + "/hook",
				"event_types": []any{"scrape.completed", "scrape.failed"},
				"scope":       "all", "timeout_seconds": float64(10), "max_retries": float64(3), "retry_backoff_multiplier": float64(2),
				"is_active": true, "webhook_secret": "***hidden***", "consecutive_failures": float64(0),
				"total_deliveries": float64(0), "successful_deliveries": float64(0), "failed_deliveries": float64(0),
			}
			for name, want := range wantDefaults {
				if got := g.Data()[name]; !reflect.DeepEqual(got, want) {
					t.Errorf("GET %s = %#v, want %#v", name, got, want)
				}
			}
			l := c.Do("GET", "/v1/webhooks", k, nil)
			if len(l.List()) != 1 || l.List()[0]["webhook_secret"] != "***hidden***" || l.List()[0]["uuid"] != id {
				t.Errorf("list: %s", l.Body)
			}
			if bytes.Contains(g.Body, []byte(secret)) || bytes.Contains(l.Body, []byte(secret)) ||
				bytes.Contains(g.Body, []byte(strings.TrimPrefix(secret, "whsec_"))) {
				t.Errorf("the secret shows in GET or list")
			}

			// Partial update changes only what is sent.
			before := g.Data()
			u := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"name": "renamed", "max_retries": 5, "custom_headers": map[string]string{"X-Team": "crawler"}})
			if u.Status != http.StatusOK {
				t.Fatalf("update: %d %s", u.Status, u.Body)
			}
			if u.Data()["webhook_secret"] != "***hidden***" || bytes.Contains(u.Body, []byte(secret)) {
				t.Errorf("update answer shows the secret: %s", u.Body)
			}
			after := c.Do("GET", "/v1/webhooks/"+id, k, nil).Data()
			// Header values are shown hidden, as secrets are.
			changed := map[string]any{"name": "renamed", "max_retries": float64(5), "custom_headers": map[string]any{"X-Team": "***hidden***"}}
			for name, v := range before {
				if name == "updated_at" {
					continue
				}
				want := v
				if v, ok := changed[name]; ok {
					want = v
				}
				if !reflect.DeepEqual(after[name], want) {
					t.Errorf("after update %s = %#v, want %#v", name, after[name], want)
				}
			}
			if u := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"scope": "specific", "specific_task_ids": []string{"task-1"}}); u.Status != http.StatusOK {
				t.Errorf("update to specific scope: %d %s", u.Status, u.Body)
			}
			if u := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"scope": "all"}); u.Status != http.StatusOK || u.Data()["scope"] != "all" {
				t.Errorf("update back to scope all: %d %s", u.Status, u.Body)
			}
			if u := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{}); u.Status != http.StatusOK || u.Data()["name"] != "renamed" {
				t.Errorf("empty update: %d %s", u.Status, u.Body)
			}

			// The update takes effect for deliveries; then delete removes the
			// webhook and its history.
			ev := apiPublish(t, c, k, map[string]any{"type": "scrape.completed"}, 1)
			req := ep.WaitRequests(t, 1, 15*time.Second)[0]
			if req.Header.Get("X-Team") != "crawler" {
				t.Errorf("custom header after update = %q", req.Header.Get("X-Team"))
			}
			d := apiWaitDeliveryState(t, c, k, id, "delivered")
			did := d["uuid"].(string)
			del := c.Do("DELETE", "/v1/webhooks/"+id, k, nil)
			if del.Status != http.StatusOK {
				t.Fatalf("delete: %d %s", del.Status, del.Body)
			}
			apiExpectError(t, "GET deleted", c.Do("GET", "/v1/webhooks/"+id, k, nil), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "deliveries of deleted", c.Do("GET", "/v1/webhooks/"+id+"/deliveries", k, nil), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "delivery of deleted", c.Do("GET", "/v1/webhooks/"+id+"/deliveries/"+did, k, nil), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "replay of deleted", c.Do("POST", "/v1/webhooks/"+id+"/deliveries/"+did+"/replay", k, nil), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "PUT deleted", c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"name": "x"}), http.StatusNotFound, "not_found", "")
			apiExpectError(t, "DELETE again", c.Do("DELETE", "/v1/webhooks/"+id, k, nil), http.StatusNotFound, "not_found", "")
			if ds := apiEventDeliveries(t, c, k, ev); len(ds) != 0 {
				t.Errorf("event still shows %d deliveries of the deleted webhook", len(ds))
			}
			if n := apiWebhookCount(t, c, k); n != 0 {
				t.Errorf("%d webhooks after delete", n)
			}
			apiPublish(t, c, k, map[string]any{"type": "scrape.completed"}, 0)

			// The catalogue lists the documented event types.
			cat := c.Do("GET", "/v1/webhook-events", k, nil)
			if cat.Status != http.StatusOK {
				t.Fatalf("webhook-events: %d %s", cat.Status, cat.Body)
			}
			have := map[string]bool{}
			for _, ev := range cat.List() {
				have[fmt.Sprint(ev["event_type"])] = true
			}
			for _, typ := range []string{
				"scrape.created", "scrape.started", "scrape.completed", "scrape.failed", "scrape.cancelled",
				"crawl.created", "crawl.started", "crawl.completed", "crawl.failed", "crawl.cancelled",
				"task.executed", "task.failed", "task.paused", "task.resumed",
				"search.created", "search.started", "search.completed", "search.failed",
				"map.created", "map.started", "map.completed", "map.failed", "webhook.test",
			} {
				if !have[typ] {
					t.Errorf("webhook-events lacks %s", typ)
				}
			}
			apiExpectError(t, "webhook-events without key", c.Do("GET", "/v1/webhook-events", "", nil), http.StatusUnauthorized, "unauthorized", "")
		})
	}
}

// --- 6. SSRF at create and update ---

// TestAPISSRFAtCreateAndUpdate checks that a URL on any forbidden address
// class is refused with url_not_allowed, literal or resolved.
func TestAPISSRFAtCreateAndUpdate(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			res := apiNewFakeResolver(map[string][]string{
				"localhost":        {"127.0.0.1", "::1"},
				"internal.example": {"10.1.2.3"},
				"mixed.example":    {"93.184.216.34", "10.0.0.7"},
				"v6.example":       {"fd12:3456::1"},
				"public.example":   {"93.184.216.34"},
			})
			c := apptest.Start(t, e, apptest.Options{BlockPrivate: true, Resolver: res})
			k := apptest.AdminKey
			blocked := []string{
				"http://127.0.0.1:9/x", "http://127.1.2.3/", "http://localhost:9/", "http://[::1]/",
				"http://10.0.0.1/", "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.1.1/",
				"http://169.254.1.1/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/",
				"http://100.64.0.1/", "http://[fc00::1]/", "http://[fd00::1]/",
				"http://[64:ff9b::a00:1]/", "http://[2002:a00:1::1]/",
				"http://224.0.0.1/", "http://[ff02::1]/",
				"http://0.0.0.0/", "http://[::]/", "http://169.254.169.254/latest/meta-data/",
				"http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:a00:1]/",
				"https://internal.example/hook", "http://internal.example:8080/hook",
				"http://mixed.example/", "http://v6.example/", "http://255.255.255.255/",
			}
			for _, u := range blocked {
				r := c.Do("POST", "/v1/webhooks", k, map[string]any{"name": "ssrf", "webhook_url": u, "event_types": []string{"never.sent"}})
				apiExpectError(t, "create "+u, r, http.StatusBadRequest, "url_not_allowed", "webhook_url")
			}
			if res.Calls("internal.example") == 0 {
				t.Errorf("internal.example was never resolved")
			}
			// A name that does not resolve is invalid, not "not allowed".
			r := c.Do("POST", "/v1/webhooks", k, map[string]any{"name": "nx", "webhook_url": "http://nx.example/", "event_types": []string{"never.sent"}})
			apiExpectError(t, "unresolvable host", r, http.StatusBadRequest, "validation_error", "webhook_url")
			if n := apiWebhookCount(t, c, k); n != 0 {
				t.Fatalf("refused URLs left %d webhooks", n)
			}

			// Public destinations are accepted; nothing is ever published to them.
			id, _ := c.CreateWebhook(k, map[string]any{"webhook_url": "http://93.184.216.34/hook", "event_types": []string{"never.sent"}})
			c.CreateWebhook(k, map[string]any{"webhook_url": "https://public.example/hook", "event_types": []string{"never.sent"}})
			for _, u := range blocked {
				r := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"webhook_url": u})
				apiExpectError(t, "update "+u, r, http.StatusBadRequest, "url_not_allowed", "webhook_url")
			}
			if got := c.Do("GET", "/v1/webhooks/"+id, k, nil).Data()["webhook_url"]; got != "http://93.184.216.34/hook" {
				t.Errorf("webhook_url after refused updates = %v", got)
			}
			if u := c.Do("PUT", "/v1/webhooks/"+id, k, map[string]any{"webhook_url": "https://public.example/other"}); u.Status != http.StatusOK {
				t.Errorf("update to a public host: %d %s", u.Status, u.Body)
			}
			if n := apiWebhookCount(t, c, k); n != 2 {
				t.Errorf("%d webhooks, want 2", n)
			}
		})
	}
}

// TestURLNotAllowedNamesTheSettingThatAllowsIt checks that refusing a loopback
// URL tells the developer how to allow it, on every endpoint that takes one:
// the usual reason to meet the error is a receiver on one's own machine.
func TestURLNotAllowedNamesTheSettingThatAllowsIt(t *testing.T) {
	c := apptest.Start(t, storetest.Engine{Name: storetest.SQLite, DataDir: t.TempDir()}, apptest.Options{BlockPrivate: true})
	k := apptest.AdminKey
	id, _ := c.CreateWebhook(k, map[string]any{"webhook_url": "http://93.184.216.34/hook", "event_types": []string{"never.sent"}})
	requests := []struct {
		what, method, path, field string
		body                      map[string]any
	}{
		{"create webhook", "POST", "/v1/webhooks", "webhook_url",
			map[string]any{"name": "local", "webhook_url": "http://127.0.0.1:9000/hook", "event_types": []string{"never.sent"}}},
		{"update webhook", "PUT", "/v1/webhooks/" + id, "webhook_url",
			map[string]any{"webhook_url": "http://127.0.0.1:9000/hook"}},
		{"create webhook subscription", "POST", "/v1/subscriptions", "destination.url",
			map[string]any{"name": "local", "event_types": []string{"never.sent"}, "destination": map[string]any{"type": "webhook", "url": "http://127.0.0.1:9000/hook"}}},
		{"create Discord subscription", "POST", "/v1/subscriptions", "destination.webhook_url",
			map[string]any{"name": "local", "event_types": []string{"never.sent"}, "destination": map[string]any{"type": "discord", "webhook_url": "http://127.0.0.1:9/api/webhooks/1/x"}}},
	}
	for _, req := range requests {
		r := c.Do(req.method, req.path, k, req.body)
		apiExpectError(t, req.what, r, http.StatusBadRequest, "url_not_allowed", req.field)
		e, _ := r.JSON["error"].(map[string]any)
		msg, _ := e["message"].(string)
		for _, want := range []string{req.field + " is not allowed", "127.0.0.1 is a loopback address", "CARRIER_ALLOW_PRIVATE_NETWORKS=true", "--dev"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not say %q", req.what, msg, want)
			}
		}
	}
}

// --- 7. SSRF at dial time ---

// TestAPISSRFDialTimeRebinding creates a webhook on a host that resolves to a
// public address at create time and to loopback afterwards: the delivery must
// fail once with ssrf_blocked, without retries and without reaching loopback.
func TestAPISSRFDialTimeRebinding(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			res := &apiRebindResolver{}
			c := apptest.Start(t, e, apptest.Options{BlockPrivate: true, Resolver: res})
			k := apptest.AdminKey
			ep := apptest.NewEndpoint(t, nil)
			u, err := url.Parse(ep.URL)
			if err != nil {
				t.Fatal(err)
			}

			res.public.Store(true)
			r := c.Do("POST", "/v1/webhooks", k, map[string]any{"name": "rebind", "webhook_url": "http://rebind.example:" + u.Port() + "/hook",
				"event_types": []string{"scrape.completed"}, "max_retries": 3})
			res.public.Store(false)
			if r.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			id := r.Data()["webhook_id"].(string)
			if n := res.publicAnswers.Load(); n != 1 {
				t.Fatalf("create resolved the host %d times, want 1", n)
			}

			apiPublish(t, c, k, map[string]any{"type": "scrape.completed"}, 1)
			d := apiWaitDeliveryState(t, c, k, id, "failed")
			if d["error_code"] != "ssrf_blocked" || d["attempt_number"] != float64(1) {
				t.Errorf("delivery: error_code %v attempt_number %v, want ssrf_blocked after 1 attempt", d["error_code"], d["attempt_number"])
			}
			if res.privateAnswers.Load() < 1 {
				t.Errorf("the delivery never resolved the host")
			}
			time.Sleep(500 * time.Millisecond) // retries would come within ~50-150 ms
			g := c.Do("GET", "/v1/webhooks/"+id+"/deliveries/"+d["uuid"].(string), k, nil)
			attempts, _ := g.Data()["attempts"].([]any)
			if len(attempts) != 1 {
				t.Errorf("%d attempts, want 1: %s", len(attempts), g.Body)
			} else if a := attempts[0].(map[string]any); a["error_code"] != "ssrf_blocked" {
				t.Errorf("attempt error_code = %v", a["error_code"])
			}
			if dv, _ := g.Data()["delivery"].(map[string]any); dv["status"] != "failed" {
				t.Errorf("delivery status = %v, want failed", dv["status"])
			}
			if n := len(ep.Requests()); n != 0 {
				t.Errorf("loopback endpoint got %d requests", n)
			}
			if n := res.publicAnswers.Load(); n != 1 {
				t.Errorf("host resolved to the public address %d times, want 1", n)
			}
			w := c.Do("GET", "/v1/webhooks/"+id, k, nil).Data()
			if w["failed_deliveries"] != float64(1) || w["successful_deliveries"] != float64(0) {
				t.Errorf("webhook counters: failed %v successful %v", w["failed_deliveries"], w["successful_deliveries"])
			}
		})
	}
}

// --- 8. operations ---

// TestAPIOperations checks health, readiness and metrics.
func TestAPIOperations(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			if r := c.Do("GET", "/healthz", "", nil); r.Status != http.StatusOK {
				t.Errorf("healthz: %d %s", r.Status, r.Body)
			}
			if r := c.Do("GET", "/readyz", "", nil); r.Status != http.StatusOK || r.JSON["store"] != e.Name {
				t.Errorf("readyz: %d %s", r.Status, r.Body)
			}
			ep := apptest.NewEndpoint(t, nil)
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"scrape.completed"}})
			apiPublish(t, c, apptest.AdminKey, map[string]any{"type": "scrape.completed"}, 1)
			apiWaitDeliveryState(t, c, apptest.AdminKey, id, "delivered")

			var body string
			apptest.Eventually(t, 15*time.Second, "metrics after one delivery", func() bool {
				r := c.Do("GET", "/metrics", "", nil)
				body = string(r.Body)
				return r.Status == http.StatusOK && strings.Contains(body, `carrier_deliveries_total{outcome="delivered"} 1`)
			})
			for _, want := range []string{
				`carrier_events_accepted_total{duplicate="false"} 1`,
				`carrier_deliveries_total{outcome="delivered"} 1`,
				`carrier_attempt_duration_seconds_count{outcome="delivered"} 1`,
				`carrier_attempt_duration_seconds_bucket`,
				`carrier_deliveries_queue_depth{state="pending"} 0`,
				`carrier_deliveries_queue_depth{state="retrying"} 0`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			// The depth is the backlog only: finished deliveries are counted
			// by carrier_deliveries_total, not re-counted at every scrape.
			if strings.Contains(body, `carrier_deliveries_queue_depth{state="delivered"}`) {
				t.Errorf("queue depth reports finished deliveries")
			}
		})
	}
}
