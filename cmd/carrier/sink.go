package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"

	sinkpkg "carrier/internal/sink"
)

// envSinkSecret is the variable `carrier sink` reads its secret from when
// --secret is not given.
const envSinkSecret = "CARRIER_SINK_SECRET"

// sink runs `carrier sink`: a local webhook receiver that prints every
// delivery and checks its Standard Webhooks signature, until ctx is done.
func sink(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: carrier sink [flags]\n\n"+
			"Receive webhooks locally: every request is printed with its signature checked\n"+
			"against the webhook's secret (answered 200, or 401 when it does not verify).\n\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on (host:port)")
	// No default from the environment here: the usage would print the secret.
	secret := fs.String("secret", "", "the webhook's signing secret (whsec_…) from its create answer (env "+envSinkSecret+"); without one, signatures are not checked")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sink: unexpected argument %q", fs.Arg(0))
	}
	secretGiven := false
	fs.Visit(func(f *flag.Flag) { secretGiven = secretGiven || f.Name == "secret" })
	if !secretGiven {
		*secret, secretGiven = os.LookupEnv(envSinkSecret)
	}
	if secretGiven && *secret == "" {
		// An empty value is almost always a command substitution that failed
		// (the webhook was not created): say so rather than silently not
		// checking anything.
		return errors.New("sink: --secret (or " + envSinkSecret + ") is empty; pass the \"secret\" of the webhook's create answer (did creating the webhook fail?), or leave it out to print deliveries unchecked")
	}
	r, err := sinkpkg.NewReceiver(*secret, os.Stdout)
	if err != nil {
		return fmt.Errorf("sink: --secret: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("sink: listen on %s (--listen): %w", *listen, err)
	}
	checking := "checking signatures with the given secret"
	if !r.Verifies() {
		checking = "NOT checking signatures: no secret given (--secret whsec_… or " + envSinkSecret + ")"
	}
	fmt.Printf("Sink listening on http://%s, %s; every delivery is printed here\n", ln.Addr(), checking)
	return r.Serve(ctx, ln)
}
