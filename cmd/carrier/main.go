// Command carrier runs the Carrier webhook gateway.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"carrier/internal/app"
	"carrier/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Carrier makes callbacks and webhooks reliable.

Usage:
  carrier serve [flags]     run the API and the delivery engine
  carrier migrate [flags]   apply database migrations and exit
  carrier admin-key create  mint a new admin API key on the store (when every admin key is lost)
  carrier bench [flags]     measure ingest and delivery throughput on this machine
  carrier chaos [flags]     run three nodes on a private PostgreSQL under faults and reconcile what was delivered
  carrier simulate [flags]  run a fake 2captcha-compatible provider (demos, tests, benchmarks)
  carrier sink [flags]      receive webhooks locally: print each delivery and check its signature
  carrier version           print the version

Run "carrier serve --help" for the settings; each flag also reads a CARRIER_* variable.
"carrier serve --dev" is development mode: deliveries may reach loopback and private addresses.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "migrate":
		err = migrate(ctx, os.Args[2:])
	case "admin-key":
		err = adminKey(ctx, os.Args[2:])
	case "bench":
		err = bench(ctx, os.Args[2:])
	case "chaos":
		err = chaosRun(ctx, os.Args[2:])
	case "simulate":
		err = simulate(ctx, os.Args[2:])
	case "sink":
		err = sink(ctx, os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("carrier", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "carrier: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the usage asked for is printed; that is success
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "carrier:", err)
		os.Exit(1)
	}
}

// parseFlags parses a subcommand's flags, showing the usage as showUsage does.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	err := fs.Parse(args)
	showUsage(usage.Bytes(), err)
	return err
}

// loadConfig reads the settings of serve and migrate, showing the usage as
// showUsage does.
func loadConfig(name string, args []string) (config.Config, error) {
	var usage bytes.Buffer
	cfg, err := config.Load(name, args, os.Getenv, &usage)
	showUsage(usage.Bytes(), err)
	return cfg, err
}

// showUsage writes what flag parsing printed: to stdout when help was asked
// for (-h, --help: the error is flag.ErrHelp and main exits 0, so that
// `carrier serve --help | less` works), to stderr along with any other error.
func showUsage(usage []byte, err error) {
	if errors.Is(err, flag.ErrHelp) {
		os.Stdout.Write(usage)
	} else {
		os.Stderr.Write(usage)
	}
}

// devBanner is printed when `carrier serve` starts in development mode, so
// that nobody mistakes such a process for a production one.
const devBanner = `
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  DEVELOPMENT MODE (--dev / CARRIER_DEV=true)                           !!
!!  Deliveries may reach loopback and private addresses                   !!
!!  (CARRIER_ALLOW_PRIVATE_NETWORKS=true), including this machine.        !!
!!  Do not use development mode in production.                            !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

`

func serve(ctx context.Context, args []string) error {
	cfg, err := loadConfig("serve", args)
	if err != nil {
		return err
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
	if cfg.Dev {
		fmt.Print(devBanner)
		log.Warn("development mode: deliveries may reach loopback and private addresses; do not use in production")
	}
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return err
	}
	if err := a.Listen(); err != nil {
		a.Store.Close()
		return err
	}
	where := "SQLite in " + cfg.DataDir
	if cfg.DatabaseURL != "" {
		where = "PostgreSQL"
	}
	fmt.Printf("Carrier %s listening on http://%s (store: %s)\n", version, a.Addr(), where)
	switch {
	case a.Simulator != nil:
		fmt.Printf("Async tasks: provider simulator running in-process at %s\n", a.Config.ProviderURL)
	case a.Tasks != nil:
		fmt.Printf("Async tasks: provider %s\n", a.Config.ProviderURL)
	}
	switch {
	case a.BootstrapKey != "":
		fmt.Printf("Bootstrap admin API key (shown once, save it): %s\n", a.BootstrapKey)
	case cfg.APIKey != "":
		fmt.Println("Admin API key: the value of CARRIER_API_KEY")
	default:
		fmt.Println("Admin API key: printed on first start (set CARRIER_API_KEY to choose one)")
	}
	return a.Run(ctx)
}

func migrate(ctx context.Context, args []string) error {
	cfg, err := loadConfig("migrate", args)
	if err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("migrations applied (%s)\n", s.Engine())
	return s.Close()
}
