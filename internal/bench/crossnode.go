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
	"strings"
	"sync"
	"time"

	"carrier/internal/app"
	"carrier/internal/cluster"
	"carrier/internal/config"
)

// CrossNodeOptions configure the cross-node wake benchmark.
type CrossNodeOptions struct {
	// DatabaseURL is the postgres:// URL of the database in which a fresh
	// schema is created and, at the end, dropped.
	DatabaseURL string
	// Events is how many events are published (default 300).
	Events int
	// Rate is the publish rate in events per second (default 20): slow
	// enough that the delivering node is idle between events, which is
	// when only a notification wakes it before its fallback poll.
	Rate int
	// Log receives Carrier's log at level warn (default os.Stderr).
	Log io.Writer
}

// CrossNodeReport is what the benchmark measured, per notifier mode.
type CrossNodeReport struct {
	Machine Machine `json:"machine"`
	Events  int     `json:"events"`
	Rate    int     `json:"rate"`
	// Notify is publish on node A → attempt received from node B, with
	// PostgreSQL LISTEN/NOTIFY waking B.
	Notify Percentiles `json:"notify"`
	// Fallback is the same with notifications off: B finds the work by its
	// fallback claim poll (1 s on PostgreSQL) alone.
	Fallback Percentiles `json:"fallback_poll_only"`
}

// RunCrossNode starts two Carrier nodes in this process on one fresh
// PostgreSQL schema: node A is API-only (CARRIER_DELIVER=false), node B
// delivers. It publishes on A at a paced rate and measures, for each event,
// the time from the publish request to the sink receiving B's attempt;
// once with the PostgreSQL notifier and once with notifications off.
func RunCrossNode(ctx context.Context, o CrossNodeOptions) (*CrossNodeReport, error) {
	if o.Events <= 0 {
		o.Events = 300
	}
	if o.Rate <= 0 {
		o.Rate = 20
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if !strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://") {
		return nil, errors.New("the cross-node benchmark needs --store postgres and a postgres:// database URL")
	}
	rep := &CrossNodeReport{Machine: machine(), Events: o.Events, Rate: o.Rate}
	var err error
	if rep.Notify, err = crossNode(ctx, o, true); err != nil {
		return rep, err
	}
	rep.Fallback, err = crossNode(ctx, o, false)
	return rep, err
}

// crossNode runs one two-node measurement.
func crossNode(ctx context.Context, o CrossNodeOptions, notify bool) (Percentiles, error) {
	url, drop, err := freshSchema(ctx, o.DatabaseURL)
	if err != nil {
		return Percentiles{}, err
	}
	defer drop()

	var mu sync.Mutex
	received := map[string]time.Time{}
	sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"id"`
		}
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
		mu.Lock()
		if _, seen := received[body.ID]; !seen {
			received[body.ID] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Percentiles{}, fmt.Errorf("sink: listen: %w", err)
	}
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	key := "ck_bench_" + randomHex(16)
	var nodes []*app.App
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	for i, deliver := range []bool{false, true} {
		cfg, err := config.Load("bench", nil, func(string) string { return "" }, io.Discard)
		if err != nil {
			return Percentiles{}, fmt.Errorf("default configuration: %w", err)
		}
		dir, err := os.MkdirTemp("", "carrier-bench-node-")
		if err != nil {
			return Percentiles{}, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir, cfg.DatabaseURL, cfg.APIKey = dir, url, key
		cfg.Listen, cfg.AllowPrivateNetworks, cfg.LogLevel, cfg.NoDelivery = "127.0.0.1:0", true, "warn", !deliver
		opts := app.Options{}
		if !notify {
			opts.Notifier = &cluster.Local{}
		}
		a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), opts)
		if err != nil {
			return Percentiles{}, fmt.Errorf("node %d: %w", i, err)
		}
		if err := a.Listen(); err != nil {
			a.Store.Close()
			return Percentiles{}, fmt.Errorf("node %d: %w", i, err)
		}
		actx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		stops = append(stops, func() { cancel(); <-done })
		nodes = append(nodes, a)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(a *app.App, path string, body any) (map[string]any, error) {
		buf, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.Addr()+path, strings.NewReader(string(buf)))
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
	if _, err := call(nodes[0], "/v1/webhooks", map[string]any{"name": "cross-node", "webhook_url": "http://" + ln.Addr().String(),
		"event_types": []string{eventType}}); err != nil {
		return Percentiles{}, err
	}
	// Node A sees the webhook at once (it was saved there); wait until it
	// fans out to it, then let B go idle.
	for i := 0; ; i++ {
		data, err := call(nodes[0], "/v1/events", map[string]any{"type": eventType})
		if err != nil {
			return Percentiles{}, err
		}
		if n, _ := data["deliveries"].(float64); n > 0 {
			break
		}
		if i > 500 {
			return Percentiles{}, errors.New("node A never fanned out to the webhook")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	sent := map[string]time.Time{}
	interval := time.Second / time.Duration(o.Rate)
	next := time.Now()
	for range o.Events {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		at := time.Now()
		data, err := call(nodes[0], "/v1/events", map[string]any{"type": eventType})
		if err != nil {
			return Percentiles{}, err
		}
		id, _ := data["event_id"].(string)
		sent[id] = at
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for id := range sent {
			if _, ok := received[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(sent) {
			break
		}
		if time.Now().After(deadline) {
			return Percentiles{}, fmt.Errorf("%d of %d events delivered after 30 s", n, len(sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	lat := make([]int64, 0, len(sent))
	mu.Lock()
	for id, at := range sent {
		lat = append(lat, int64(received[id].Sub(at)))
	}
	mu.Unlock()
	return percentiles(lat), nil
}

// WriteText prints the report as a table.
func (r *CrossNodeReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "cross-node wake: %d events at %d/s published on API-only node A, delivered by node B (PostgreSQL)\n"+
		"%-26s %8s %8s %8s %8s\n%-26s %8.1f %8.1f %8.1f %8.1f\n%-26s %8.1f %8.1f %8.1f %8.1f\n",
		r.Events, r.Rate, "publish -> attempt (ms)", "p50", "p90", "p99", "max",
		"LISTEN/NOTIFY", r.Notify.P50, r.Notify.P90, r.Notify.P99, r.Notify.Max,
		"fallback poll only", r.Fallback.P50, r.Fallback.P90, r.Fallback.P99, r.Fallback.Max)
	return err
}
