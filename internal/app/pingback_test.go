package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/auth"
	"carrier/internal/config"
	"carrier/internal/dest/pingback"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// TestPingbackSentAs2captchaSendsIt: a task submitted through in.php with a
// pingback URL has its result sent there when it is decided, as 2captcha
// sends it (a form POST of id and code), through the delivery engine: a
// failing receiver is retried, the task's history says where the result went,
// and the delivery is listed under the host's pingback subscription and can be
// replayed.
func TestPingbackSentAs2captchaSendsIt(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{})
			_, key := r.c.NewProject("pingbacks")
			recv := apptest.NewEndpoint(t, func(n int, _ apptest.Request, w http.ResponseWriter) {
				if n < 2 {
					w.WriteHeader(http.StatusServiceUnavailable) // down for the first two tries
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			r.sim.SetNextOutcomes(simulator.Outcome{Answer: "TOKEN-PINGED"})
			target := recv.URL + "/captcha/done?mine=7"
			got := legacyCall(t, r.c.URL, "/in.php", "form", map[string]string{"key": key, "method": "userrecaptcha",
				"googlekey": "6Le-k", "pageurl": "https://example.com/a", "pingback": target})
			id, ok := strings.CutPrefix(got, "OK|")
			if !ok {
				t.Fatalf("in.php with pingback: %q", got)
			}
			reqs := recv.WaitRequests(t, 3, 20*time.Second)
			last := reqs[2]
			if last.Method != "POST" || last.Path != "/captcha/done" || last.Query != "mine=7" {
				t.Errorf("pingback went to %s %s?%s, want POST /captcha/done?mine=7", last.Method, last.Path, last.Query)
			}
			if ct := last.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("pingback Content-Type %q", ct)
			}
			form, err := url.ParseQuery(string(last.Body))
			if err != nil || form.Get("id") != id || form.Get("code") != "TOKEN-PINGED" || len(form) != 2 {
				t.Errorf("pingback body %q, want id=%s&code=TOKEN-PINGED", last.Body, id)
			}
			for _, rq := range reqs[1:] {
				if rq.Header.Get("X-Webhook-Delivery-Id") != reqs[0].Header.Get("X-Webhook-Delivery-Id") {
					t.Errorf("retries of one pingback carry different delivery ids")
				}
			}

			if pu := r.c.Do("GET", "/v1/tasks/"+id, key, nil).Data()["pingback_url"]; pu != target {
				t.Errorf("task pingback_url %v, want %s", pu, target)
			}
			// The task's history says where its result went.
			var entry map[string]any
			apptest.Eventually(t, 5*time.Second, "pingback history entry", func() bool {
				for _, h := range taskHistory(r.c, key, id) {
					if h["kind"] == "pingback" {
						entry = h
						return true
					}
				}
				return false
			})
			if msg, _ := entry["message"].(string); !strings.Contains(msg, target) {
				t.Errorf("history entry %v does not name the URL", entry)
			}

			// The pingback subscription of the host lists the delivery with
			// its attempts, and a replay sends the same pingback again.
			host := strings.TrimPrefix(recv.URL, "http://")
			subID := pingback.SubscriptionID(projectOf(t, r.c, key), host)
			sub := r.c.Do("GET", "/v1/subscriptions/"+subID, key, nil)
			if sub.Status != http.StatusOK {
				t.Fatalf("pingback subscription: %d %s", sub.Status, sub.Body)
			}
			if d, _ := sub.Data()["destination"].(map[string]any); d["type"] != "pingback" || d["host"] != host {
				t.Errorf("pingback subscription destination %v", sub.Data()["destination"])
			}
			var delivery map[string]any
			apptest.Eventually(t, 5*time.Second, "delivered pingback listed", func() bool {
				list := r.c.Do("GET", "/v1/subscriptions/"+subID+"/deliveries", key, nil).List()
				if len(list) == 1 && list[0]["status"] == "delivered" {
					delivery = list[0]
					return true
				}
				return false
			})
			detail := r.c.Do("GET", "/v1/subscriptions/"+subID+"/deliveries/"+delivery["uuid"].(string), key, nil)
			attempts, _ := detail.Data()["attempts"].([]any)
			if len(attempts) != 3 {
				t.Errorf("delivery has %d attempts, want 3: %s", len(attempts), detail.Body)
			} else if a := attempts[0].(map[string]any); a["request_url"] != target {
				t.Errorf("attempt recorded url %v, want %s", a["request_url"], target)
			}
			replay := r.c.Do("POST", "/v1/subscriptions/"+subID+"/deliveries/"+delivery["uuid"].(string)+"/replay", key, nil)
			if replay.Status != http.StatusOK && replay.Status != http.StatusAccepted {
				t.Fatalf("replay: %d %s", replay.Status, replay.Body)
			}
			again := recv.WaitRequests(t, 4, 10*time.Second)[3]
			if string(again.Body) != string(last.Body) {
				t.Errorf("replayed pingback %q, want %q", again.Body, last.Body)
			}

			// An unsolvable task sends its error code, as 2captcha does.
			r.sim.SetNextOutcomes(simulator.Outcome{Unsolvable: true})
			got = legacyCall(t, r.c.URL, "/in.php", "json", map[string]string{"key": key, "method": "userrecaptcha",
				"googlekey": "6Le-k", "pageurl": "https://example.com/a", "pingback": target, "json": "1"})
			if !strings.Contains(got, `"status":1`) {
				t.Fatalf("in.php json with pingback: %q", got)
			}
			unsolvable := recv.WaitRequests(t, 5, 10*time.Second)[4]
			if form, _ := url.ParseQuery(string(unsolvable.Body)); form.Get("code") != "ERROR_CAPTCHA_UNSOLVABLE" {
				t.Errorf("unsolvable task's pingback %q, want code=ERROR_CAPTCHA_UNSOLVABLE", unsolvable.Body)
			}
		})
	}
}

