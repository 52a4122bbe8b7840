package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"carrier/internal/app"
)

// publish posts one event and returns how many deliveries it created.
func (r *run) publish(ctx context.Context, body []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.baseURL+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("publish: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("publish: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out struct {
		Data struct {
			Deliveries int64 `json:"deliveries"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, fmt.Errorf("publish: decode answer: %w", err)
	}
	return out.Data.Deliveries, nil
}

// appendEvent renders a benchmark event: data carries the phase, the sequence
// number and the (scheduled) send time on the shared clock.
func appendEvent(b []byte, phase int, seq, sentNS int64) []byte {
	b = append(b, `{"type":"`+eventType+`","data":{"bench_phase":`...)
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"sent_ns":`...)
	b = strconv.AppendInt(b, sentNS, 10)
	return append(b, "}}"...)
}

// firstError keeps the first error of a phase.
type firstError struct {
	once sync.Once
	msg  string
}

func (f *firstError) set(err error) { f.once.Do(func() { f.msg = err.Error() }) }

// ingest is phase 1: publish Events events with Concurrency clients, closed loop.
func (r *run) ingest(ctx context.Context) Ingest {
	n := int64(r.o.Events)
	pctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	var (
		next, accepted, deliveries, errs atomic.Int64
		first                            firstError
		wg                               sync.WaitGroup
		mu                               sync.Mutex
		lat                              = make([]int64, 0, n)
	)
	start := time.Now()
	for g := 0; g < r.o.Concurrency; g++ {
		wg.Go(func() {
			buf := make([]byte, 0, 128)
			local := make([]int64, 0, n/int64(r.o.Concurrency)+1)
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for pctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= n {
					return
				}
				t0 := r.now()
				buf = appendEvent(buf[:0], 1, k, t0)
				d, err := r.publish(pctx, buf)
				if err != nil {
					if pctx.Err() == nil {
						errs.Add(1)
						first.set(fmt.Errorf("event %d: %w", k, err))
						cancel() // a failing Carrier is not measured further
					}
					return
				}
				local = append(local, r.now()-t0)
				accepted.Add(1)
				deliveries.Add(d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := Ingest{
		Accepted: accepted.Load(), Deliveries: deliveries.Load(), Errors: errs.Load(), FirstError: first.msg,
		TimedOut: errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil,
		ElapsedS: elapsed.Seconds(), Accept: percentiles(lat),
	}
	res.EventsPerSec = perSec(res.Accepted, elapsed)
	return res
}

// delivery is phase 2: release phase 1's deliveries and wait until the sink
// has all of them and the store records them all as delivered.
func (r *run) delivery(ctx context.Context, expected, storeTarget int64) (Delivery, error) {
	res := Delivery{Expected: expected, StoreTarget: storeTarget}
	t1 := r.sink.phase1
	start := time.Now()
	startNS := r.now()
	switch r.mode {
	case PauseInactive:
		if err := r.setActive(ctx, true); err != nil {
			return res, err
		}
	case PauseHeld:
		r.sink.open()
	}
	deadline := time.NewTimer(r.o.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sinkDone, storeDone := false, false
	for !(sinkDone && storeDone) {
		if !sinkDone && t1.count.Load() >= expected {
			sinkDone = true
			res.SinkElapsedS = time.Duration(max(0, t1.last.Load()-startNS)).Seconds()
		}
		if !storeDone {
			n, err := r.storeDelivered(ctx)
			if err != nil {
				return res, err
			}
			res.StoreDelivered = n
			if n >= storeTarget {
				storeDone = true
				res.StoreElapsedS = time.Since(start).Seconds()
			}
		}
		if sinkDone && storeDone {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline.C:
			res.TimedOut = true
		case <-tick.C:
		}
		if res.TimedOut {
			break
		}
	}
	res.SinkReceived = t1.count.Load()
	res.SinkDuplicates = t1.dups.Load()
	if res.TimedOut {
		elapsed := time.Since(start).Seconds()
		if !sinkDone {
			res.SinkElapsedS = elapsed
		}
		if !storeDone {
			res.StoreElapsedS = elapsed
		}
	}
	res.SinkPerSec = perSec(res.SinkReceived, time.Duration(res.SinkElapsedS*1e9))
	res.DeliveriesPerSec = perSec(min(res.StoreDelivered, storeTarget), time.Duration(res.StoreElapsedS*1e9))
	return res, nil
}

// storeDelivered sums the webhooks' successful deliveries as the store records them.
func (r *run) storeDelivered(ctx context.Context) (int64, error) {
	var n int64
	for _, id := range r.webhooks {
		sub, err := r.app.Store.GetSubscription(ctx, app.DefaultProjectID, id)
		if err != nil {
			return 0, fmt.Errorf("read webhook %s: %w", id, err)
		}
		n += sub.SuccessfulDeliveries
	}
	return n, nil
}

// waitStore waits until the store records want deliveries as delivered, or
// Timeout passes (which is not an error: the final states show what happened).
func (r *run) waitStore(ctx context.Context, want int64) error {
	deadline := time.Now().Add(r.o.Timeout)
	for {
		n, err := r.storeDelivered(ctx)
		if err != nil {
			return err
		}
		if n >= want || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// latency is phase 3: publish at Rate for Duration, open loop, each event
// carrying its scheduled send time, with delivery running.
func (r *run) latency(ctx context.Context) Latency {
	res := Latency{TargetRate: r.o.Rate, Scheduled: r.latEvents}
	load := r.publishLoop(ctx, loadSpec{Phase: 3, Rate: r.o.Rate, Concurrency: r.o.Concurrency,
		DurationNS: int64(r.o.Duration), MaxEvents: int64(r.latEvents)})
	res.Accepted, res.Errors, res.FirstError = load.Accepted, load.Errors, load.FirstError
	res.LateSends, res.MaxSendLagMS = load.LateSends, load.MaxSendLagMS
	res.AchievedPer = perSec(res.Accepted, time.Duration(load.EndNS-load.StartNS))
	res.Accept = load.Accept
	res.Expected = load.Deliveries

	// Wait for the deliveries.
	t3 := r.sink.phase3
	deadline := time.Now().Add(r.o.Timeout)
	for t3.count.Load() < res.Expected && ctx.Err() == nil {
		if time.Now().After(deadline) {
			res.TimedOut = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.Delivered, res.Duplicates = t3.count.Load(), t3.dups.Load()
	res.Delivery = percentiles(t3.values())
	return res
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
