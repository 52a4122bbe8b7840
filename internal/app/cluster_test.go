package app_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// postgresEngine returns fresh PostgreSQL storage, or skips (naming the
// variable) when none is configured: several processes share only PostgreSQL.
func postgresEngine(t *testing.T) storetest.Engine {
	t.Helper()
	for _, e := range storetest.Engines(t) {
		if e.Name == storetest.Postgres {
			return e
		}
	}
	t.Skip(storetest.SkipReason)
	return storetest.Engine{}
}

// scrape reads a node's /metrics as name{labels} -> value.
func scrape(client *http.Client, p *process) (map[string]float64, error) {
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// The value is the last field; label values may hold spaces.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, value := line[:i], line[i+1:]
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// leaders returns the indexes of the nodes whose carrier_leader is 1 (a node
// that does not answer counts as not leading).
func leaders(client *http.Client, nodes []*process, alive []bool) []int {
	var out []int
	for i, p := range nodes {
		if !alive[i] {
			continue
		}
		if m, err := scrape(client, p); err == nil && m["carrier_leader"] == 1 {
			out = append(out, i)
		}
	}
	return out
}

// rounds is a node's maintenance rounds by service.
func rounds(t *testing.T, client *http.Client, p *process) map[string]float64 {
	t.Helper()
	m, err := scrape(client, p)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.url, err)
	}
	out := map[string]float64{}
	for _, s := range []string{"pruner", "queue_pruner", "rescuer", "poller", "expirer"} {
		out[s] = m[`carrier_maintenance_rounds_total{service="`+s+`"}`]
	}
	return out
}

