package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// The fault kinds, in the order a run cycles through them.
const (
	FaultKill      = "kill"      // SIGKILL a node, start it again
	FaultPause     = "pause"     // SIGSTOP a node past its leases, then SIGCONT
	FaultPartition = "partition" // cut a node off from PostgreSQL
	FaultPGRestart = "pg-restart"
	FaultSinkSlow  = "sink-slow"
	FaultSinkFail  = "sink-fail"
	FaultSinkHang  = "sink-hang"
)

// AllFaults is every kind.
var AllFaults = []string{FaultKill, FaultPause, FaultPartition, FaultPGRestart, FaultSinkSlow, FaultSinkFail, FaultSinkHang}

// Fault is one fault injected: when, and on which node (-1: none).
type Fault struct {
	Kind       string
	Node       int
	Start, End time.Time
	Err        string // what went wrong injecting it, if anything
}

// injector applies faults to a running cluster.
type injector struct {
	nodes []*Node
	pg    *Postgres
	sink  *Sink
	subs  map[string]string
	lease time.Duration
	rng   *rand.Rand
}

// pickRunning chooses a running node at random (-1 when none runs).
func (in *injector) pickRunning() int {
	var up []int
	for i, n := range in.nodes {
		if n.Running() {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return -1
	}
	return up[in.rng.IntN(len(up))]
}

// apply injects one fault and returns once it is over (the node restarted or
// resumed, the proxy restored, the server up, the sink answering again). A
// fault lasts until its time is up or load ends (the waits use load); what
// ends it uses ctx, so that it is undone even when the load is over.
func (in *injector) apply(ctx, load context.Context, kind string) Fault {
	f := Fault{Kind: kind, Node: -1, Start: time.Now()}
	var err error
	switch kind {
	case FaultKill, FaultPause, FaultPartition:
		if f.Node = in.pickRunning(); f.Node < 0 {
			err = fmt.Errorf("no running node")
			break
		}
		n := in.nodes[f.Node]
		switch kind {
		case FaultKill:
			n.Kill()
			sleep(load, 2*time.Second)
			err = n.Start(ctx)
		case FaultPause:
			// Past the delivery lease, so other nodes claim what it holds,
			// but short of the 15 s node timeout, so its leases are not
			// given back by the rescuer: they simply expire under it.
			if err = n.Pause(); err == nil {
				sleep(load, in.lease+3*time.Second)
				err = n.Resume()
			}
		case FaultPartition:
			n.proxy.Cut()
			sleep(load, in.lease+4*time.Second)
			n.proxy.Restore()
		}
	case FaultPGRestart:
		err = in.pg.Restart(ctx)
	case FaultSinkSlow, FaultSinkFail, FaultSinkHang:
		mode := map[string]int32{FaultSinkSlow: SinkSlow, FaultSinkFail: SinkFail, FaultSinkHang: SinkHang}[kind]
		in.sink.SetMode(mode)
		sleep(load, 6*time.Second)
		in.sink.SetMode(SinkOK)
		if kind != FaultSinkSlow {
			// Attempts still hanging or failing time out within the 2 s
			// webhook timeout, and ten failures in a row would disable the
			// webhook again right after an earlier activation.
			sleep(ctx, 3*time.Second)
			err = Activate(ctx, in.nodes, in.subs)
		}
	}
	f.End = time.Now()
	if err != nil {
		f.Err = err.Error()
	}
	return f
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
