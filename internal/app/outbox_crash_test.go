package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"carrier/internal/app"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/outbox"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// envOutboxChild, when set (to a duration), makes TestOutboxChildProcess run
// Carrier with the outbox relay held back by that long (outbox.Config.Hold).
// The hold is a test-only option, so the child is this test binary (with
// app.Options) rather than the carrier binary, which has no such setting.
const envOutboxChild = "CARRIER_TEST_OUTBOX_CHILD_HOLD"

// TestOutboxChildProcess is not a test: it is the child Carrier process of
// TestOutboxCrashDeliversDisabledOnce, configured from CARRIER_* variables as
// `carrier serve` is, and runs until killed.
func TestOutboxChildProcess(t *testing.T) {
	hold := os.Getenv(envOutboxChild)
	if hold == "" {
		t.Skip("the child process of TestOutboxCrashDeliversDisabledOnce")
	}
	d, err := time.ParseDuration(hold)
	if err != nil {
		t.Fatalf("%s: %v", envOutboxChild, err)
	}
	cfg, err := config.Load("serve", nil, os.Getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	a, err := app.New(ctx, cfg, app.NewLogger(os.Stderr, cfg.LogLevel), app.Options{Outbox: func(c *outbox.Config) { c.Hold = d }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", a.Addr())
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// startOutboxChild runs TestOutboxChildProcess as a child process on the
// engine's storage, with the relay held back by hold.
func startOutboxChild(t *testing.T, e storetest.Engine, dataDir, hold string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChildProcess$", "-test.count=1")
	return launch(t, cmd, e, dataDir, envOutboxChild+"="+hold)
}

// TestOutboxCrashDeliversDisabledOnce makes a webhook fail until it is
// disabled, kills the process with SIGKILL after the disable is committed and
// before webhook.disabled is published (the relay is held back), restarts it
// on the same storage, and checks that an observer subscribed to
// webhook.disabled gets the event exactly once, and that the store holds one
// such event.
func TestOutboxCrashDeliversDisabledOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Carrier as a child process")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string // event id of each webhook.disabled delivery, with its webhook-id
			observer := apptest.NewEndpoint(t, func(_ int, req apptest.Request, w http.ResponseWriter) {
				var body struct {
					ID   string `json:"id"`
					Type string `json:"type"`
				}
				json.Unmarshal(req.Body, &body)
				if body.Type == "webhook.disabled" {
					mu.Lock()
					seen = append(seen, body.ID+" "+req.Header.Get("webhook-id"))
					mu.Unlock()
				}
				w.WriteHeader(http.StatusOK)
			})
			failing := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
				w.WriteHeader(http.StatusInternalServerError)
			})
			received := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), seen...)
			}

			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir() // the spool lives here on PostgreSQL too
			}
			// Held for longer than the test: this process never publishes.
			p := startOutboxChild(t, e, dataDir, "1h")
			client := &http.Client{Timeout: 10 * time.Second}
			if status, _, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "observer", "webhook_url": observer.URL, "event_types": []string{"webhook.disabled"},
			}); err != nil || status != http.StatusCreated {
				t.Fatalf("create observer: %d %v", status, err)
			}
			status, out, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "failing", "webhook_url": failing.URL, "event_types": []string{"load.fail"}, "max_retries": 0,
			})
			if err != nil || status != http.StatusCreated {
				t.Fatalf("create failing webhook: %d %v", status, err)
			}
			id := out["data"].(map[string]any)["webhook_id"].(string)
			// Ten failed attempts in a row disable it (no retries: one attempt each).
			for i := range 10 {
				if status, _, err := apiCall(client, "POST", p.url+"/v1/events", map[string]any{"type": "load.fail", "data": map[string]any{"i": i}}); err != nil || status != http.StatusAccepted {
					t.Fatalf("publish %d: %d %v", i, status, err)
				}
			}
			apptest.Eventually(t, 30*time.Second, "failing webhook disabled", func() bool {
				status, out, err := apiCall(client, "GET", p.url+"/v1/webhooks/"+id, nil)
				return err == nil && status == http.StatusOK && out["data"].(map[string]any)["is_active"] == false
			})
			if got := received(); len(got) != 0 {
				t.Fatalf("webhook.disabled delivered before the kill (%v): the relay was not held back", got)
			}
			p.kill9(t)

			p2 := startOutboxChild(t, e, dataDir, "0s")
			apptest.Eventually(t, 30*time.Second, "webhook.disabled delivered after restart", func() bool {
				return len(received()) > 0
			})
			// Exactly one webhook.disabled event was stored across both processes.
			status, out, err = apiCall(client, "GET", p2.url+"/v1/events?limit=100", nil)
			if err != nil || status != http.StatusOK {
				t.Fatalf("list events: %d %v", status, err)
			}
			var events []string
			for _, ev := range out["data"].([]any) {
				if m := ev.(map[string]any); m["type"] == "webhook.disabled" {
					events = append(events, m["id"].(string))
				}
			}
			if len(events) != 1 {
				t.Fatalf("webhook.disabled events in the store: %v, want exactly one", events)
			}
			// Absence of a second delivery: wait a bounded while, longer than
			// the retry base and a claim poll, for one that should not come.
			time.Sleep(time.Second)
			got := received()
			if len(got) != 1 {
				t.Fatalf("observer got webhook.disabled %d times (%v), want exactly once", len(got), got)
			}
			if want := events[0] + " "; got[0][:len(want)] != want {
				t.Errorf("delivered event %q, want event id %s", got[0], events[0])
			}
			t.Logf("webhook %s disabled before the kill; webhook.disabled %s delivered once after the restart", id, events[0])
		})
	}
}

