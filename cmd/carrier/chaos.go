package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"carrier/internal/chaos"
)

// chaosRun runs `carrier chaos`: three nodes of this binary on a private
// PostgreSQL under faults, then the reconciliation report; exit status 1 on
// any violation.
func chaosRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: carrier chaos [flags]\n\nRuns three `carrier serve` processes (this binary) on a private PostgreSQL it starts with initdb (as the postgres user),\ninjects faults while publishing, and reconciles what the sink received with the database.")
		fs.PrintDefaults()
	}
	var cfg chaos.Config
	var faults, subs string
	soak := fs.Bool("soak", false, "soak mode: 500 events/s over 100 keys to the plain webhook, faults every 2 minutes (no kills, so each node's RSS is one process's), RSS and p99 per minute")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the load runs")
	fs.IntVar(&cfg.Rate, "rate", 50, "events a second")
	fs.IntVar(&cfg.Keys, "keys", 20, "ordering keys, each published in order by its own worker")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "carrier serve processes")
	fs.DurationVar(&cfg.Gap, "gap", 3*time.Second, "quiet time between two faults")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "load before the first fault (and the soak's first RSS figure)")
	fs.DurationVar(&cfg.Lease, "lease", 4*time.Second, "the nodes' delivery lease")
	fs.DurationVar(&cfg.Interval, "interval", 0, "report latency and RSS per interval (0: once)")
	fs.StringVar(&faults, "faults", strings.Join(chaos.AllFaults, ","), "fault kinds, cycled in this order")
	fs.StringVar(&subs, "subscriptions", "plain,fifo,odd", "webhooks to create: plain (every event), fifo (chaos.even events, in order per key), odd (chaos.odd events only)")
	fs.DurationVar(&cfg.Quiesce, "quiesce", 3*time.Minute, "the longest wait for the cluster to deliver what is left after the load")
	fs.StringVar(&cfg.Dir, "dir", "", "keep the run's files here (default: a temporary directory, removed after a clean run)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *soak {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rate"] {
			cfg.Rate = 500
		}
		if !set["keys"] {
			cfg.Keys = 100
		}
		if !set["gap"] {
			cfg.Gap = 2 * time.Minute
		}
		if !set["warmup"] {
			cfg.Warmup = 5 * time.Minute
		}
		if !set["interval"] {
			cfg.Interval = time.Minute
		}
		if !set["subscriptions"] {
			// One delivery an event: 500 events/s is then 500 deliveries/s.
			subs = "plain"
		}
		if !set["quiesce"] {
			cfg.Quiesce = 10 * time.Minute
		}
		if !set["faults"] {
			faults = strings.Join([]string{chaos.FaultPause, chaos.FaultSinkSlow, chaos.FaultPartition, chaos.FaultSinkFail, chaos.FaultPGRestart, chaos.FaultSinkHang}, ",")
		}
	}
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Faults = append(cfg.Faults, f)
		}
	}
	for _, s := range strings.Split(subs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Subscriptions = append(cfg.Subscriptions, s)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary = bin
	cfg.Log = os.Stdout
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout, cfg.Warmup)
	if v := rep.Violations(); len(v) > 0 {
		return errors.New("chaos: " + fmt.Sprint(len(v)) + " violations")
	}
	return nil
}
