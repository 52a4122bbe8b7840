package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"carrier/internal/app"
	"carrier/internal/captcha"
	"carrier/internal/captcha/standin"
	"carrier/internal/captcha/tencent"
)

// CaptchaOptions configure the CAPTCHA verification benchmark.
type CaptchaOptions struct {
	Store       string // "sqlite" or "postgres"
	DatabaseURL string
	// N is how many verifications each latency phase makes (default 2000).
	N int
	// Concurrency and Duration shape the throughput phase (default 32, 5 s).
	Concurrency int
	Duration    time.Duration
	Log         io.Writer
}

// CaptchaReport is what the CAPTCHA benchmark measured.
type CaptchaReport struct {
	Machine Machine `json:"machine"`
	Store   string  `json:"store"`
	// Direct is a Tencent verification made by the vendor client straight to
	// the loopback stand-in; Carrier the same through POST
	// /v1/captcha/verify. Overhead is Carrier's minus Direct's, per
	// percentile.
	Direct   Percentiles `json:"direct"`
	Carrier  Percentiles `json:"carrier"`
	Overhead Percentiles `json:"overhead"`
	// PerSecond is verifications per second through Carrier with
	// Concurrency clients.
	PerSecond   float64 `json:"verifications_per_second"`
	Concurrency int     `json:"concurrency"`
}

// RunCaptcha measures Carrier's overhead on a verification and its
// verification rate, against the Tencent stand-in on loopback.
func RunCaptcha(ctx context.Context, o CaptchaOptions) (*CaptchaReport, error) {
	if o.N <= 0 {
		o.N = 2000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	si := standin.Start()
	defer si.Close()
	rep := &CaptchaReport{Machine: machine(), Store: o.Store, Concurrency: o.Concurrency}

	keys := captcha.Keys{AppID: standin.TencentAppID, AppSecret: standin.TencentAppSecret, SecretID: standin.TencentSecretID, SecretKey: standin.TencentSecretKey}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	vendor := tencent.New(client)
	direct := make([]int64, 0, o.N)
	for range o.N {
		tk, rnd := si.IssueTicket(standin.TencentAppID)
		start := time.Now()
		a := vendor.Verify(ctx, keys, si.URL(standin.Tencent), captcha.Request{Token: tk, Randstr: rnd, RemoteIP: "203.0.113.7"})
		direct = append(direct, int64(time.Since(start)))
		if a.Reason != captcha.ReasonOK {
			return nil, fmt.Errorf("direct verification: %s %s", a.Reason, a.VendorCode)
		}
	}

	cfg, cleanup, err := benchConfig(ctx, AlertOptions{Store: o.Store, DatabaseURL: o.DatabaseURL})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cfg.APIKey = "ck_bench_" + randomHex(16)
	a, err := app.New(ctx, cfg, app.NewLogger(o.Log, cfg.LogLevel), app.Options{})
	if err != nil {
		return nil, err
	}
	if err := a.Listen(); err != nil {
		a.Store.Close()
		return nil, err
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + a.Addr()
	call := apiCaller(ctx, base, cfg.APIKey)
	if _, err := call("/v1/captcha/sites", map[string]any{"name": "bench", "vendor": "tencent", "keys": keys,
		"settings": map[string]any{"endpoints": []string{si.URL(standin.Tencent)}}}); err != nil {
		return nil, err
	}
	verify := func() (time.Duration, error) {
		tk, rnd := si.IssueTicket(standin.TencentAppID)
		start := time.Now()
		data, err := call("/v1/captcha/verify", map[string]any{"site": "bench", "token": tk, "randstr": rnd, "remote_ip": "203.0.113.7"})
		took := time.Since(start)
		if err != nil {
			return took, err
		}
		if data["decision"] != captcha.Allow {
			return took, fmt.Errorf("verification through Carrier: %v", data)
		}
		return took, nil
	}
	for range 50 { // warm the connection, the site cache and the vendor's
		if _, err := verify(); err != nil {
			return nil, err
		}
	}
	through := make([]int64, 0, o.N)
	for range o.N {
		took, err := verify()
		if err != nil {
			return nil, err
		}
		through = append(through, int64(took))
	}
	rep.Direct, rep.Carrier = percentiles(direct), percentiles(through)
	rep.Overhead = Percentiles{N: o.N, Mean: rep.Carrier.Mean - rep.Direct.Mean, P50: rep.Carrier.P50 - rep.Direct.P50,
		P90: rep.Carrier.P90 - rep.Direct.P90, P95: rep.Carrier.P95 - rep.Direct.P95, P99: rep.Carrier.P99 - rep.Direct.P99}

	var n atomic.Int64
	var firstErr error
	var mu sync.Mutex
	deadline := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := verify(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	rep.PerSecond = perSec(n.Load(), time.Since(start))
	return rep, nil
}

// WriteText prints the report.
func (r *CaptchaReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "captcha verification (%s), Tencent stand-in on loopback, %d sequential verifications each\n"+
		"%-22s %8s %8s %8s %8s\n"+
		"%-22s %8.3f %8.3f %8.3f %8.3f\n%-22s %8.3f %8.3f %8.3f %8.3f\n%-22s %8.3f %8.3f %8.3f %8.3f\n"+
		"throughput: %.0f verifications/s with %d clients\n",
		r.Store, r.Direct.N, "latency (ms)", "p50", "p90", "p99", "mean",
		"direct to the vendor", r.Direct.P50, r.Direct.P90, r.Direct.P99, r.Direct.Mean,
		"through Carrier", r.Carrier.P50, r.Carrier.P90, r.Carrier.P99, r.Carrier.Mean,
		"Carrier's overhead", r.Overhead.P50, r.Overhead.P90, r.Overhead.P99, r.Overhead.Mean,
		r.PerSecond, r.Concurrency)
	return err
}
