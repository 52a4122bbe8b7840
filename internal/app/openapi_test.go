package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"carrier/internal/api"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// TestOpenAPIAnswersMatchTheDocument calls every operation of
// /v1/openapi.json on a running Carrier and checks each answer against the
// document: its status is one the operation lists, and its body validates
// against that response's schema (types, required properties, no
// properties the schema does not name, enums, RFC 3339 times). It covers
// what internal/api's drift tests cannot see: answers built as maps, which
// schema a route answers with, and the statuses routes really give.
func TestOpenAPIAnswersMatchTheDocument(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.Simulate = true }})
			o := &conformance{t: t, c: c, doc: doc, called: map[string]bool{}}
			o.run()
			t.Logf("%d operations called, %d requests checked", len(o.called), o.checked)
			var missed []string
			for path, ops := range doc["paths"].(map[string]any) {
				for method := range ops.(map[string]any) {
					if !o.called[strings.ToUpper(method)+" "+path] {
						missed = append(missed, strings.ToUpper(method)+" "+path)
					}
				}
			}
			sort.Strings(missed)
			for _, m := range missed {
				t.Errorf("%s is in openapi.json and this test does not call it", m)
			}
		})
	}
}

type conformance struct {
	t       *testing.T
	c       *apptest.Carrier
	doc     map[string]any
	called  map[string]bool
	checked int
}

// call sends a request to the route template (with its {parameters} filled
// in from args, in order), checks the answer and returns it.
func (o *conformance) call(method, template, key string, body any, args ...string) apptest.Response {
	o.t.Helper()
	path := template
	for _, a := range args {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + a + path[j+1:]
	}
	if q := strings.Index(template, "?"); q >= 0 {
		template = template[:q]
	}
	r := o.c.Do(method, path, key, body)
	o.check(method, template, r)
	return r
}