func sum(m map[string]float64) float64 {
	var n float64
	for _, v := range m {
		n += v
	}
	return n
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestClusterOfThree runs three `carrier serve` processes on one PostgreSQL:
// maintenance runs on one at a time, a SIGKILL of the leader moves
// leadership within the lease, the fallback poller's budget holds for the
// cluster, a subscription saved through one node is used by another at
// once, and a delivery published through an API-only node is picked up by
// another node at once (LISTEN/NOTIFY, not its 1 s fallback poll).
func TestClusterOfThree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the carrier binary")
	}
	e := postgresEngine(t)
	// Every res.php request fails: the poller keeps asking about the same
	// tasks, as often as the budget lets it.
	sim := simulator.New(simulator.Config{Faults: simulator.Faults{LostPingbacks: 1, ResFailures: 1}})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	const budget = 6
	const lease = 3 * time.Second
	env := []string{"CARRIER_PROVIDER_URL=" + simURL, "CARRIER_PROVIDER_KEY=" + simulator.DefaultKey,
		"CARRIER_CALLBACK_TIMEOUT=100ms", "CARRIER_POLL_INTERVAL=200ms", "CARRIER_SUBMIT_RETRY_BASE=100ms",
		"CARRIER_POLL_BUDGET=" + strconv.Itoa(budget), "CARRIER_LEADER_LEASE=" + lease.String()}
	// Node 2 accepts and stores only: whatever it publishes, another node delivers.
	nodes := []*process{startProcess(t, e, env...), startProcess(t, e, env...), startProcess(t, e, append(env, "CARRIER_DELIVER=false")...)}
	alive := []bool{true, true, true}
	client := &http.Client{Timeout: 10 * time.Second}

	var leader int
	apptest.Eventually(t, 2*lease, "one leader", func() bool {
		l := leaders(client, nodes, alive)
		if len(l) == 1 {
			leader = l[0]
		}
		return len(l) == 1
	})

	// Tasks whose results the poller must fetch (pingbacks are lost).
	budgetFrom := time.Now()
	for i := 0; i < 5; i++ {
		status, _, err := apiCall(client, "POST", nodes[i%3].url+"/v1/tasks", map[string]any{
			"method": "userrecaptcha", "params": map[string]string{"googlekey": "k", "pageurl": "https://example.com"},
		})
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("create task: %d %v", status, err)
		}
	}

	t.Run("maintenance runs on the leader only", func(t *testing.T) {
		before := make([]map[string]float64, 3)
		for i, p := range nodes {
			before[i] = rounds(t, client, p)
		}
		time.Sleep(3 * time.Second)
		if l := leaders(client, nodes, alive); len(l) != 1 || l[0] != leader {
			t.Fatalf("leaders = %v, want [%d] throughout", l, leader)
		}
		for i, p := range nodes {
			after := rounds(t, client, p)
			ran := sum(after) - sum(before[i])
			switch {
			case i == leader && (after["rescuer"] <= before[i]["rescuer"] || after["poller"] <= before[i]["poller"]):
				t.Errorf("leader %d ran no rescuer or poller rounds: before %v, after %v", i, before[i], after)
			case i != leader && ran != 0:
				t.Errorf("node %d is not the leader but ran %v maintenance rounds (before %v, after %v)", i, ran, before[i], after)
			}
		}
	})

	t.Run("a subscription saved on one node is used by another within 100 ms", func(t *testing.T) {
		var took []time.Duration
		for trial := 0; trial < 5; trial++ {
			eventType := fmt.Sprintf("cluster.probe%d", trial)
			ep := apptest.NewEndpoint(t, nil)
			status, _, err := apiCall(client, "POST", nodes[0].url+"/v1/webhooks", map[string]any{
				"name": eventType, "webhook_url": ep.URL, "event_types": []string{eventType}})
			if err != nil || status != http.StatusCreated {
				t.Fatalf("create webhook: %d %v", status, err)
			}
			saved := time.Now()
			for i := 0; ; i++ {
				status, out, err := apiCall(client, "POST", nodes[1].url+"/v1/events", map[string]any{"type": eventType, "data": map[string]any{"i": i}})
				if err != nil || status != http.StatusAccepted {
					t.Fatalf("publish: %d %v", status, err)
				}
				if n, _ := out["data"].(map[string]any)["deliveries"].(float64); n > 0 {
					took = append(took, time.Since(saved))
					break
				}
				if time.Since(saved) > 5*time.Second {
					t.Fatalf("trial %d: node 1 still does not fan %s out to the webhook saved on node 0 after 5 s", trial, eventType)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		t.Logf("subscription saved on node 0 used by node 1 after %v", took)
		if m := median(took); m > 100*time.Millisecond {
			t.Errorf("median propagation %v (all: %v), want at most 100ms", m, took)
		}
	})

	t.Run("a delivery published on an API-only node is attempted by another at once", func(t *testing.T) {
		var mu sync.Mutex
		got := map[string]time.Time{}
		ep := apptest.NewEndpoint(t, func(_ int, req apptest.Request, w http.ResponseWriter) {
			var body struct {
				ID string `json:"id"`
			}
			json.Unmarshal(req.Body, &body)
			mu.Lock()
			got[body.ID] = time.Now()
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		})
		status, _, err := apiCall(client, "POST", nodes[0].url+"/v1/webhooks", map[string]any{
			"name": "wake", "webhook_url": ep.URL, "event_types": []string{"cluster.wake"}})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create webhook: %d %v", status, err)
		}
		// Until node 2 fans out to it (see the previous subtest).
		apptest.Eventually(t, 5*time.Second, "node 2 sees the webhook", func() bool {
			_, out, err := apiCall(client, "POST", nodes[2].url+"/v1/events", map[string]any{"type": "cluster.wake"})
			n, _ := out["data"].(map[string]any)["deliveries"].(float64)
			return err == nil && n > 0
		})
		time.Sleep(300 * time.Millisecond)
		var took []time.Duration
		for i := 0; i < 7; i++ {
			time.Sleep(1100 * time.Millisecond) // the engines are idle: only a notification wakes them before their fallback poll
			published := time.Now()
			status, out, err := apiCall(client, "POST", nodes[2].url+"/v1/events", map[string]any{"type": "cluster.wake"})
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("publish: %d %v", status, err)
			}
			id, _ := out["data"].(map[string]any)["event_id"].(string)
			apptest.Eventually(t, 5*time.Second, "delivery by another node", func() bool {
				mu.Lock()
				defer mu.Unlock()
				at, ok := got[id]
				if ok {
					took = append(took, at.Sub(published))
				}
				return ok
			})
		}
		t.Logf("publish on node 2 -> attempt by another node: %v", took)
		if m := median(took); m > 200*time.Millisecond {
			t.Errorf("median cross-node pickup %v (all: %v), want well under the 1 s fallback poll", m, took)
		}
	})

	t.Run("SIGKILL of the leader moves leadership within the lease", func(t *testing.T) {
		nodes[leader].kill9(t)
		alive[leader] = false
		killed := time.Now()
		var next []int
		apptest.Eventually(t, 3*lease, "a new leader", func() bool {
			next = leaders(client, nodes, alive)
			return len(next) == 1
		})
		took := time.Since(killed)
		t.Logf("node %d killed; node %d leads after %v (lease %v)", leader, next[0], took, lease)
		if took > lease+lease/2 {
			t.Errorf("leadership moved after %v, want within the lease %v (and one renewal)", took, lease)
		}
		time.Sleep(2 * time.Second) // the new leader polls too
		if l := leaders(client, nodes, alive); len(l) != 1 {
			t.Errorf("leaders after failover = %v, want one", l)
		}
	})

	t.Run("a key revoked on one node is refused by another at once", func(t *testing.T) {
		var a, b *process
		for i := range nodes {
			if alive[i] && a == nil {
				a = nodes[i]
			} else if alive[i] && b == nil {
				b = nodes[i]
			}
		}
		status, out, err := apiCall(client, "POST", a.url+"/v1/projects", map[string]any{"name": "revocation"})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create project: %d %v", status, err)
		}
		data := out["data"].(map[string]any)
		pid := data["project"].(map[string]any)["id"].(string)
		key := data["api_key"].(map[string]any)["key"].(string)
		keyID := data["api_key"].(map[string]any)["id"].(string)
		get := func(p *process) int {
			req, _ := http.NewRequest("GET", p.url+"/v1/webhooks", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := get(b); got != http.StatusOK { // b caches the key (for up to 5 s)
			t.Fatalf("the new key on the other node: %d", got)
		}
		if status, _, err := apiCall(client, "DELETE", a.url+"/v1/projects/"+pid+"/keys/"+keyID, nil); err != nil || status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, err)
		}
		revoked := time.Now()
		apptest.Eventually(t, 2*time.Second, "the other node refusing the revoked key", func() bool { return get(b) == http.StatusUnauthorized })
		t.Logf("the other node refused the revoked key %v after the revocation (the key cache lasts 5 s)", time.Since(revoked).Round(time.Millisecond))
	})

	t.Run("the poll budget holds for the cluster", func(t *testing.T) {
		end := time.Now()
		windows := int(end.Truncate(time.Minute).Sub(budgetFrom.Truncate(time.Minute))/time.Minute) + 1
		gets := sim.Stats().ResGetRequests // every one fails (ResFailures); balance probes are not counted
		t.Logf("%d upstream result requests over %v (%d budget windows of %d)", gets, end.Sub(budgetFrom).Round(time.Millisecond), windows, budget)
		if gets == 0 {
			t.Error("the poller sent no request: nothing was tested")
		}
		if gets > int64(windows*budget) {
			t.Errorf("%d result requests, want at most %d (%d per minute for the whole cluster)", gets, windows*budget, budget)
		}
	})
}