// TestOutboxCrashDeliversTaskEventsOnce creates a task that the simulator
// solves at once, kills the process with SIGKILL after the task is recorded
// as solved and before its events are published (the relay is held back),
// restarts it on the same storage, and checks that an observer subscribed to
// task.* gets task.submitted and task.solved exactly once each, and that the
// store holds one event of each.
func TestOutboxCrashDeliversTaskEventsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Carrier as a child process")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			sim := simulator.New(simulator.Config{})
			simURL, err := sim.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			env := []string{"CARRIER_PROVIDER_URL=" + simURL, "CARRIER_PROVIDER_KEY=" + simulator.DefaultKey}

			var mu sync.Mutex
			seen := map[string][]string{} // event type -> event id of each delivery
			observer := apptest.NewEndpoint(t, func(_ int, req apptest.Request, w http.ResponseWriter) {
				var body struct {
					ID   string `json:"id"`
					Type string `json:"type"`
				}
				json.Unmarshal(req.Body, &body)
				mu.Lock()
				seen[body.Type] = append(seen[body.Type], body.ID)
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			})
			received := func() map[string][]string {
				mu.Lock()
				defer mu.Unlock()
				out := map[string][]string{}
				for k, v := range seen {
					out[k] = append([]string(nil), v...)
				}
				return out
			}
			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir()
			}
			p := launch(t, exec.Command(os.Args[0], "-test.run=^TestOutboxChildProcess$", "-test.count=1"), e, dataDir,
				append(env, envOutboxChild+"=1h")...)
			client := &http.Client{Timeout: 10 * time.Second}
			if status, _, err := apiCall(client, "POST", p.url+"/v1/webhooks", map[string]any{
				"name": "observer", "webhook_url": observer.URL, "event_types": []string{"task.*"},
			}); err != nil || status != http.StatusCreated {
				t.Fatalf("create observer: %d %v", status, err)
			}
			status, out, err := apiCall(client, "POST", p.url+"/v1/tasks", map[string]any{
				"method": "userrecaptcha", "params": map[string]string{"googlekey": "k", "pageurl": "https://example.com"},
			})
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("create task: %d %v", status, err)
			}
			id := out["data"].(map[string]any)["task_id"].(string)
			apptest.Eventually(t, 30*time.Second, "task solved", func() bool {
				status, out, err := apiCall(client, "GET", p.url+"/v1/tasks/"+id, nil)
				return err == nil && status == http.StatusOK && out["data"].(map[string]any)["status"] == "solved"
			})
			if got := received(); len(got) != 0 {
				t.Fatalf("task events delivered before the kill (%v): the relay was not held back", got)
			}
			p.kill9(t)

			p2 := launch(t, exec.Command(os.Args[0], "-test.run=^TestOutboxChildProcess$", "-test.count=1"), e, dataDir,
				append(env, envOutboxChild+"=0s")...)
			apptest.Eventually(t, 30*time.Second, "task events delivered after restart", func() bool {
				got := received()
				return len(got["task.submitted"]) > 0 && len(got["task.solved"]) > 0
			})
			status, out, err = apiCall(client, "GET", p2.url+"/v1/events?limit=100", nil)
			if err != nil || status != http.StatusOK {
				t.Fatalf("list events: %d %v", status, err)
			}
			stored := map[string][]string{}
			for _, ev := range out["data"].([]any) {
				m := ev.(map[string]any)
				stored[m["type"].(string)] = append(stored[m["type"].(string)], m["id"].(string))
			}
			// Absence of a second delivery: wait a bounded while, longer than
			// a claim poll and the relay's wake, for one that should not come.
			time.Sleep(time.Second)
			got := received()
			for _, typ := range []string{"task.submitted", "task.solved"} {
				if len(stored[typ]) != 1 {
					t.Errorf("%s events in the store: %v, want exactly one", typ, stored[typ])
					continue
				}
				if len(got[typ]) != 1 || got[typ][0] != stored[typ][0] {
					t.Errorf("observer got %s %v, want exactly once, event %s", typ, got[typ], stored[typ][0])
				}
			}
			if len(got) != 2 {
				t.Errorf("observer got event types %v, want task.submitted and task.solved only", got)
			}
		})
	}
}
