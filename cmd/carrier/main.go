// Command carrier runs the Carrier webhook gateway.
package main

import (
	"context"
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
  carrier bench [flags]     measure ingest and delivery throughput on this machine
  carrier simulate [flags]  run a fake 2captcha-compatible provider (demos, tests, benchmarks)
  carrier version           print the version

Run "carrier serve -h" for the settings; each flag also reads a CARRIER_* variable.
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
	case "bench":
		err = bench(ctx, os.Args[2:])
	case "simulate":
		err = simulate(ctx, os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("carrier", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "carrier: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "carrier:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	cfg, err := config.Load("serve", args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
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
	cfg, err := config.Load("migrate", args, os.Getenv, os.Stderr)
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