func (o *conformance) check(method, template string, r apptest.Response) {
	o.t.Helper()
	where := method + " " + template
	o.called[where] = true
	o.checked++
	op, _ := o.get(o.doc, "paths", template, strings.ToLower(method)).(map[string]any)
	if op == nil {
		o.t.Errorf("%s: not in openapi.json", where)
		return
	}
	resp, _ := o.get(op, "responses", strconv.Itoa(r.Status)).(map[string]any)
	if resp == nil {
		o.t.Errorf("%s answered %d, which openapi.json does not list: %s", where, r.Status, r.Body)
		return
	}
	if ref, ok := resp["$ref"].(string); ok {
		resp = o.ref(ref)
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	media, _ := o.get(resp, "content", ct).(map[string]any)
	if media == nil {
		o.t.Errorf("%s answered %d as %q, which openapi.json does not list", where, r.Status, ct)
		return
	}
	if ct != "application/json" {
		return
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		o.t.Errorf("%s: %v", where, err)
		return
	}
	for _, e := range o.validate("", media["schema"].(map[string]any), v) {
		o.t.Errorf("%s %d: %s\n%s", where, r.Status, e, r.Body)
	}
}

func (o *conformance) get(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

func (o *conformance) ref(ref string) map[string]any {
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	s, _ := o.get(o.doc, parts...).(map[string]any)
	if s == nil {
		o.t.Fatalf("openapi.json: $ref %q names nothing", ref)
	}
	return s
}

// validate checks v against the subset of JSON Schema openapi.json uses.
func (o *conformance) validate(at string, s map[string]any, v any) []string {
	if ref, ok := s["$ref"].(string); ok {
		return o.validate(at, o.ref(ref), v)
	}
	name := at
	if name == "" {
		name = "the body"
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		return []string{fmt.Sprintf("%s is %v, want %v", name, v, c)}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		return []string{fmt.Sprintf("%s is %v, not one of %v", name, v, enum)}
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	}
	kind := jsonKind(v)
	if len(types) > 0 && !slices.Contains(types, kind) && !(kind == "integer" && slices.Contains(types, "number")) {
		return []string{fmt.Sprintf("%s is a JSON %s, the schema says %v", name, kind, types)}
	}
	var errs []string
	switch v := v.(type) {
	case string:
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s is %q, not an RFC 3339 time", name, v))
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range v {
				errs = append(errs, o.validate(fmt.Sprintf("%s[%d]", at, i), items, x)...)
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		required, _ := s["required"].([]any)
		for _, req := range required {
			if _, ok := v[req.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s lacks the required %q", name, req))
			}
		}
		for k, x := range v {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, o.validate(strings.TrimPrefix(at+"."+k, "."), p, x)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s has %q, which the schema does not name", name, k))
				}
			case map[string]any:
				errs = append(errs, o.validate(at+"."+k, ap, x)...)
			}
		}
	}
	return errs
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (o *conformance) run() {
	t, c := o.t, o.c
	admin := apptest.AdminKey
	id := func(r apptest.Response, key string) string {
		t.Helper()
		s, _ := r.Data()[key].(string)
		if s == "" {
			t.Fatalf("no %s in %d %s", key, r.Status, r.Body)
		}
		return s
	}

	// Operations, the document, errors any route gives.
	o.call("GET", "/healthz", "", nil)
	o.call("GET", "/readyz", "", nil)
	o.call("GET", "/metrics", "", nil)
	o.call("GET", "/v1/openapi.json", "", nil)
	o.call("GET", "/v1/webhooks", "", nil)                        // 401
	o.call("GET", "/v1/webhooks", "ck_not_a_key_0000000000", nil) // 401
	o.call("POST", "/v1/webhooks", admin, `{"name": `)            // 400 invalid_json
	o.call("POST", "/v1/webhooks", admin, map[string]any{"nmae": "x"})
	o.call("GET", "/v1/webhooks/{id}", admin, nil, "0190aaaa-0000-7000-8000-000000000000") // 404

	// Projects and keys.
	p := o.call("POST", "/v1/projects", admin, map[string]any{"name": "openapi"})
	projectID := p.Data()["project"].(map[string]any)["id"].(string)
	key := p.Data()["api_key"].(map[string]any)["key"].(string)
	o.call("POST", "/v1/projects", key, map[string]any{"name": "not admin"}) // 403
	k := o.call("POST", "/v1/projects/{id}/keys", key, map[string]any{"name": "second"}, projectID)
	o.call("DELETE", "/v1/projects/{id}/keys/{keyId}", key, nil, projectID, id(k, "id"))

	// Webhooks, their deliveries and events.
	ep := apptest.NewEndpoint(t, nil)
	w := o.call("POST", "/v1/webhooks", key, map[string]any{"name": "hook", "webhook_url": ep.URL, "event_types": []string{"order.*"},
		"custom_headers": map[string]string{"X-Env": "test"}, "metadata": map[string]any{"team": "a"}})
	wid := id(w, "webhook_id")
	o.call("GET", "/v1/webhooks", key, nil)
	o.call("GET", "/v1/webhooks/{id}", key, nil, wid)
	o.call("PUT", "/v1/webhooks/{id}", key, map[string]any{"description": "orders"}, wid)
	o.call("PUT", "/v1/webhooks/{id}", key, map[string]any{"timeout_seconds": 99}, wid) // 400 validation_error
	ev := o.call("POST", "/v1/events", key, map[string]any{"type": "order.paid", "subject": "o-1", "data": map[string]any{"n": 1},
		"attributes": map[string]any{"price": 5}, "idempotency_key": "order-1"})
	eventID := id(ev, "event_id")
	o.call("POST", "/v1/events", key, map[string]any{"type": "order.paid", "idempotency_key": "order-1"}) // 200 duplicate
	o.call("POST", "/v1/events", key, map[string]any{"data": 1})                                          // 400
	ep.WaitRequests(t, 1, 10*time.Second)
	o.call("GET", "/v1/events?limit=10", key, nil)
	o.call("GET", "/v1/events/{id}", key, nil, eventID)
	o.call("POST", "/v1/webhooks/{id}/test", key, nil, wid)
	var deliveryID string
	apptest.Eventually(t, 10*time.Second, "a delivered delivery", func() bool {
		r := c.Do("GET", "/v1/webhooks/"+wid+"/deliveries?status=delivered", key, nil)
		for _, d := range r.List() {
			deliveryID, _ = d["uuid"].(string)
		}
		return deliveryID != ""
	})
	o.call("GET", "/v1/webhooks/{id}/deliveries?status=delivered&from=2026-01-01", key, nil, wid)
	o.call("GET", "/v1/webhooks/{id}/deliveries?status=lost", key, nil, wid) // 400
	o.call("GET", "/v1/webhooks/{id}/deliveries/{deliveryId}", key, nil, wid, deliveryID)
	o.call("POST", "/v1/webhooks/{id}/deliveries/{deliveryId}/replay", key, nil, wid, deliveryID)
	o.call("POST", "/v1/webhooks/{id}/rotate-secret", key, map[string]any{"overlap_seconds": 60}, wid)
	o.call("POST", "/v1/webhooks/{id}/recover", key, map[string]any{"from": "2026-01-01T00:00:00Z"}, wid)
	o.call("PUT", "/v1/webhooks/{id}/deactivate", key, nil, wid)
	o.call("PUT", "/v1/webhooks/{id}/activate", key, nil, wid)
	o.call("GET", "/v1/webhook-events", key, nil)

	// Subscriptions, of a webhook and of another kind.
	s := o.call("POST", "/v1/subscriptions", key, map[string]any{"name": "audit", "event_types": []string{"order.*"},
		"filter_policy": map[string]any{"price": []any{map[string]any{"numeric": []any{">", 1}}}},
		"destination":   map[string]any{"type": "log", "file": "audit.jsonl"}})
	sid := id(s, "subscription_id")
	o.call("POST", "/v1/subscriptions", key, map[string]any{"name": "app", "event_types": []string{"order.*"},
		"destination": map[string]any{"type": "webhook", "url": ep.URL}})
	o.call("GET", "/v1/subscriptions", key, nil)
	o.call("GET", "/v1/subscriptions/{id}", key, nil, sid)
	o.call("PUT", "/v1/subscriptions/{id}", key, map[string]any{"tags": []string{"audit"}}, sid)
	o.call("PUT", "/v1/subscriptions/{id}/deactivate", key, nil, sid)
	o.call("PUT", "/v1/subscriptions/{id}/activate", key, nil, sid)
	o.call("POST", "/v1/subscriptions/{id}/test", key, nil, sid)
	var subDelivery string
	apptest.Eventually(t, 10*time.Second, "the subscription's delivery", func() bool {
		for _, d := range c.Do("GET", "/v1/subscriptions/"+sid+"/deliveries", key, nil).List() {
			subDelivery, _ = d["uuid"].(string)
		}
		return subDelivery != ""
	})
	o.call("GET", "/v1/subscriptions/{id}/deliveries?limit=5", key, nil, sid)
	o.call("GET", "/v1/subscriptions/{id}/deliveries/{deliveryId}", key, nil, sid, subDelivery)
	o.call("POST", "/v1/subscriptions/{id}/deliveries/{deliveryId}/replay", key, nil, sid, subDelivery)
	o.call("POST", "/v1/subscriptions/{id}/recover", key, map[string]any{"from": "2026-01-01T00:00:00Z", "to": time.Now().UTC().Format(time.RFC3339)}, sid)
	o.call("DELETE", "/v1/subscriptions/{id}", key, nil, sid)
	o.call("DELETE", "/v1/webhooks/{id}", key, nil, wid)

	// Tasks (the provider simulator) and dead letters.
	task := o.call("POST", "/v1/tasks", key, map[string]any{"method": "userrecaptcha",
		"params": map[string]string{"googlekey": "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-", "pageurl": "https://example.com/login"}})
	taskID := id(task, "task_id")
	o.call("GET", "/v1/tasks?status=pending", key, nil)
	o.call("GET", "/v1/tasks/{id}", key, nil, taskID)
	o.call("GET", "/v1/tasks/{id}", key, nil, "no-such-task")
	o.call("GET", "/v1/dead-letters?status=pending", key, nil)
	o.call("GET", "/v1/dead-letters/{id}", key, nil, "no-such-dead-letter")
	o.call("POST", "/v1/dead-letters/{id}/redrive", key, nil, "no-such-dead-letter")
	o.call("POST", "/v1/dead-letters/redrive", key, nil)
	o.call("GET", "/callbacks/{token}", "", nil, "no-such-token-0123456789")
	o.call("POST", "/callbacks/{token}", "", "id=1&code=x", "no-such-token-0123456789")

	// Topics.
	o.call("POST", "/v1/topics", key, map[string]any{"name": "results", "attributes": map[string]string{"DisplayName": "Results"}})
	o.call("GET", "/v1/topics", key, nil)
	o.call("GET", "/v1/topics/{name}", key, nil, "results")
	o.call("DELETE", "/v1/topics/{name}", key, nil, "results")

	// Queues and their messages.
	dlq := o.call("POST", "/v1/queues", key, map[string]any{"name": "dead"})
	q := o.call("POST", "/v1/queues", key, map[string]any{"name": "work", "dead_letter_queue": "dead", "max_receive_count": 3})
	qid, dlqID := id(q, "id"), id(dlq, "id")
	o.call("POST", "/v1/queues", key, map[string]any{"name": "jobs.fifo", "fifo": true, "content_based_deduplication": true})
	o.call("GET", "/v1/queues", key, nil)
	o.call("GET", "/v1/queues/{id}", key, nil, qid)
	o.call("POST", "/v1/queues/{id}/messages", key, map[string]any{"body": "one", "attributes": map[string]string{"k": "v"}}, qid)
	o.call("POST", "/v1/queues/{id}/messages", key, map[string]any{"messages": []any{map[string]any{"body": "two"}, map[string]any{"body": "three"}}}, qid)
	rec := o.call("POST", "/v1/queues/{id}/receive", key, map[string]any{"max_messages": 10}, qid)
	msgs, _ := rec.Data()["messages"].([]any)
	if len(msgs) < 2 {
		t.Fatalf("received %d messages: %s", len(msgs), rec.Body)
	}
	handle := func(i int) string { return msgs[i].(map[string]any)["receipt_handle"].(string) }
	o.call("POST", "/v1/queues/{id}/visibility", key, map[string]any{"receipt_handle": handle(0), "visibility_timeout_seconds": 0}, qid)
	o.call("DELETE", "/v1/queues/{id}/messages/{receiptHandle}", key, nil, qid, handle(1))
	o.call("DELETE", "/v1/queues/{id}/messages/{receiptHandle}", key, nil, qid, handle(1)) // 404
	o.call("POST", "/v1/queues/{id}/redrive", key, map[string]any{"max_messages": 10}, dlqID)
	o.call("POST", "/v1/queues/{id}/purge", key, nil, qid)
	o.call("DELETE", "/v1/queues/{id}", key, nil, dlqID) // 409: work's dead-letter queue
	o.call("DELETE", "/v1/queues/{id}", key, nil, qid)

	// SQS credentials.
	cred := o.call("POST", "/v1/sqs-credentials", key, nil)
	o.call("GET", "/v1/sqs-credentials", key, nil)
	o.call("DELETE", "/v1/sqs-credentials/{id}", key, nil, id(cred, "access_key_id"))

	// Alert rules, alerts and silences.
	rule := o.call("POST", "/v1/alert-rules", key, map[string]any{"name": "Backlog", "metric": "subscription.drain_time", "window": "5m",
		"tiers": []any{map[string]any{"severity": "warning", "fire": 600, "clear": 120}}})
	ruleID := id(rule, "id")
	o.call("GET", "/v1/alert-rules", key, nil)
	o.call("GET", "/v1/alert-rules/{id}", key, nil, ruleID)
	o.call("PUT", "/v1/alert-rules/{id}", key, map[string]any{"name": "Backlog", "metric": "subscription.drain_time", "window": "10m",
		"tiers": []any{map[string]any{"severity": "critical", "fire": 900}}, "enabled": false}, ruleID)
	o.call("POST", "/v1/alert-rules/{id}/test", key, nil, ruleID)
	o.call("GET", "/v1/alerts?current=true", key, nil)
	o.call("GET", "/v1/alerts/{id}", key, nil, "no-such-alert")
	o.call("DELETE", "/v1/alert-rules/{id}", key, nil, ruleID)
	sil := o.call("POST", "/v1/silences", key, map[string]any{"matchers": []any{map[string]any{"name": "rule", "value": "Backlog"}},
		"comment": "maintenance", "ends_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	silID := id(sil, "id")
	o.call("GET", "/v1/silences", key, nil)
	o.call("GET", "/v1/silences/{id}", key, nil, silID)
	o.call("DELETE", "/v1/silences/{id}", key, nil, silID)

	// CAPTCHA sites and a verification against a local stand-in.
	vendor := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"success": true, "hostname": "example.com", "action": "login"}`))
	})
	site := o.call("POST", "/v1/captcha/sites", key, map[string]any{"name": "login", "vendor": "turnstile",
		"keys":     map[string]any{"site_key": "0x4AAAAAAA", "secret": "0x4AAAAAAA-secret"},
		"settings": map[string]any{"policy": "fail_closed", "endpoints": []string{vendor.URL}}})
	siteID := id(site, "id")
	o.call("GET", "/v1/captcha/sites", key, nil)
	o.call("GET", "/v1/captcha/sites/{id}", key, nil, siteID)
	o.call("PUT", "/v1/captcha/sites/{id}", key, map[string]any{"name": "login", "vendor": "turnstile",
		"keys":     map[string]any{"site_key": "0x4AAAAAAA", "secret": "***hidden***"},
		"settings": map[string]any{"policy": "fail_open", "endpoints": []string{vendor.URL}}}, siteID)
	o.call("POST", "/v1/captcha/verify", key, map[string]any{"site": "login", "token": "tok-1", "remote_ip": "203.0.113.7"})
	o.call("POST", "/v1/captcha/verify", key, map[string]any{"site": "nowhere", "token": "tok-1"}) // 404
	o.call("DELETE", "/v1/captcha/sites/{id}", key, nil, siteID)
}
