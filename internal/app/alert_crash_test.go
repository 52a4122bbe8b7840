package app_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// notifications records the alert notifications an endpoint received: each
// event id once in order (a redelivery of the same event is counted apart,
// with its webhook-id, since delivery is at least once).
type notifications struct {
	mu       sync.Mutex
	order    []string          // event ids, first arrival order
	what     map[string]string // event id -> "type severity[<-previous]"
	hooks    map[string][]string
	redelivs int
}

func (n *notifications) handler(_ int, req apptest.Request, w http.ResponseWriter) {
	var body struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Severity         string `json:"severity"`
			PreviousSeverity string `json:"previous_severity"`
			Rule             string `json:"rule"`
		} `json:"data"`
	}
	json.Unmarshal(req.Body, &body)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, seen := n.what[body.ID]; seen {
		n.redelivs++
	} else {
		d := body.Type + " " + body.Data.Rule + " " + body.Data.Severity
		if body.Data.PreviousSeverity != "" {
			d += "<-" + body.Data.PreviousSeverity
		}
		n.what[body.ID] = d
		n.order = append(n.order, body.ID)
	}
	n.hooks[body.ID] = append(n.hooks[body.ID], req.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusOK)
}

// got returns the distinct notifications in arrival order.
func (n *notifications) got() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.order))
	for i, id := range n.order {
		out[i] = n.what[id]
	}
	return out
}

// alertNodeEnv is the environment of a Carrier that probes the simulator's
// balance and evaluates the built-in rules ten times a second.
func alertNodeEnv(simURL string) []string {
	return []string{"CARRIER_PROVIDER_URL=" + simURL, "CARRIER_PROVIDER_KEY=" + simulator.DefaultKey,
		"CARRIER_ALERT_DEFAULTS=true", "CARRIER_ALERT_INTERVAL=100ms", "CARRIER_BALANCE_PROBE_INTERVAL=100ms",
		"CARRIER_LEADER_LEASE=1s"}
}

// balanceScenario drives the balance 12 → 8 → 1.5 → 20, calling kill at a
// random point of each step (after the change, before or after Carrier has
// seen it), and checks the endpoint got each of the three notifications
// once: no loss, no duplicate.
func balanceScenario(t *testing.T, sim *simulator.Simulator, rec *notifications, kill func(step int)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	want := []string{"alert.firing Balance warning", "alert.firing Balance critical<-warning", "alert.resolved Balance critical"}
	for i, v := range []float64{8, 1.5, 20} {
		sim.SetBalance(v)
		wait := time.Duration(rng.IntN(600)) * time.Millisecond
		time.Sleep(wait)
		t.Logf("balance %v: kill after %v (notifications so far %v)", v, wait, rec.got())
		kill(i)
		apptest.Eventually(t, 30*time.Second, fmt.Sprintf("notification %d (%s)", i+1, want[i]), func() bool { return len(rec.got()) >= i+1 })
	}
	time.Sleep(2 * time.Second) // twenty evaluation rounds: nothing more may come
	got := rec.got()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notifications:\n  %s\nwant exactly:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, hooks := range rec.hooks {
		for _, h := range hooks[1:] {
			if h != hooks[0] {
				t.Errorf("event %s redelivered with webhook-id %s, first %s", id, h, hooks[0])
			}
		}
	}
	t.Logf("each notification once; %d transport redeliveries of the same event (same webhook-id)", rec.redelivs)
}

// TestAlertsKill9LoseAndRepeatNothing kills `carrier serve` with SIGKILL at
// a random point of each step of a balance scenario and restarts it on the
// same storage: the alert endpoint gets the warning, the escalation and the
// resolution once each.
func TestAlertsKill9LoseAndRepeatNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the carrier binary")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			sim := simulator.New(simulator.Config{Balance: 12})
			simURL, err := sim.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir()
			}
			bin, err := buildCarrier()
			if err != nil {
				t.Fatal(err)
			}
			start := func() *process { return launch(t, exec.Command(bin, "serve"), e, dataDir, alertNodeEnv(simURL)...) }
			p := start()
			rec := &notifications{what: map[string]string{}, hooks: map[string][]string{}}
			ep := apptest.NewEndpoint(t, rec.handler)
			client := &http.Client{Timeout: 10 * time.Second}
			if status, _, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "alerts", "webhook_url": ep.URL, "event_types": []string{"alert.*"}}); err != nil || status != http.StatusCreated {
				t.Fatalf("create webhook: %d %v", status, err)
			}
			time.Sleep(500 * time.Millisecond) // 12 is probed: above every threshold
			balanceScenario(t, sim, rec, func(int) {
				p.kill9(t)
				p = start()
			})
		})
	}
}

