package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// taskRig is a Carrier with a provider simulator and a webhook endpoint that
// receives every task.* event.
type taskRig struct {
	t   *testing.T
	c   *apptest.Carrier
	sim *simulator.Simulator
	ep  *apptest.Endpoint
}

type rigOptions struct {
	sim             simulator.Config
	callbackTimeout time.Duration // default 30s: results come by pingback unless a test wants polling
	pollInterval    time.Duration
	maxAge          time.Duration
	manualRedrive   bool
	providerURL     func(simURL string) string // put something between Carrier and the simulator
}

func startTaskRig(t *testing.T, e storetest.Engine, o rigOptions) *taskRig {
	t.Helper()
	if o.sim.Key == "" {
		o.sim.Key = simulator.DefaultKey
	}
	if o.sim.Balance == 0 {
		o.sim.Balance = 100
	}
	sim := simulator.New(o.sim)
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if o.providerURL != nil {
		simURL = o.providerURL(simURL)
	}
	if o.callbackTimeout == 0 {
		o.callbackTimeout = 30 * time.Second
	}
	if o.pollInterval == 0 {
		o.pollInterval = 200 * time.Millisecond
	}
	if o.maxAge == 0 {
		o.maxAge = time.Minute
	}
	c := apptest.Start(t, e, apptest.Options{
		Configure: func(cfg *config.Config) {
			cfg.ProviderURL, cfg.ProviderKey = simURL, o.sim.Key
			cfg.CallbackTimeout, cfg.PollInterval, cfg.TaskMaxAge = o.callbackTimeout, o.pollInterval, o.maxAge
			cfg.SubmitRetryBase = 50 * time.Millisecond
		},
		Tasks: func(tc *task.Config) {
			tc.Tick = 50 * time.Millisecond
			tc.ManualRedrive = o.manualRedrive
		},
	})
	ep := apptest.NewEndpoint(t, nil)
	c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"task.*"}})
	return &taskRig{t: t, c: c, sim: sim, ep: ep}
}

// create submits a task through the API and returns its id.
func (r *taskRig) create(fields map[string]any) string {
	r.t.Helper()
	if fields == nil {
		fields = map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"}}
	}
	resp := r.c.Admin("POST", "/v1/tasks", fields)
	if resp.Status != http.StatusAccepted {
		r.t.Fatalf("create task: %d %s", resp.Status, resp.Body)
	}
	return resp.Data()["task_id"].(string)
}

func (r *taskRig) task(id string) map[string]any {
	r.t.Helper()
	resp := r.c.Admin("GET", "/v1/tasks/"+id, nil)
	if resp.Status != http.StatusOK {
		r.t.Fatalf("get task: %d %s", resp.Status, resp.Body)
	}
	return resp.Data()
}

// waitStatus waits until the task has the status and returns it.
func (r *taskRig) waitStatus(id, status string, timeout time.Duration) map[string]any {
	r.t.Helper()
	var got map[string]any
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		got = r.task(id)
		if got["status"] == status {
			return got
		}
		time.Sleep(25 * time.Millisecond)
	}
	r.t.Fatalf("task %s: status %v after %v, want %s; task: %v", id, got["status"], timeout, status, got)
	return nil
}

// events returns the task events the endpoint received for a task, by type.
func (r *taskRig) events(id string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, req := range r.ep.Requests() {
		var body struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		json.Unmarshal(req.Body, &body)
		if body.Data["task_id"] == id {
			out[body.Type] = append(out[body.Type], body.Data)
		}
	}
	return out
}

// waitEvent waits for at least one event of type typ for the task.
func (r *taskRig) waitEvent(id, typ string) map[string]any {
	r.t.Helper()
	var got []map[string]any
	apptest.Eventually(r.t, 10*time.Second, typ+" event for "+id, func() bool {
		got = r.events(id)[typ]
		return len(got) > 0
	})
	return got[0]
}

func historyKinds(task map[string]any) []string {
	var kinds []string
	h, _ := task["history"].([]any)
	for _, e := range h {
		kinds = append(kinds, e.(map[string]any)["kind"].(string))
	}
	return kinds
}

func count(list []string, v string) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