// TestPingbackFallsBackToGet: a receiver that answers the POST with 405 (a
// handler written for CaptchaAI's GET pingbacks, as in the source document's
// Flask and Express examples) gets the pingback as a GET with id and code in
// the query, next to its own parameters.
func TestPingbackFallsBackToGet(t *testing.T) {
	e := storetest.Engines(t)[0]
	r := startTaskRig(t, e, rigOptions{})
	_, key := r.c.NewProject("get-only")
	recv := apptest.NewEndpoint(t, func(_ int, rq apptest.Request, w http.ResponseWriter) {
		if rq.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Write([]byte("OK"))
	})
	r.sim.SetNextOutcomes(simulator.Outcome{Answer: "TOKEN-GET"})
	got := legacyCall(t, r.c.URL, "/in.php", "query", map[string]string{"key": key, "method": "userrecaptcha",
		"googlekey": "6Le-k", "pageurl": "https://example.com/a", "pingback": recv.URL + "/callback?job=9"})
	id := strings.TrimPrefix(got, "OK|")
	reqs := recv.WaitRequests(t, 2, 10*time.Second)
	if reqs[0].Method != "POST" || reqs[1].Method != "GET" {
		t.Fatalf("requests %s, %s; want POST then GET", reqs[0].Method, reqs[1].Method)
	}
	q, _ := url.ParseQuery(reqs[1].Query)
	if reqs[1].Path != "/callback" || q.Get("id") != id || q.Get("code") != "TOKEN-GET" || q.Get("job") != "9" {
		t.Errorf("GET pingback %s?%s, want /callback with job=9, id=%s, code=TOKEN-GET", reqs[1].Path, reqs[1].Query, id)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(recv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2: the GET was delivered and not retried", n)
	}
}

// TestPingbackRegistration: add_pingback, get_pingback and del_pingback
// manage the project's pingback addresses, in plain text and JSON; an address
// Carrier may not reach is refused with a text naming the setting.
func TestPingbackRegistration(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{})
			_, key := r.c.NewProject("registration")
			res := func(params map[string]string) string {
				params["key"] = key
				return legacyCall(t, r.c.URL, "/res.php", "query", params)
			}
			if got := res(map[string]string{"action": "get_pingback"}); got != "OK" {
				t.Errorf("get_pingback with none: %q, want OK", got)
			}
			if got := res(map[string]string{"action": "add_pingback", "addr": "127.0.0.1:9"}); got != "OK" {
				t.Errorf("add_pingback bare host: %q", got)
			}
			if got := res(map[string]string{"action": "add_pingback", "addr": "http://localhost:8/pingback/url/"}); got != "OK" {
				t.Errorf("add_pingback URL: %q", got)
			}
			if got := res(map[string]string{"action": "add_pingback", "addr": "127.0.0.1:9"}); got != "OK" {
				t.Errorf("add_pingback again: %q, want OK (nothing new)", got)
			}
			if got := res(map[string]string{"action": "get_pingback"}); got != "OK|127.0.0.1:9|localhost:8" && got != "OK|localhost:8|127.0.0.1:9" {
				t.Errorf("get_pingback: %q", got)
			}
			m := decodeLegacy(t, res(map[string]string{"action": "get_pingback", "json": "1"}))
			if list, _ := m["request"].([]any); m["status"] != 1.0 || len(list) != 2 {
				t.Errorf("get_pingback json: %v", m)
			}
			if got := res(map[string]string{"action": "add_pingback"}); got != "ERROR_BAD_PARAMETERS" {
				t.Errorf("add_pingback without addr: %q", got)
			}
			if got := res(map[string]string{"action": "del_pingback", "addr": "127.0.0.1:9"}); got != "OK" {
				t.Errorf("del_pingback: %q", got)
			}
			if got := res(map[string]string{"action": "get_pingback"}); got != "OK|localhost:8" {
				t.Errorf("get_pingback after del: %q", got)
			}
			if got := res(map[string]string{"action": "del_pingback", "addr": "all"}); got != "OK" {
				t.Errorf("del_pingback all: %q", got)
			}
			if got := res(map[string]string{"action": "get_pingback"}); got != "OK" {
				t.Errorf("get_pingback after del all: %q", got)
			}
			// Another project does not see this project's addresses.
			res(map[string]string{"action": "add_pingback", "addr": "127.0.0.1:9"})
			_, other := r.c.NewProject("other")
			if got := legacyCall(t, r.c.URL, "/res.php", "query", map[string]string{"key": other, "action": "get_pingback"}); got != "OK" {
				t.Errorf("other project's get_pingback: %q", got)
			}
		})
	}
	// With private networks blocked, a loopback pingback is refused at submit,
	// naming the setting, and nothing is created.
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{BlockPrivate: true, Configure: func(cfg *config.Config) { cfg.Simulate = true }})
	m := decodeLegacy(t, legacyCall(t, c.URL, "/in.php", "query", map[string]string{"key": apptest.AdminKey, "method": "userrecaptcha",
		"googlekey": "6Le-k", "pageurl": "https://example.com/a", "pingback": "http://127.0.0.1:9/cb", "json": "1"}))
	if text, _ := m["error_text"].(string); m["status"] != 0.0 || m["request"] != "ERROR_BAD_PARAMETERS" || !strings.Contains(text, "CARRIER_ALLOW_PRIVATE_NETWORKS") {
		t.Errorf("blocked pingback: %v", m)
	}
	if list := c.Do("GET", "/v1/tasks", apptest.AdminKey, nil).List(); len(list) != 0 {
		t.Errorf("a refused in.php created %d tasks", len(list))
	}
	if got := legacyCall(t, c.URL, "/res.php", "query", map[string]string{"key": apptest.AdminKey, "action": "add_pingback", "addr": "10.0.0.7"}); got != "ERROR_BAD_PARAMETERS" {
		t.Errorf("add_pingback of a private address: %q", got)
	}
	if got := legacyCall(t, c.URL, "/in.php", "query", map[string]string{"key": apptest.AdminKey, "method": "userrecaptcha",
		"googlekey": "6Le-k", "pageurl": "https://example.com/a", "pingback": "ftp://example.com/x"}); got != "ERROR_BAD_PARAMETERS" {
		t.Errorf("pingback that is not http(s): %q", got)
	}
}

func taskHistory(c *apptest.Carrier, key, id string) []map[string]any {
	resp := c.Do("GET", "/v1/tasks/"+id, key, nil)
	var out []map[string]any
	hist, _ := resp.Data()["history"].([]any)
	for _, h := range hist {
		if m, ok := h.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// projectOf is the project id of a key.
func projectOf(t *testing.T, c *apptest.Carrier, key string) string {
	t.Helper()
	k, err := c.App.Store.APIKeyByHash(t.Context(), auth.HashKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return k.ProjectID
}