// TestAlertsLeaderKillLosesAndRepeatsNothing runs two nodes on PostgreSQL
// and kills the leader (the node that evaluates) at a random point of each
// step; a new node takes its place. The endpoint gets each notification
// once.
func TestAlertsLeaderKillLosesAndRepeatsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the carrier binary")
	}
	e := postgresEngine(t)
	sim := simulator.New(simulator.Config{Balance: 12})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	env := alertNodeEnv(simURL)
	nodes := []*process{startProcess(t, e, env...), startProcess(t, e, env...)}
	alive := []bool{true, true}
	client := &http.Client{Timeout: 10 * time.Second}
	rec := &notifications{what: map[string]string{}, hooks: map[string][]string{}}
	ep := apptest.NewEndpoint(t, rec.handler)
	if status, _, err := apiCall(client, "POST", nodes[0].url+"/v1/webhooks", map[string]any{
		"name": "alerts", "webhook_url": ep.URL, "event_types": []string{"alert.*"}}); err != nil || status != http.StatusCreated {
		t.Fatalf("create webhook: %d %v", status, err)
	}
	leader := func() int {
		var l []int
		apptest.Eventually(t, 10*time.Second, "one leader", func() bool {
			l = leaders(client, nodes, alive)
			return len(l) == 1
		})
		return l[0]
	}
	leader()
	time.Sleep(500 * time.Millisecond)
	balanceScenario(t, sim, rec, func(step int) {
		l := leader()
		nodes[l].kill9(t)
		alive[l] = false
		nodes = append(nodes, startProcess(t, e, env...))
		alive = append(alive, true)
		t.Logf("step %d: killed leader node %d, started node %d", step, l, len(nodes)-1)
	})
}

// TestAlertErrorSpikeKill9 drives the error rate 2 % → 26 % → 9 % with
// tasks decided by the simulator, killing `carrier serve` with SIGKILL at a
// random point of each batch and restarting it: the alert endpoint gets one
// spike and one recovery, nothing lost and nothing twice.
func TestAlertErrorSpikeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the carrier binary")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			sim := simulator.New(simulator.Config{Balance: 100})
			simURL, err := sim.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir()
			}
			bin, err := buildCarrier()
			if err != nil {
				t.Fatal(err)
			}
			// Pingbacks sent to a killed process are lost: the poller finds those.
			env := append(alertNodeEnv(simURL), "CARRIER_CALLBACK_TIMEOUT=1s", "CARRIER_POLL_INTERVAL=300ms", "CARRIER_SUBMIT_RETRY_BASE=100ms")
			start := func() *process { return launch(t, exec.Command(bin, "serve"), e, dataDir, env...) }
			p := start()
			rec := &notifications{what: map[string]string{}, hooks: map[string][]string{}}
			ep := apptest.NewEndpoint(t, rec.handler)
			client := &http.Client{Timeout: 10 * time.Second}
			if status, _, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "alerts", "webhook_url": ep.URL, "event_types": []string{"alert.*"}}); err != nil || status != http.StatusCreated {
				t.Fatalf("create webhook: %d %v", status, err)
			}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
			errs, total := 0, 0
			batch := func(n, unsolvable int) {
				outs := make([]simulator.Outcome, n)
				for i := range outs {
					outs[i] = simulator.Outcome{Delay: 50 * time.Millisecond, Unsolvable: (i+1)*unsolvable/n > i*unsolvable/n}
				}
				sim.SetNextOutcomes(outs...)
				killAt := rng.IntN(n)
				for i := range n {
					if i == killAt {
						p.kill9(t)
						p = start()
						t.Logf("killed after %d of %d tasks of the batch", i, n)
					}
					status, _, err := apiCall(client, "POST", p.url+"/v1/tasks", map[string]any{"method": "userrecaptcha",
						"params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"}})
					if err != nil || status != http.StatusAccepted {
						t.Fatalf("create task: %d %v", status, err)
					}
				}
				errs, total = errs+unsolvable, total+n
				// Every task decided (a submission cut by the kill is made
				// again, so the simulator's outcomes may shift by one or two:
				// the rate is checked loosely, the notifications exactly).
				apptest.Eventually(t, 60*time.Second, fmt.Sprintf("the %d tasks decided", total), func() bool {
					for _, st := range []string{"pending", "submitted"} {
						status, out, err := apiCall(client, "GET", p.url+"/v1/tasks?status="+st+"&limit=1", nil)
						if err != nil || status != http.StatusOK {
							return false
						}
						if list, _ := out["data"].([]any); len(list) > 0 {
							return false
						}
					}
					return true
				})
				key := `carrier_alert_rule_value{item="",project="default",rule="Error rate spike"}`
				want := float64(errs) / float64(total)
				var got float64
				for deadline := time.Now().Add(10 * time.Second); ; {
					m, err := scrape(client, p)
					got = m[key]
					if err == nil && got > want-0.04 && got < want+0.04 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("error rate %d/%d: measured %v (simulator: %+v)", errs, total, got, sim.Stats())
					}
					time.Sleep(50 * time.Millisecond)
				}
				t.Logf("error rate %d/%d: measured %.3f (simulator: %d submits)", errs, total, got, sim.Stats().Submits)
			}
			// Rates far from the thresholds: a submission cut by a kill is
			// made again and can take another task's outcome.
			batch(50, 1)  // 2 %
			batch(50, 25) // 26/100: fires
			apptest.Eventually(t, 30*time.Second, "the spike", func() bool { return len(rec.got()) >= 1 })
			batch(200, 0) // 26/300 = 8.7 %: below the 10 % that clears
			apptest.Eventually(t, 30*time.Second, "the recovery", func() bool { return len(rec.got()) >= 2 })
			time.Sleep(2 * time.Second)
			// Only the error-rate rule's notifications are this test's: a
			// kill can also leave a legitimate dead letter (the pingback of a
			// submission the kill cut, whose token was never recorded), which
			// the built-in "Dead letters" rule rightly reports.
			want := []string{"alert.firing Error rate spike critical", "alert.resolved Error rate spike critical"}
			var got, others []string
			for _, n := range rec.got() {
				if strings.Contains(n, "Error rate spike") {
					got = append(got, n)
				} else {
					others = append(others, n)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("error-rate notifications:\n  %s\nwant exactly:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			t.Logf("one spike, one recovery; %d transport redeliveries; other rules: %v", rec.redelivs, others)
		})
	}
}

