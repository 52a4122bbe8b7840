package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tracker records the first arrival of each (event, webhook) pair of a phase
// in a preallocated slot, lock-free: slot = seq*webhooks + webhook.
type tracker struct {
	hooks int64
	// slots hold 0 (not arrived), or the latency in ns (at least 1) when
	// latencies are kept, or 1.
	slots   []atomic.Int64
	keepLat bool
	count   atomic.Int64
	dups    atomic.Int64
	last    atomic.Int64 // latest first-arrival time on the shared clock
	// arrivals, when not nil, hold each slot's first-arrival time, to count
	// what arrived within a window (arrivedBy).
	arrivals []atomic.Int64
}

func newTracker(events, hooks int, keepLat bool) *tracker {
	return &tracker{hooks: int64(hooks), slots: make([]atomic.Int64, events*hooks), keepLat: keepLat}
}

func (t *tracker) record(seq int64, hook int, sent, arrival int64) bool {
	if seq < 0 || hook < 0 || int64(hook) >= t.hooks || seq >= int64(len(t.slots))/t.hooks {
		return false
	}
	v := int64(1)
	if t.keepLat {
		v = max(1, arrival-sent)
	}
	if !t.slots[seq*t.hooks+int64(hook)].CompareAndSwap(0, v) {
		t.dups.Add(1)
		return true
	}
	if t.arrivals != nil {
		t.arrivals[seq*t.hooks+int64(hook)].Store(arrival)
	}
	atomicMax(&t.last, arrival)
	t.count.Add(1)
	return true
}

// arrivedBy counts first arrivals at or before at (shared clock); it needs arrivals.
func (t *tracker) arrivedBy(at int64) int64 {
	var n int64
	for i := range t.arrivals {
		if v := t.arrivals[i].Load(); v > 0 && v <= at {
			n++
		}
	}
	return n
}

// values returns the recorded latencies.
func (t *tracker) values() []int64 {
	out := make([]int64, 0, t.count.Load())
	for i := range t.slots {
		if v := t.slots[i].Load(); v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// sink is the webhook endpoint: it answers 200 at once and records arrivals.
type sink struct {
	r      *run
	url    string
	phase1 *tracker
	phase3 *tracker
	// phases holds the trackers of the external phases, by sink phase
	// number, set as each phase begins.
	phases   [sinkPhases]atomic.Pointer[tracker]
	other    atomic.Int64 // probe and unrecognised requests
	gate     chan struct{}
	gateOnce sync.Once
	bufs     sync.Pool
}

func newSink(r *run, events, latEvents, hooks int) *sink {
	return &sink{
		r: r, phase1: newTracker(events, hooks, false), phase3: newTracker(latEvents, hooks, true),
		gate: make(chan struct{}),
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// open lets held requests through (idempotent).
func (s *sink) open() { s.gateOnce.Do(func() { close(s.gate) }) }

type sinkPayload struct {
	Data struct {
		Phase  int   `json:"bench_phase"`
		Seq    int64 `json:"seq"`
		SentNS int64 `json:"sent_ns"`
	} `json:"data"`
}

// ServeHTTP records a delivery (after the gate opens) and answers 200.
func (s *sink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-s.gate:
	default:
		t := time.NewTimer(holdMax)
		select {
		case <-s.gate:
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	arrival := s.r.now()
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(io.LimitReader(req.Body, 1<<20))
	var p sinkPayload
	if err == nil {
		err = json.Unmarshal(buf.Bytes(), &p)
	}
	s.bufs.Put(buf)
	hook, herr := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
	ok := false
	if err == nil && herr == nil {
		switch p.Data.Phase {
		case 1:
			ok = s.phase1.record(p.Data.Seq, hook, p.Data.SentNS, arrival)
		case 3:
			ok = s.phase3.record(p.Data.Seq, hook, p.Data.SentNS, arrival)
		default:
			if p.Data.Phase > 0 && p.Data.Phase < sinkPhases {
				if t := s.phases[p.Data.Phase].Load(); t != nil {
					ok = t.record(p.Data.Seq, hook, p.Data.SentNS, arrival)
				}
			}
		}
	}
	if !ok {
		s.other.Add(1)
	}
	w.WriteHeader(http.StatusOK)
}