func TestTaskSolvedByCallback(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		for _, e := range storetest.Engines(t) {
			t.Run(e.Name+"/"+method, func(t *testing.T) {
				r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond, PingbackMethod: method}})
				id := r.create(map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"},
					"metadata": map[string]any{"job": "job-7"}})
				got := r.waitStatus(id, "solved", 10*time.Second)
				if got["via"] != "callback" {
					t.Errorf("via = %v, want callback", got["via"])
				}
				st, ok := r.sim.Task(got["provider_id"].(string))
				if !ok || got["solution"] != st.Answer {
					t.Errorf("solution = %v, want the simulator's answer %q", got["solution"], st.Answer)
				}
				solved := r.waitEvent(id, task.EventSolved)
				if solved["solution"] != st.Answer || solved["via"] != "callback" {
					t.Errorf("task.solved data = %v", solved)
				}
				if meta, _ := solved["metadata"].(map[string]any); meta["job"] != "job-7" {
					t.Errorf("metadata not carried into the event: %v", solved["metadata"])
				}
				r.waitEvent(id, task.EventSubmitted)
				if stats := r.sim.Stats(); stats.Submits != 1 || stats.ResRequests != 0 {
					t.Errorf("upstream calls: %+v, want one submit and no result requests", stats)
				}
				time.Sleep(300 * time.Millisecond)
				if n := len(r.events(id)[task.EventSolved]); n != 1 {
					t.Errorf("%d task.solved events, want 1", n)
				}
			})
		}
	}
}

func TestTaskSolvedByPollingWhenPingbackLost(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
				callbackTimeout: 300 * time.Millisecond})
			r.sim.DropNextPingbacks(3)
			ids := []string{r.create(nil), r.create(nil), r.create(nil)}
			for _, id := range ids {
				got := r.waitStatus(id, "solved", 10*time.Second)
				if got["via"] != "poll" {
					t.Errorf("via = %v, want poll", got["via"])
				}
				r.waitEvent(id, task.EventSolved)
			}
			stats := r.sim.Stats()
			if stats.PingbacksLost != 3 {
				t.Errorf("pingbacks lost = %d, want 3", stats.PingbacksLost)
			}
			// The three overdue tasks are asked about together.
			if stats.GetRequests > 2 {
				t.Errorf("result requests = %d, want the batch to need at most 2", stats.GetRequests)
			}
		})
	}
}

func TestTaskDuplicateAndRacingResultsPublishOnce(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// Every pingback is sent twice and late, right when the poller asks:
			// callbacks and polls race for every task.
			r := startTaskRig(t, e, rigOptions{
				sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 30 * time.Millisecond,
					Faults: simulator.Faults{DuplicatePingbacks: 1, LatePingbacks: 1, LateBy: 250 * time.Millisecond}},
				callbackTimeout: 250 * time.Millisecond, pollInterval: 50 * time.Millisecond})
			var ids []string
			for range 8 {
				ids = append(ids, r.create(nil))
			}
			for _, id := range ids {
				r.waitStatus(id, "solved", 10*time.Second)
			}
			time.Sleep(time.Second) // let every duplicate and late result land
			for _, id := range ids {
				if n := len(r.events(id)[task.EventSolved]); n != 1 {
					t.Errorf("task %s: %d task.solved events, want exactly 1", id, n)
				}
				kinds := historyKinds(r.task(id))
				decided := count(kinds, "callback") + count(kinds, "poll")
				if decided != 1 {
					t.Errorf("task %s: %d deciding entries in history %v, want 1", id, decided, kinds)
				}
				if count(kinds, "duplicate") < 1 {
					t.Errorf("task %s: repeated results not recorded as duplicates: %v", id, kinds)
				}
			}
		})
	}
}

func TestTaskSubmitErrors(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}})

			r.sim.FailNextSubmits(2, "ERROR_NO_SLOT_AVAILABLE")
			id := r.create(nil)
			got := r.waitStatus(id, "solved", 10*time.Second)
			if got["submit_attempts"] != float64(3) {
				t.Errorf("submit_attempts = %v, want 3", got["submit_attempts"])
			}
			if n := count(historyKinds(got), "submit_error"); n != 2 {
				t.Errorf("%d submit_error entries, want 2: %v", n, historyKinds(got))
			}

			r.sim.FailNextSubmits(1, "ERROR_ZERO_BALANCE")
			id = r.create(nil)
			got = r.waitStatus(id, "failed", 10*time.Second)
			if got["error_code"] != "ERROR_ZERO_BALANCE" || got["submit_attempts"] != float64(1) {
				t.Errorf("failed task = %v", got)
			}
			failed := r.waitEvent(id, task.EventFailed)
			if failed["error_code"] != "ERROR_ZERO_BALANCE" {
				t.Errorf("task.failed data = %v", failed)
			}
		})
	}
}

