package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"carrier/internal/alert"
	"carrier/internal/app"
	"carrier/internal/config"
	"carrier/internal/store"
)

// AlertOptions configure the alert benchmark.
type AlertOptions struct {
	// Store is "sqlite" or "postgres"; DatabaseURL the postgres:// URL
	// (a fresh schema is created and dropped).
	Store       string
	DatabaseURL string
	// Causes is how many endpoints are disabled, one after another (default 40).
	Causes int
	// Rules is how many rules the evaluation-cost phase evaluates (default 1000).
	Rules int
	Log   io.Writer
}

// AlertReport is what the alert benchmark measured.
type AlertReport struct {
	Machine Machine `json:"machine"`
	Store   string  `json:"store"`
	// CauseToDiscord is the time from an endpoint's 410 answer (which
	// disables it) to the Discord stand-in receiving the alert, with the
	// production evaluation interval (1 s).
	CauseToDiscord Percentiles `json:"cause_to_discord"`
	// Rules is the rule count of the evaluation-cost phase, and Round the
	// duration of one evaluation round over all of them.
	Rules int         `json:"rules"`
	Round Percentiles `json:"round"`
}

// RunAlerts measures how soon an alert reaches Discord after its cause,
// and what one evaluation round over many rules costs.
func RunAlerts(ctx context.Context, o AlertOptions) (*AlertReport, error) {
	if o.Causes <= 0 {
		o.Causes = 40
	}
	if o.Rules <= 0 {
		o.Rules = 1000
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	rep := &AlertReport{Machine: machine(), Store: o.Store, Rules: o.Rules}
	var err error
	if rep.CauseToDiscord, err = causeToDiscord(ctx, o); err != nil {
		return rep, fmt.Errorf("cause to discord: %w", err)
	}
	if rep.Round, err = evaluationCost(ctx, o); err != nil {
		return rep, fmt.Errorf("evaluation cost: %w", err)
	}
	return rep, nil
}

// benchConfig is Carrier's default configuration on a fresh store of o's
// engine, and a function that removes that store.
func benchConfig(ctx context.Context, o AlertOptions) (config.Config, func(), error) {
	cfg, err := config.Load("bench", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		return cfg, nil, err
	}
	dir, err := os.MkdirTemp("", "carrier-bench-alerts-")
	if err != nil {
		return cfg, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	cfg.DataDir, cfg.Listen, cfg.AllowPrivateNetworks, cfg.LogLevel = dir, "127.0.0.1:0", true, "warn"
	if o.Store == "postgres" {
		url, drop, err := freshSchema(ctx, o.DatabaseURL)
		if err != nil {
			cleanup()
			return cfg, nil, err
		}
		cfg.DatabaseURL = url
		cleanup = func() { drop(); os.RemoveAll(dir) }
	}
	return cfg, cleanup, nil
}

var disabledFor = regexp.MustCompile("`webhook.disabled` for `([^`]+)`")

// causeToDiscord disables endpoints one by one (each answers 410 Gone to
// its first attempt) and times each alert's arrival at a Discord stand-in.
func causeToDiscord(ctx context.Context, o AlertOptions) (Percentiles, error) {
	cfg, cleanup, err := benchConfig(ctx, o)
	if err != nil {
		return Percentiles{}, err
	}
	defer cleanup()
	cfg.APIKey = "ck_bench_" + randomHex(16)
	cfg.AlertDefaults = true // the default project's "Endpoint disabled" rule

	var mu sync.Mutex
	gone := map[string]time.Time{}    // path -> when it answered 410
	arrived := map[string]time.Time{} // subscription id -> when its alert reached Discord
	mux := http.NewServeMux()
	mux.HandleFunc("/gone/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if _, seen := gone[r.URL.Path]; !seen {
			gone[r.URL.Path] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusGone)
	})
	mux.HandleFunc("/api/webhooks/1/bench-token", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var msg struct {
			Embeds []struct {
				Description string `json:"description"`
			} `json:"embeds"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg)
		for _, e := range msg.Embeds {
			if m := disabledFor.FindStringSubmatch(e.Description); m != nil {
				mu.Lock()
				if _, seen := arrived[m[1]]; !seen {
					arrived[m[1]] = at
				}
				mu.Unlock()
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Percentiles{}, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), app.Options{})
	if err != nil {
		return Percentiles{}, err
	}
	if err := a.Listen(); err != nil {
		a.Store.Close()
		return Percentiles{}, err
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { cancel(); <-done }()

	call := apiCaller(ctx, "http://"+a.Addr(), cfg.APIKey)
	if _, err := call("/v1/subscriptions", map[string]any{"name": "discord", "event_types": []string{"alert.*"},
		"destination": map[string]any{"type": "discord", "webhook_url": base + "/api/webhooks/1/bench-token"}}); err != nil {
		return Percentiles{}, err
	}
	paths := map[string]string{} // subscription id -> path
	for i := range o.Causes {
		path := fmt.Sprintf("/gone/%d", i)
		typ := fmt.Sprintf("bench.cause%d", i)
		data, err := call("/v1/webhooks", map[string]any{"name": typ, "webhook_url": base + path, "event_types": []string{typ}})
		if err != nil {
			return Percentiles{}, err
		}
		id, _ := data["webhook_id"].(string)
		paths[id] = path
		if _, err := call("/v1/events", map[string]any{"type": typ}); err != nil {
			return Percentiles{}, err
		}
		time.Sleep(250 * time.Millisecond) // causes spread over evaluation rounds
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= len(paths) {
			break
		}
		if time.Now().After(deadline) {
			return Percentiles{}, fmt.Errorf("%d of %d alerts reached the Discord stand-in after 30 s", n, len(paths))
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	lat := make([]int64, 0, len(paths))
	for id, path := range paths {
		cause, ok := gone[path]
		if !ok {
			return Percentiles{}, fmt.Errorf("endpoint %s was never attempted", path)
		}
		lat = append(lat, int64(arrived[id].Sub(cause)))
	}
	return percentiles(lat), nil
}

// apiCaller returns a function that POSTs JSON to Carrier's API with key.
func apiCaller(ctx context.Context, base, key string) func(path string, body any) (map[string]any, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	return func(path string, body any) (map[string]any, error) {
		buf, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(string(buf)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, err
		}
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("%s: HTTP %d: %v", path, resp.StatusCode, out)
		}
		data, _ := out["data"].(map[string]any)
		return data, nil
	}
}

// evaluationCost times evaluation rounds over o.Rules rules of every kind
// in ten projects, over a store with decided tasks and subscriptions with
// a backlog, with the evaluator called directly (no other Carrier running).
func evaluationCost(ctx context.Context, o AlertOptions) (Percentiles, error) {
	cfg, cleanup, err := benchConfig(ctx, o)
	if err != nil {
		return Percentiles{}, err
	}
	defer cleanup()
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return Percentiles{}, err
	}
	defer st.Close()
	now := time.Now()
	svc := &alert.Service{Store: st}
	const projects = 10
	for p := range projects {
		pid := fmt.Sprintf("bench-%d", p)
		if err := st.CreateProject(ctx, store.Project{ID: pid, Name: pid, CreatedAt: now}); err != nil {
			return Percentiles{}, err
		}
		for s := range 10 {
			sub := store.Subscription{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: pid, Name: fmt.Sprintf("s%d", s), Kind: "webhook",
				URL: "http://127.0.0.1:9/", EventTypes: []string{"x"}, Scope: "all", Headers: map[string]string{}, Tags: []string{},
				Metadata: json.RawMessage(`{}`), TimeoutSeconds: 10, MaxRetries: 3, BackoffMultiplier: 2, Secret: "whsec_bench", Active: true,
				CreatedAt: now, UpdatedAt: now}
			if err := st.CreateSubscription(ctx, sub); err != nil {
				return Percentiles{}, err
			}
		}
		for i := range 200 {
			done := now.Add(-time.Duration(i) * time.Second)
			t := store.Task{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: pid, Method: "userrecaptcha", Params: map[string]string{},
				Status: store.TaskSolved, Cost: "0.002", CreatedAt: done.Add(-20 * time.Second), UpdatedAt: done, CompletedAt: &done, ExpiresAt: done}
			if i%7 == 0 {
				t.Status, t.ErrorCode, t.Cost = store.TaskFailed, "ERROR_CAPTCHA_UNSOLVABLE", ""
			}
			if err := st.CreateTask(ctx, t); err != nil {
				return Percentiles{}, err
			}
		}
	}
	c := func(v float64) *float64 { return &v }
	for i := range o.Rules {
		pid := fmt.Sprintf("bench-%d", i%projects)
		var r alert.Rule
		switch i % 5 {
		case 0:
			r = alert.Rule{Metric: "provider.balance", Tiers: []alert.Tier{{Severity: "critical", Fire: float64(i%20 + 1), Clear: c(float64(i%20 + 2))}}}
		case 1:
			r = alert.Rule{Metric: "task.error_rate", Window: alert.Duration(time.Duration(5+i%3*5) * time.Minute), MinCount: 10,
				Tiers: []alert.Tier{{Severity: "critical", Fire: 0.15, Clear: c(0.1)}}}
		case 2:
			r = alert.Rule{Metric: "subscription.drain_time", Window: alert.Duration(5 * time.Minute), Tiers: []alert.Tier{{Severity: "warning", Fire: 600}}}
		case 3:
			r = alert.Rule{Kind: alert.KindEvent, Event: "webhook.disabled", ResolveEvent: "endpoint.recovered", Tiers: []alert.Tier{{Severity: "critical"}}}
		case 4:
			r = alert.Rule{Metric: "task.latency", Window: alert.Duration(15 * time.Minute), Quantile: 0.95, MinCount: 10,
				Tiers: []alert.Tier{{Severity: "warning", Fire: 60}}}
		}
		r.Name, r.Enabled = fmt.Sprintf("rule %d", i), true
		if _, err := svc.Create(ctx, pid, r); err != nil {
			return Percentiles{}, err
		}
	}
	if _, err := st.RecordProbe(ctx, store.Gauge{Name: alert.GaugeBalance, Item: alert.ProviderItem, Value: 8, OK: true, ObservedAt: now}); err != nil {
		return Percentiles{}, err
	}
	ev := &alert.Evaluator{Store: st}
	var took []int64
	for i := range 21 {
		start := time.Now()
		if err := ev.Round(ctx); err != nil {
			return Percentiles{}, err
		}
		if i > 0 { // the first round creates the alerts
			took = append(took, int64(time.Since(start)))
		}
	}
	if len(took) == 0 {
		return Percentiles{}, errors.New("no round measured")
	}
	return percentiles(took), nil
}

// WriteText prints the report.
func (r *AlertReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "alerts (%s)\n"+
		"  endpoint disabled -> Discord stand-in: n %d  p50 %.0f ms  p95 %.0f ms  max %.0f ms  (evaluation every 1 s)\n"+
		"  one evaluation round over %d rules: p50 %.1f ms  p95 %.1f ms  max %.1f ms  (n %d)\n",
		r.Store, r.CauseToDiscord.N, r.CauseToDiscord.P50, r.CauseToDiscord.P95, r.CauseToDiscord.Max,
		r.Rules, r.Round.P50, r.Round.P95, r.Round.Max, r.Round.N)
	return err
}