// TestAlertProbeAndBacklogKill9 kills `carrier serve` at random points of
// two more scenarios and restarts it: a failing balance probe raises
// "Balance check failing" once and resolves once; a backlog behind a slow
// endpoint raises "Queue backup" once and resolves once after it drains.
func TestAlertProbeAndBacklogKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the carrier binary")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			sim := simulator.New(simulator.Config{Balance: 100})
			simURL, err := sim.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir()
			}
			bin, err := buildCarrier()
			if err != nil {
				t.Fatal(err)
			}
			env := append(alertNodeEnv(simURL), "CARRIER_LANE_CONCURRENCY=1")
			start := func() *process { return launch(t, exec.Command(bin, "serve"), e, dataDir, env...) }
			p := start()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
			kill := func(what string) {
				wait := time.Duration(rng.IntN(800)) * time.Millisecond
				time.Sleep(wait)
				p.kill9(t)
				p = start()
				t.Logf("%s: killed after %v", what, wait)
			}
			rec := &notifications{what: map[string]string{}, hooks: map[string][]string{}}
			ep := apptest.NewEndpoint(t, rec.handler)
			client := &http.Client{Timeout: 10 * time.Second}
			if status, _, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "alerts", "webhook_url": ep.URL, "event_types": []string{"alert.*"}}); err != nil || status != http.StatusCreated {
				t.Fatalf("create webhook: %d %v", status, err)
			}
			expect := func(n int, what string) {
				apptest.Eventually(t, 60*time.Second, what, func() bool { return len(rec.got()) >= n })
			}

			// The balance probe fails (every res.php answers 500), through kills.
			time.Sleep(300 * time.Millisecond)
			sim.SetFaults(simulator.Faults{ResFailures: 1})
			kill("probe failing")
			expect(1, "the balance-check alert")
			kill("probe still failing")
			sim.SetFaults(simulator.Faults{})
			kill("probe healed")
			expect(2, "the balance-check resolution")

			// A backlog behind an endpoint taking 200 ms an event.
			var delay atomic.Int64
			delay.Store(int64(200 * time.Millisecond))
			slow := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
				time.Sleep(time.Duration(delay.Load()))
				w.WriteHeader(http.StatusOK)
			})
			status, out, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "slow", "webhook_url": slow.URL, "event_types": []string{"load.*"}, "timeout_seconds": 30})
			if err != nil || status != http.StatusCreated {
				t.Fatalf("create webhook: %d %v", status, err)
			}
			sid := out["data"].(map[string]any)["webhook_id"].(string)
			_, rules, _ := apiCall(client, "GET", p.url+"/v1/alert-rules", nil)
			for _, raw := range rules["data"].([]any) {
				rule := raw.(map[string]any)
				if rule["name"] != "Queue backup" {
					continue
				}
				id := fmt.Sprint(rule["id"])
				rule["window"], rule["items"] = "1m", []string{sid}
				rule["tiers"] = []map[string]any{{"severity": "warning", "fire": 20, "clear": 5}}
				for _, k := range []string{"id", "created_at", "updated_at"} {
					delete(rule, k)
				}
				if status, out, err := apiCall(client, "PUT", p.url+"/v1/alert-rules/"+id, rule); err != nil || status != http.StatusOK {
					t.Fatalf("update Queue backup: %d %v %v", status, out, err)
				}
			}
			for i := range 300 {
				if status, _, err := apiCall(client, "POST", p.url+"/v1/events", map[string]any{"type": "load.item", "data": map[string]any{"i": i}}); err != nil || status != http.StatusAccepted {
					t.Fatalf("publish: %d %v", status, err)
				}
			}
			kill("backlog building")
			expect(3, "the queue backup")
			delay.Store(0)
			kill("backlog draining")
			expect(4, "the queue backup's resolution")
			time.Sleep(2 * time.Second)
			want := []string{"alert.firing Balance check failing warning", "alert.resolved Balance check failing warning",
				"alert.firing Queue backup warning", "alert.resolved Queue backup warning"}
			if got := rec.got(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("notifications:\n  %s\nwant exactly:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			t.Logf("each notification once; %d transport redeliveries", rec.redelivs)
		})
	}
}