func TestTaskUnsolvableAndExpired(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
				Faults: simulator.Faults{Unsolvable: 1}}, maxAge: 1500 * time.Millisecond})
			id := r.create(nil)
			got := r.waitStatus(id, "failed", 10*time.Second)
			if got["error_code"] != "ERROR_CAPTCHA_UNSOLVABLE" {
				t.Errorf("unsolvable task = %v", got)
			}
			r.waitEvent(id, task.EventFailed)

			// A task that never gets a result (pingback lost, solve slower than the max age) expires.
			r.sim.SetFaults(simulator.Faults{LostPingbacks: 1})
			r.sim.DropNextPingbacks(1)
			slow := simulator.Faults{LostPingbacks: 1, ResDelay: 0}
			r.sim.SetFaults(slow)
			r.sim.SetNextOutcomes(simulator.Outcome{Delay: time.Minute})
			id = r.create(nil)
			got = r.waitStatus(id, "expired", 10*time.Second)
			if got["completed_at"] == nil {
				t.Errorf("expired task without completed_at: %v", got)
			}
			r.waitEvent(id, task.EventExpired)
		})
	}
}

// delayedSubmits puts a proxy in front of the simulator that holds in.php
// answers back for hold, so the pingback arrives before Carrier knows the
// provider's id.
func delayedSubmits(t *testing.T, hold time.Duration) func(string) string {
	return func(simURL string) string {
		target, _ := url.Parse(simURL)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out, err := http.DefaultTransport.RoundTrip(reverse(r, target))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer out.Body.Close()
			body, _ := io.ReadAll(out.Body)
			if strings.HasSuffix(r.URL.Path, "/in.php") {
				time.Sleep(hold)
			}
			w.WriteHeader(out.StatusCode)
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
}

func reverse(r *http.Request, target *url.URL) *http.Request {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = target.Scheme, target.Host, target.Host, ""
	return out
}

func TestTaskDeadLetterRedrive(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name+"/manual", func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 0, MaxDelay: time.Millisecond},
				providerURL: delayedSubmits(t, 600*time.Millisecond), manualRedrive: true})
			id := r.create(nil)
			r.waitStatus(id, "submitted", 10*time.Second)
			var dl map[string]any
			apptest.Eventually(t, 5*time.Second, "dead letter", func() bool {
				list := r.c.Admin("GET", "/v1/dead-letters?task_id="+id, nil).List()
				if len(list) == 1 {
					dl = list[0]
				}
				return dl != nil
			})
			if dl["reason"] != task.ReasonUnknownProviderID || dl["status"] != "pending" || !strings.Contains(dl["query"].(string), "code=") {
				t.Fatalf("dead letter = %v", dl)
			}
			if got := r.task(id); got["status"] != "submitted" {
				t.Fatalf("task decided by an unmatched callback: %v", got)
			}
			resp := r.c.Admin("POST", "/v1/dead-letters/"+dl["id"].(string)+"/redrive", nil)
			if resp.Status != http.StatusOK || resp.Data()["status"] != "redriven" {
				t.Fatalf("redrive: %d %s", resp.Status, resp.Body)
			}
			got := r.waitStatus(id, "solved", 5*time.Second)
			if got["via"] != "callback" {
				t.Errorf("via = %v, want callback (the redriven pingback)", got["via"])
			}
			r.waitEvent(id, task.EventSolved)
			if resp := r.c.Admin("POST", "/v1/dead-letters/"+dl["id"].(string)+"/redrive", nil); resp.Status != http.StatusConflict {
				t.Errorf("second redrive: %d %s, want 409", resp.Status, resp.Body)
			}
			// Another project cannot see or redrive it.
			_, otherKey := r.c.NewProject("other")
			if resp := r.c.Do("GET", "/v1/dead-letters/"+dl["id"].(string), otherKey, nil); resp.Status != http.StatusNotFound {
				t.Errorf("other project reads dead letter: %d", resp.Status)
			}
			metrics := r.c.Do("GET", "/metrics", "", nil)
			if !strings.Contains(string(metrics.Body), `carrier_dead_letters{status="redriven"} 1`) {
				t.Errorf("metrics lack the dead letter count")
			}
		})
		t.Run(e.Name+"/automatic", func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 0, MaxDelay: time.Millisecond},
				providerURL: delayedSubmits(t, 600*time.Millisecond)})
			id := r.create(nil)
			got := r.waitStatus(id, "solved", 10*time.Second)
			if got["via"] != "callback" {
				t.Errorf("via = %v, want callback", got["via"])
			}
			var list []map[string]any
			apptest.Eventually(t, 5*time.Second, "dead letter redriven", func() bool {
				list = r.c.Admin("GET", "/v1/dead-letters?task_id="+id, nil).List()
				return len(list) == 1 && list[0]["status"] == "redriven"
			})
		})
	}
}

