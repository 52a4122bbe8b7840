package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Ceiling is what plain Go net/http does on this machine's loopback: a
// server that reads a 512-byte POST body and answers 200, and as many
// keep-alive clients as the ingest phase uses, in this process. Carrier's
// throughput figures are shown as a fraction of its requests per second:
// one publish or one delivery is one such request.
type Ceiling struct {
	Concurrency int     `json:"concurrency"`
	BodyBytes   int     `json:"body_bytes"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	ElapsedS    float64 `json:"elapsed_s"`
	PerSec      float64 `json:"requests_per_s"`
	// CPU is this process's time (server and clients) per 1,000 requests.
	CPU CPU `json:"cpu"`
}

// ceilingBody is the size of the ceiling's POST bodies: about a small event.
const ceilingBody = 512

// measureCeiling runs the loopback ceiling for d with concurrency clients.
func measureCeiling(ctx context.Context, concurrency int, d time.Duration) (Ceiling, error) {
	res := Ceiling{Concurrency: concurrency, BodyBytes: ceilingBody}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("ceiling: listen: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			io.Copy(io.Discard, req.Body)
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
	}()
	tr := &http.Transport{
		Proxy: nil, MaxIdleConns: concurrency + 16, MaxIdleConnsPerHost: concurrency + 16,
		IdleConnTimeout: time.Minute, DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	body := bytes.Repeat([]byte("x"), ceilingBody)

	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		n, errs atomic.Int64
		first   firstError
		wg      sync.WaitGroup
	)
	cpu0 := processCPU()
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for pctx.Err() == nil {
				req, err := http.NewRequestWithContext(pctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					first.set(err)
					errs.Add(1)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					if pctx.Err() == nil {
						first.set(err)
						errs.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Requests, res.Errors, res.FirstError, res.ElapsedS = n.Load(), errs.Load(), first.msg, elapsed.Seconds()
	res.PerSec = perSec(res.Requests, elapsed)
	s := (processCPU() - cpu0).Seconds()
	res.CPU = CPU{ProcessS: s, Events: res.Requests, PerThousand: perThousand(s, res.Requests)}
	if res.Requests == 0 {
		return res, fmt.Errorf("ceiling: no request answered: %s", first.msg)
	}
	return res, nil
}

// ofCeiling renders a rate as a fraction of the ceiling.
func ofCeiling(perSec float64, c *Ceiling) string {
	if c == nil || c.PerSec <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.1f%% of the loopback ceiling)", 100*perSec/c.PerSec)
}
