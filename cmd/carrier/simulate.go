package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"carrier/internal/provider/simulator"
)

// simulate runs `carrier simulate`: a fake 2captcha-compatible provider
// (in.php, res.php, pingbacks) with configurable delays and faults, served
// until ctx is done.
func simulate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	var cfg simulator.Config
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	fs.StringVar(&cfg.Key, "key", simulator.DefaultKey, "the only API key accepted")
	fs.Float64Var(&cfg.Balance, "balance", simulator.DefaultBalance, "starting balance (each task charges --price)")
	fs.Float64Var(&cfg.Price, "price", simulator.DefaultPrice, "price of one task")
	fs.DurationVar(&cfg.MinDelay, "min-delay", 2*time.Second, "shortest solve delay")
	fs.DurationVar(&cfg.MaxDelay, "max-delay", 8*time.Second, "longest solve delay")
	fs.StringVar(&cfg.PingbackMethod, "pingback-method", "GET", "GET (CaptchaAI style: ?id=…&code=…) or POST (2captcha style: form body)")
	fs.Int64Var(&cfg.Seed, "seed", time.Now().UnixNano(), "seed of the fault and delay dice")
	f := &cfg.Faults
	fs.Float64Var(&f.LostPingbacks, "lost-pingbacks", 0, "probability a pingback is never sent")
	fs.Float64Var(&f.LatePingbacks, "late-pingbacks", 0, "probability a pingback is sent --late-by after the solve")
	fs.DurationVar(&f.LateBy, "late-by", simulator.DefaultLateBy, "how late a late pingback is")
	fs.Float64Var(&f.DuplicatePingbacks, "duplicate-pingbacks", 0, "probability a pingback is sent twice")
	fs.Float64Var(&f.SubmitTransient, "submit-transient", 0, "probability a submit answers ERROR_NO_SLOT_AVAILABLE")
	fs.Float64Var(&f.SubmitPermanent, "submit-permanent", 0, "probability a submit answers ERROR_BAD_PARAMETERS")
	fs.Float64Var(&f.Unsolvable, "unsolvable", 0, "probability a task ends ERROR_CAPTCHA_UNSOLVABLE")
	fs.DurationVar(&f.ResDelay, "res-delay", 0, "delay of every res.php answer")
	fs.DurationVar(&f.SubmitDelay, "submit-delay", 0, "delay of every accepted in.php answer (the task is taken and charged at once)")
	fs.Float64Var(&f.ResFailures, "res-failures", 0, "probability a res.php request answers HTTP 500")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}

	sim := simulator.New(cfg)
	u, err := sim.Start(*listen)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Printf("Provider simulator listening on %s (in.php, res.php)\n", u)
	fmt.Printf("API key: %s\n", cfg.Key)
	<-ctx.Done()
	st := sim.Stats()
	if err := sim.Close(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Printf("simulator stopped: %d submits (%d accepted), %d solved, %d unsolvable, %d res.php requests, %d pingbacks sent, %d lost\n",
		st.Submits, st.SubmitsAccepted, st.Solved, st.Unsolvable, st.ResRequests, st.PingbacksSent, st.PingbacksLost)
	return nil
}
