// Package chaos runs Carrier as a cluster under faults and checks what it
// delivered: three `carrier serve` processes (the built binary) on a private
// PostgreSQL instance, each reaching it through a TCP proxy the harness can
// cut, a load generator publishing through the REST API, and a sink that
// records every request. Faults come on a schedule (a node killed, paused
// past its leases, cut off from the database; the database restarted; the
// sink slow, failing, hanging). At the end the harness waits for the cluster
// to go quiet and reconciles the sink's records with the database: nothing
// accepted is lost, duplicates only near faults and always under one
// webhook-id, FIFO order per key kept, no delivery sent by two live nodes at
// once, leader-only rounds never on two nodes at once.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config is one run.
type Config struct {
	Binary   string        // the carrier binary
	Dir      string        // where the run keeps its files ("" a temporary directory, removed after a clean run)
	Nodes    int           // default 3
	Duration time.Duration // how long the load runs
	Rate     int           // events a second
	Keys     int           // ordering keys (one publishing worker each)
	Warmup   time.Duration // load before the first fault (and before the soak's first RSS figure)
	Gap      time.Duration // quiet time between two faults
	Faults   []string      // the kinds, cycled in this order (default AllFaults)
	// Subscriptions names the webhooks to create, of plain (every event),
	// fifo (every event, in order per key) and odd (chaos.odd events only);
	// empty: all three.
	Subscriptions []string
	Lease         time.Duration // the nodes' delivery lease (short, so a pause outlives it)
	Interval      time.Duration // latency and RSS are reported per interval (0: once)
	Quiesce       time.Duration // the longest wait for the cluster to go quiet at the end
	Seed          uint64
	Log           io.Writer // progress lines
}

func (c *Config) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.Keys == 0 {
		c.Keys = 20
	}
	if c.Lease == 0 {
		c.Lease = 4 * time.Second
	}
	if c.Gap == 0 {
		c.Gap = 3 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 5 * time.Second
	}
	if len(c.Faults) == 0 {
		c.Faults = AllFaults
	}
	if c.Quiesce == 0 {
		c.Quiesce = 3 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Report is what a run found.
type Report struct {
	Checks    []Check
	Faults    []Fault
	Latency   []Latency
	RSS       []RSSSample
	Start     time.Time
	Dir       string // kept when the run found a violation
	Published struct{ Refused, Failed int64 }
}

// Violations lists the checks that failed.
func (r *Report) Violations() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Violation && !c.Known && c.Value != 0 {
			out = append(out, fmt.Sprintf("%s: %d", c.Name, c.Value))
		}
	}
	for _, f := range r.Faults {
		if f.Err != "" {
			out = append(out, fmt.Sprintf("fault %s could not be injected: %s", f.Kind, f.Err))
		}
	}
	return out
}

