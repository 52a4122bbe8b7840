package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	benchpkg "carrier/internal/bench"
)

// bench runs `carrier bench`: it parses the flags, runs internal/bench and
// prints the report (text, or one JSON object with --json).
func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var o benchpkg.Options
	fs.StringVar(&o.Store, "store", "sqlite", "store to measure: sqlite (fresh temporary directory) or postgres (fresh schema, dropped at the end)")
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("CARRIER_DATABASE_URL"), "postgres:// URL for --store postgres (env CARRIER_DATABASE_URL)")
	fs.IntVar(&o.Events, "events", 20000, "events published in the ingest phase")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "publishing HTTP clients")
	fs.IntVar(&o.Webhooks, "webhooks", 1, "webhook endpoints subscribed to every event")
	fs.IntVar(&o.Rate, "rate", 1000, "events per second in the latency phase")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of the latency phase")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "longest wait of each phase before it reports what it saw")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole process to this file")
	perPhase := fs.Bool("profile-phases", false, "with --cpuprofile: profile each phase separately, into FILE.ingest, FILE.delivery and FILE.latency")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if o.Store != "postgres" {
		o.DatabaseURL = ""
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

	rep, err := benchpkg.Run(ctx, o)
	if rep != nil {
		if *asJSON {
			if jerr := json.NewEncoder(os.Stdout).Encode(rep); jerr != nil {
				return errors.Join(err, fmt.Errorf("bench: print report: %w", jerr))
			}
		} else if werr := rep.WriteText(os.Stdout, benchpkg.DefaultTargets); werr != nil {
			return errors.Join(err, fmt.Errorf("bench: print report: %w", werr))
		}
	}
	return err
}
