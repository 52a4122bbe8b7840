package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	benchpkg "carrier/internal/bench"
)

// bench runs `carrier bench`: it parses the flags, runs internal/bench (the
// event benchmark, or with --tasks the async task benchmark) and prints the
// report (text, or one JSON object with --json).
func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o benchpkg.Options
	fs.StringVar(&o.Store, "store", "sqlite", "store to measure: sqlite (fresh temporary directory) or postgres (fresh schema, dropped at the end)")
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("CARRIER_DATABASE_URL"), "postgres:// URL for --store postgres (env CARRIER_DATABASE_URL)")
	fs.IntVar(&o.Events, "events", 20000, "events published in the ingest phase")
	fs.IntVar(&o.Preload, "preload", 0, "rows stored before the start, straight in SQL (a third each events, finished deliveries and attempts): rates with history already stored")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "publishing HTTP clients")
	fs.IntVar(&o.Webhooks, "webhooks", 1, "webhook endpoints subscribed to every event")
	fs.IntVar(&o.Rate, "rate", 1000, "events per second in the latency phase")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the latency phase")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "longest wait of each phase before it reports what it saw")
	fs.DurationVar(&o.CeilingDuration, "ceiling-duration", 3*time.Second, "length of the loopback ceiling (plain net/http, 512-byte POSTs, --concurrency clients)")
	fs.IntVar(&o.PacedRate, "paced-rate", 100, "events per second in the paced phase (CPU per 1,000 events at a low rate)")
	fs.DurationVar(&o.PacedDuration, "paced-duration", 10*time.Second, "length of the paced phase")
	fs.DurationVar(&o.CombinedDuration, "combined-duration", 5*time.Second, "length of each combined phase (publish and delivery at once, from a separate load-generator process)")
	fs.IntVar(&o.CombinedRate, "combined-rate", 2000, "events per second in the combined paced phase")
	fs.BoolVar(&o.PrivatePostgres, "postgres-private", false, "benchmark PostgreSQL on a private instance (initdb/pg_ctl as the postgres user, port 55433 or the next free one, production settings), removed at the end; implies --store postgres")
	loadgen := fs.Bool("loadgen", false, "run as the benchmark's load generator (internal: started by carrier bench, reads its orders on stdin)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole process to this file")
	perPhase := fs.Bool("profile-phases", false, "with --cpuprofile: profile each phase separately, into FILE.ceiling, FILE.ingest, FILE.delivery, FILE.latency, FILE.paced, FILE.combined and FILE.combined-paced")
	tasks := fs.Bool("tasks", false, "measure async tasks instead: upstream requests per solved task and solve-to-webhook latency, against a provider simulator")
	snsBench := fs.Bool("sns", false, "measure the SNS protocol instead: Publish latency and publish -> received from a subscribed queue, with three subscriptions")
	snsEnvelope := fs.Bool("sns-envelope", false, "with --sns: subscribe the queues with SNS's signed envelope instead of raw delivery")
	consoleBench := fs.Bool("console", false, "measure the console's delivery log instead: page time for its main filters over --console-deliveries seeded deliveries")
	consoleN := fs.Int("console-deliveries", 1000000, "with --console: how many deliveries to seed")
	captchaBench := fs.Bool("captcha", false, "measure CAPTCHA verification instead: Carrier's overhead over a direct call to a loopback Tencent stand-in, and verifications per second")
	alerts := fs.Bool("alerts", false, "measure alerts instead: endpoint disabled -> Discord stand-in latency, and one evaluation round over 1,000 rules")
	crossNode := fs.Bool("cross-node", false, "with --store postgres: measure cross-node wake latency instead (publish on an API-only node, attempt by another)")
	var to benchpkg.TaskOptions
	fs.IntVar(&to.Tasks, "tasks-count", benchpkg.DefaultTaskCount, "with --tasks: tasks created per scenario")
	fs.IntVar(&to.Rate, "tasks-rate", benchpkg.DefaultTaskRate, "with --tasks: tasks created per second")
	lost := fs.String("lost", "0,0.3", "with --tasks: scenarios, a comma list of lost-pingback probabilities (0 to 1)")
	fs.DurationVar(&to.MinDelay, "tasks-min-delay", benchpkg.DefaultTaskMinDelay, "with --tasks: shortest simulated solve")
	fs.DurationVar(&to.MaxDelay, "tasks-max-delay", benchpkg.DefaultTaskMaxDelay, "with --tasks: longest simulated solve")
	fs.DurationVar(&to.CallbackTimeout, "tasks-callback-timeout", benchpkg.DefaultTaskCallbackTimeout, "with --tasks: Carrier's callback timeout (production default 120s)")
	fs.DurationVar(&to.PollInterval, "tasks-poll-interval", benchpkg.DefaultTaskPollInterval, "with --tasks: Carrier's poll interval (production default 30s)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if *loadgen {
		return benchpkg.LoadGen(ctx, os.Stdin, os.Stdout)
	}
	if o.PrivatePostgres {
		if *tasks || *snsBench || *consoleBench || *captchaBench || *alerts || *crossNode {
			return errors.New("bench: --postgres-private applies to the event benchmark only")
		}
		o.Store = "postgres"
	}
	if o.Store != "postgres" {
		o.DatabaseURL = ""
	}
	if *tasks {
		if *perPhase {
			return errors.New("bench: --profile-phases does not apply to --tasks (--cpuprofile profiles the whole run)")
		}
		to.Store, to.DatabaseURL, to.Timeout = o.Store, o.DatabaseURL, o.Timeout
		var err error
		if to.Lost, err = parseLost(*lost); err != nil {
			return fmt.Errorf("bench: --lost: %w", err)
		}
	}

	if *cpuProfile != "" {
		if *perPhase {
			var f *os.File
			o.PhaseHook = func(phase string, begin bool) {
				if !begin {
					pprof.StopCPUProfile()
					if f != nil {
						f.Close()
						f = nil
					}
					return
				}
				var err error
				if f, err = os.Create(*cpuProfile + "." + phase); err != nil {
					fmt.Fprintln(os.Stderr, "carrier: bench: cpu profile:", err)
					return
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintln(os.Stderr, "carrier: bench: cpu profile:", err)
				}
			}
		} else {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("bench: cpu profile: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("bench: cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
	}

	if *tasks {
		return benchTasks(ctx, to, *asJSON)
	}
	if *consoleBench {
		rep, err := benchpkg.RunConsole(ctx, benchpkg.ConsoleOptions{Store: o.Store, DatabaseURL: o.DatabaseURL, N: *consoleN})
		if rep != nil {
			err = errors.Join(err, writeReport(rep, *asJSON))
		}
		return err
	}
	if *snsBench {
		rep, err := benchpkg.RunSNS(ctx, benchpkg.SNSOptions{Store: o.Store, DatabaseURL: o.DatabaseURL, Envelope: *snsEnvelope})
		if rep != nil {
			err = errors.Join(err, writeReport(rep, *asJSON))
		}
		return err
	}
	if *captchaBench {
		rep, err := benchpkg.RunCaptcha(ctx, benchpkg.CaptchaOptions{Store: o.Store, DatabaseURL: o.DatabaseURL})
		if rep != nil {
			err = errors.Join(err, writeReport(rep, *asJSON))
		}
		return err
	}
	if *alerts {
		rep, err := benchpkg.RunAlerts(ctx, benchpkg.AlertOptions{Store: o.Store, DatabaseURL: o.DatabaseURL})
		if rep != nil {
			err = errors.Join(err, writeReport(rep, *asJSON))
		}
		return err
	}
	if *crossNode {
		if o.Store != "postgres" {
			return errors.New("bench: --cross-node needs --store postgres: nodes share only PostgreSQL")
		}
		rep, err := benchpkg.RunCrossNode(ctx, benchpkg.CrossNodeOptions{DatabaseURL: o.DatabaseURL})
		if rep != nil {
			err = errors.Join(err, writeReport(rep, *asJSON))
		}
		return err
	}
	rep, err := benchpkg.Run(ctx, o)
	if rep != nil {
		if *asJSON {
			if jerr := json.NewEncoder(os.Stdout).Encode(rep); jerr != nil {
				return errors.Join(err, fmt.Errorf("bench: print report: %w", jerr))
			}
		} else if werr := rep.WriteText(os.Stdout, benchpkg.TargetsFor(rep.Store)); werr != nil {
			return errors.Join(err, fmt.Errorf("bench: print report: %w", werr))
		}
	}
	return err
}

// benchTasks runs the async task benchmark and prints its report.
func benchTasks(ctx context.Context, o benchpkg.TaskOptions, asJSON bool) error {
	rep, err := benchpkg.RunTasks(ctx, o)
	if rep != nil {
		var werr error
		if asJSON {
			werr = json.NewEncoder(os.Stdout).Encode(rep)
		} else {
			werr = rep.WriteText(os.Stdout)
		}
		if werr != nil {
			return errors.Join(err, fmt.Errorf("bench: print report: %w", werr))
		}
	}
	return err
}

// parseLost reads a comma list of probabilities, such as "0,0.3".
func parseLost(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("%q is not a probability between 0 and 1", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("needs at least one probability, such as 0,0.3")
	}
	return out, nil
}

// writeReport prints a benchmark's report as JSON or as its text.
func writeReport(rep interface{ WriteText(io.Writer) error }, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	return rep.WriteText(os.Stdout)
}