func TestTaskForgedAndMalformedCallbacks(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}})
			id := r.create(nil)
			before := r.waitStatus(id, "solved", 10*time.Second)
			st, _ := r.sim.Task(before["provider_id"].(string))
			// A pingback that beat the submit answer may have left a (redriven)
			// dead letter; the forged callbacks must add nothing to them.
			deadBefore := r.c.Admin("GET", "/v1/dead-letters", nil).List()

			// A wrong token: 404, nothing recorded anywhere.
			forged := []string{
				r.c.URL + "/callbacks/0123456789abcdef0123456789abcdef0123456789abcdef?id=" + st.ID + "&code=FORGED",
				r.c.URL + "/callbacks/short?id=" + st.ID + "&code=FORGED",
			}
			for _, u := range forged {
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("forged callback: %d, want 404", resp.StatusCode)
				}
			}
			after := r.task(id)
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("forged callback changed the task:\nbefore %v\nafter  %v", before, after)
			}
			if list := r.c.Admin("GET", "/v1/dead-letters", nil).List(); len(list) != len(deadBefore) {
				t.Errorf("forged callback left dead letters: %v (before: %v)", list, deadBefore)
			}

			// The real token with a malformed body or another answer: kept, first answer wins.
			pingback := st.Pingback
			resp, err := http.Post(pingback, "application/x-www-form-urlencoded", strings.NewReader("id="+st.ID))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("malformed callback: %d, want 200", resp.StatusCode)
			}
			list := r.c.Admin("GET", "/v1/dead-letters?reason=malformed_callback", nil).List()
			if len(list) != 1 || list[0]["task_id"] != id {
				t.Errorf("malformed callback not dead-lettered: %v", list)
			}
			// Bulk redrive reports what still cannot be processed and keeps it.
			bulk := r.c.Admin("POST", "/v1/dead-letters/redrive?reason=malformed_callback", nil)
			if failed, _ := bulk.Data()["failed"].([]any); bulk.Status != http.StatusOK || bulk.Data()["redriven"] != float64(0) || len(failed) != 1 {
				t.Errorf("bulk redrive of a malformed callback: %d %s", bulk.Status, bulk.Body)
			}
			if list := r.c.Admin("GET", "/v1/dead-letters?status=pending", nil).List(); len(list) != 1 || list[0]["redrives"] != float64(1) {
				t.Errorf("after a failed redrive: %v", list)
			}
			resp, err = http.Get(pingback + "?id=" + st.ID + "&code=ANOTHER-ANSWER")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := r.task(id)
			if got["solution"] != before["solution"] || count(historyKinds(got), "conflict") != 1 {
				t.Errorf("second answer: solution %v, history %v", got["solution"], historyKinds(got))
			}
		})
	}
}

func TestTaskValidationAndIsolation(t *testing.T) {
	e := storetest.Engines(t)[0]
	r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}})
	cases := []struct {
		body  any
		field string
	}{
		{map[string]any{}, "method"},
		{map[string]any{"method": "user recaptcha"}, "method"},
		{map[string]any{"method": "userrecaptcha", "params": map[string]string{"pageurl": "https://x"}}, "params.googlekey"},
		{map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "k"}}, "params.pageurl"},
		{map[string]any{"method": "base64", "params": map[string]string{"key": "upstream"}}, "params.key"},
		{map[string]any{"method": "base64", "metadata": []int{1}}, "metadata"},
		{map[string]any{"method": "base64", "extra": 1}, "extra"},
	}
	for _, c := range cases {
		resp := r.c.Admin("POST", "/v1/tasks", c.body)
		if resp.Status != http.StatusBadRequest || resp.ErrorField() != c.field {
			t.Errorf("%v: %d %s, want 400 naming %s", c.body, resp.Status, resp.Body, c.field)
		}
	}
	if list := r.c.Admin("GET", "/v1/tasks", nil).List(); len(list) != 0 {
		t.Errorf("invalid tasks were created: %v", list)
	}
	id := r.create(nil)
	_, otherKey := r.c.NewProject("other")
	if resp := r.c.Do("GET", "/v1/tasks/"+id, otherKey, nil); resp.Status != http.StatusNotFound {
		t.Errorf("other project reads task: %d", resp.Status)
	}
	if list := r.c.Do("GET", "/v1/tasks", otherKey, nil).List(); len(list) != 0 {
		t.Errorf("other project lists tasks: %v", list)
	}
	r.waitStatus(id, "solved", 10*time.Second)
	if list := r.c.Admin("GET", "/v1/tasks?status=solved", nil).List(); len(list) != 1 {
		t.Errorf("status filter: %d tasks", len(list))
	}
	if list := r.c.Admin("GET", "/v1/tasks?status=pending", nil).List(); len(list) != 0 {
		t.Errorf("status filter pending: %d tasks", len(list))
	}
	if resp := r.c.Admin("GET", "/v1/tasks?status=nope", nil); resp.ErrorField() != "status" {
		t.Errorf("bad status filter: %s", resp.Body)
	}
	// The upstream key never appears in any answer.
	for _, path := range []string{"/v1/tasks", "/v1/tasks/" + id} {
		if body := r.c.Admin("GET", path, nil).Body; strings.Contains(string(body), simulator.DefaultKey) {
			t.Errorf("%s shows the provider key", path)
		}
	}
}