// Run runs the cluster under faults and reconciles. An error means the run
// could not be made; violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.Binary == "" {
		return nil, errors.New("no carrier binary")
	}
	if _, err := PostgresBin(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "carrier-chaos-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
	}
	logf("chaos: files in %s, seed %d", dir, cfg.Seed)
	pg, err := StartPostgres(ctx, filepath.Join(dir, "pg"))
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	logf("chaos: private PostgreSQL on %s", pg.Addr())
	if out, err := exec.CommandContext(ctx, cfg.Binary, "migrate", "--database-url", pg.URL()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("carrier migrate: %v: %s", err, out)
	}

	nodes, err := startNodes(ctx, cfg, dir, pg)
	defer func() {
		for _, n := range nodes {
			n.Stop()
			if n.proxy != nil {
				n.proxy.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	sink, err := StartSink(func(inode string) string {
		for _, n := range nodes {
			if pid := n.Pid(); pid != 0 && socketOwner(pid, inode) {
				return n.Name()
			}
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	subs, err := CreateSubscriptions(ctx, nodes[0], sink, cfg.Subscriptions)
	if err != nil {
		return nil, err
	}
	logf("chaos: %d nodes up, %d events/s for %s", len(nodes), cfg.Rate, cfg.Duration)

	rep := &Report{Start: time.Now()}
	load := &Load{Nodes: nodes, Rate: cfg.Rate, Keys: cfg.Keys}
	lctx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); load.Run(lctx) }()
	rss := &rssSampler{nodes: nodes, every: cfg.Interval}
	go func() { defer wg.Done(); rss.run(lctx) }()

	in := &injector{nodes: nodes, pg: pg, sink: sink, subs: subs, lease: cfg.Lease, rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
	sleep(lctx, cfg.Warmup)
	for i := 0; lctx.Err() == nil && i < 100000; i++ {
		kind := cfg.Faults[i%len(cfg.Faults)]
		f := in.apply(ctx, lctx, kind)
		node := ""
		if f.Node >= 0 {
			node = " node " + strconv.Itoa(f.Node+1)
		}
		logf("fault %s%s: %s %s", f.Kind, node, f.End.Sub(f.Start).Round(100*time.Millisecond), f.Err)
		rep.Faults = append(rep.Faults, f)
		sleep(lctx, cfg.Gap)
	}
	wg.Wait()
	rep.Published.Refused, rep.Published.Failed = load.refused.Load(), load.failed.Load()
	rep.RSS = rss.samples()
	logf("chaos: load over (%d accepted, %d refused, %d unanswered); waiting for quiescence", len(load.Accepted()), rep.Published.Refused, rep.Published.Failed)

	// Every node back, the sink answering, the subscriptions active.
	sink.SetMode(SinkOK)
	for _, n := range nodes {
		if !n.Running() {
			n.Resume()
			if !n.Running() {
				if err := n.Start(ctx); err != nil {
					return nil, err
				}
			}
		}
		n.proxy.Restore()
	}
	if err := Activate(ctx, nodes, subs); err != nil {
		return nil, err
	}
	quiet := quiesce(ctx, pg.URL(), sink, cfg.Quiesce)
	if quiet != nil {
		logf("chaos: %v", quiet)
	}
	for _, n := range nodes {
		n.Stop()
	}
	logs := map[string]string{}
	for _, n := range nodes {
		for k, v := range n.Logs() {
			logs[k] = v
		}
	}
	rounds, err := readRounds(logs)
	if err != nil {
		return nil, err
	}
	logf("chaos: reconciling")
	rep.Checks, rep.Latency, err = reconcile(ctx, pg.URL(), record{accepted: load.Accepted(), receipts: sink.Receipts(),
		faults: rep.Faults, subs: subs, rounds: rounds, start: rep.Start, interval: cfg.Interval})
	if err != nil {
		return nil, err
	}
	if quiet != nil {
		rep.Checks = append(rep.Checks, Check{Name: "work still waiting when the quiescence wait ran out (" + cfg.Quiesce.String() + ")", Value: 1, Violation: true})
	}
	if len(rep.Violations()) > 0 || cfg.Dir != "" {
		rep.Dir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	return rep, nil
}

func startNodes(ctx context.Context, cfg Config, dir string, pg *Postgres) ([]*Node, error) {
	var nodes []*Node
	for i := range cfg.Nodes {
		proxy, err := NewProxy(pg.Addr())
		if err != nil {
			return nodes, err
		}
		port, err := freePort()
		if err != nil {
			return nodes, err
		}
		ndir := filepath.Join(dir, fmt.Sprintf("n%d", i+1))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return nodes, err
		}
		n := &Node{Index: i, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: ndir, bin: cfg.Binary, proxy: proxy,
			args: []string{"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", ndir,
				"--database-url", fmt.Sprintf("postgres://postgres@%s/carrier?sslmode=disable", proxy.Addr()),
				"--dev", "--log-level", "debug", "--alert-defaults=false",
				"--leader-lease", "3s", "--delivery-lease", cfg.Lease.String(), "--retry-base", "250ms", "--shutdown-grace", "2s"}}
		nodes = append(nodes, n)
		if err := n.Start(ctx); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// quiesce waits until no delivery is pending or retrying and the sink has
// been quiet for two seconds.
func quiesce(ctx context.Context, url string, sink *Sink, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	quietSince, last := time.Now(), -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var waiting int64
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying')`).Scan(&waiting)
			conn.Close(ctx)
		}
		if n := sink.Count(); n != last {
			last, quietSince = n, time.Now()
		}
		if err == nil && waiting == 0 && time.Since(quietSince) >= 2*time.Second {
			return nil
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("not quiet after %s", limit)
}