// TestTaskPollerSingletonAcrossNodes runs two Carrier processes on one
// PostgreSQL database: only one of them polls at a time, so the overdue tasks
// cost the same few batched requests as on one node, and each task is
// announced once.
func TestTaskPollerSingletonAcrossNodes(t *testing.T) {
	var e storetest.Engine
	for _, eng := range storetest.Engines(t) {
		if eng.Name == storetest.Postgres {
			e = eng
		}
	}
	if e.Name == "" {
		t.Skip("postgres: skipped, CARRIER_TEST_DATABASE_URL is not set (several nodes need a shared database)")
	}
	r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 10 * time.Millisecond, MaxDelay: 30 * time.Millisecond,
		Faults: simulator.Faults{LostPingbacks: 1}}, callbackTimeout: 600 * time.Millisecond, pollInterval: 300 * time.Millisecond})
	simURL := r.sim.URL()
	second := apptest.Start(t, e, apptest.Options{
		Configure: func(cfg *config.Config) {
			cfg.ProviderURL, cfg.ProviderKey = simURL, simulator.DefaultKey
			cfg.CallbackTimeout, cfg.PollInterval = 600*time.Millisecond, 300*time.Millisecond
		},
		Tasks: func(tc *task.Config) { tc.Tick = 50 * time.Millisecond },
	})
	var ids []string
	for i := range 30 {
		c := r.c
		if i%2 == 1 {
			c = second
		}
		resp := c.Admin("POST", "/v1/tasks", map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "k", "pageurl": "https://example.com"}})
		if resp.Status != http.StatusAccepted {
			t.Fatalf("create task: %d %s", resp.Status, resp.Body)
		}
		ids = append(ids, resp.Data()["task_id"].(string))
	}
	for _, id := range ids {
		if got := r.waitStatus(id, "solved", 15*time.Second); got["via"] != "poll" {
			t.Errorf("task %s via %v, want poll", id, got["via"])
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range ids {
		if n := len(r.events(id)[task.EventSolved]); n != 1 {
			t.Errorf("task %s: %d task.solved events, want 1", id, n)
		}
	}
	// Only the node holding the poller lock asks upstream: the other node's
	// counter of result requests stays at zero.
	polls := func(c *apptest.Carrier) int {
		body := string(c.Do("GET", "/metrics", "", nil).Body)
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, `carrier_upstream_requests_total{action="get",result="ok"} `) {
				var n int
				fmt.Sscan(strings.Fields(line)[1], &n)
				return n
			}
		}
		return 0
	}
	a, b := polls(r.c), polls(second)
	t.Logf("result requests: node A %d, node B %d, simulator %d", a, b, r.sim.Stats().GetRequests)
	if (a == 0) == (b == 0) {
		t.Errorf("result requests by node A %d and node B %d: want exactly one node polling", a, b)
	}
}

// TestTaskEventsRespectScope: task events carry the task id as their subject,
// so a webhook scoped to specific_task_ids hears about those tasks only.
func TestTaskEventsRespectScope(t *testing.T) {
	e := storetest.Engines(t)[0]
	r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 500 * time.Millisecond, MaxDelay: 600 * time.Millisecond}})
	a, b := r.create(nil), r.create(nil)
	scoped := apptest.NewEndpoint(t, nil)
	r.c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": scoped.URL, "event_types": []string{"task.solved"},
		"scope": "specific", "specific_task_ids": []string{a}})
	r.waitStatus(a, "solved", 10*time.Second)
	r.waitStatus(b, "solved", 10*time.Second)
	r.waitEvent(b, task.EventSolved)
	reqs := scoped.WaitRequests(t, 1, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	reqs = scoped.Requests()
	if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), a) {
		t.Errorf("scoped webhook got %d requests, want only task %s's task.solved", len(reqs), a)
	}
}
