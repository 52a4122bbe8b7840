package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/cluster"
	"carrier/internal/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// waitLeading waits until e's leadership is want, at most d.
func waitLeading(t *testing.T, e *cluster.Elector, want bool, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		leading, changed := e.Leading()
		if leading == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("node %s: leading = %v after %v, want %v", e.Node, leading, d, want)
		}
	}
}

// TestElectorOneLeaderAndHandOver: of two electors on one store exactly one
// leads; when it stops, it gives the lock up and the other leads at once
// (not after the lease).
func TestElectorOneLeaderAndHandOver(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st := e.Open(t)
			const lease = 2 * time.Second
			a := &cluster.Elector{Locker: st, Node: "a", Lease: lease, Log: quiet}
			b := &cluster.Elector{Locker: st, Node: "b", Lease: lease, Log: quiet}
			actx, stopA := context.WithCancel(context.Background())
			bctx, stopB := context.WithCancel(context.Background())
			defer stopB()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); a.Run(actx) }()
			waitLeading(t, a, true, lease)
			go func() { defer wg.Done(); b.Run(bctx) }()
			time.Sleep(lease) // b tries several times meanwhile
			if leading, _ := b.Leading(); leading {
				t.Fatal("b leads while a holds the lock")
			}
			stopped := time.Now()
			stopA()
			waitLeading(t, b, true, lease)
			if took := time.Since(stopped); took > lease*3/4 {
				t.Errorf("b led %v after a stopped, want about one try interval (%v): a should give the lock up", took, lease/5)
			}
			if leading, _ := a.Leading(); leading {
				t.Error("a still says it leads after stopping")
			}
			stopB()
			wg.Wait()
		})
	}
}

// failingLocker answers TryLock with an error while failing is set.
type failingLocker struct {
	cluster.Locker
	failing atomic.Bool
}

func (f *failingLocker) TryLock(ctx context.Context, name, owner string, until, now time.Time) (bool, error) {
	if f.failing.Load() {
		return false, errors.New("store unreachable")
	}
	return f.Locker.TryLock(ctx, name, owner, until, now)
}

// TestElectorGivesUpBeforeTheLeaseEnds: a leader that cannot renew stops
// leading before its lock expires, so another node never leads alongside it.
func TestElectorGivesUpBeforeTheLeaseEnds(t *testing.T) {
	st := storetest.Engines(t)[0].Open(t)
	const lease = 2 * time.Second
	locker := &failingLocker{Locker: st}
	a := &cluster.Elector{Locker: locker, Node: "a", Lease: lease, Log: quiet}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	waitLeading(t, a, true, lease)
	locker.failing.Store(true)
	cut := time.Now()
	waitLeading(t, a, false, lease)
	if took := time.Since(cut); took >= lease {
		t.Errorf("gave up %v after the store went away, want before the lease (%v) ends", took, lease)
	}
	stop()
	<-done
}

// countingService counts its rounds, and how many run at once.
type countingService struct {
	rounds, running, most atomic.Int64
}

func (c *countingService) Name() string            { return "counting" }
func (c *countingService) Interval() time.Duration { return 10 * time.Millisecond }
func (c *countingService) Round(ctx context.Context) error {
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		m := c.most.Load()
		if n <= m || c.most.CompareAndSwap(m, n) {
			break
		}
	}
	c.rounds.Add(1)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Millisecond):
	}
	return nil
}

// TestMaintainerRunsOnlyWhileLeading: of two nodes' maintainers on one
// store, only the leader's runs rounds; after a hand-over the other's does,
// and never both at once.
func TestMaintainerRunsOnlyWhileLeading(t *testing.T) {
	st := storetest.Engines(t)[0].Open(t)
	const lease = time.Second
	svc := &countingService{} // shared: counts rounds running at once across both nodes
	var stops []context.CancelFunc
	var electors []*cluster.Elector
	var wg sync.WaitGroup
	for _, node := range []string{"a", "b"} {
		e := &cluster.Elector{Locker: st, Node: node, Lease: lease, Log: quiet}
		m := &cluster.Maintainer{Elector: e, Services: []cluster.Service{svc}, Log: quiet}
		ctx, stop := context.WithCancel(context.Background())
		stops = append(stops, stop)
		electors = append(electors, e)
		wg.Add(2)
		go func() { defer wg.Done(); e.Run(ctx) }()
		go func() { defer wg.Done(); m.Run(ctx) }()
		if node == "a" {
			waitLeading(t, e, true, lease)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if svc.rounds.Load() == 0 {
		t.Fatal("the leader ran no rounds")
	}
	stops[0]()
	waitLeading(t, electors[1], true, 2*lease)
	before := svc.rounds.Load()
	time.Sleep(300 * time.Millisecond)
	if svc.rounds.Load() == before {
		t.Error("the new leader ran no rounds")
	}
	stops[1]()
	wg.Wait()
	if m := svc.most.Load(); m != 1 {
		t.Errorf("%d rounds ran at once, want 1: maintenance ran on two nodes together", m)
	}
}

// TestLocalNotifier: a notification reaches every listener of its topic
// only, with its payload.
func TestLocalNotifier(t *testing.T) {
	n := &cluster.Local{}
	var got []string
	n.Listen(cluster.TopicQueue, func(p string) { got = append(got, "queue:"+p) })
	n.Listen(cluster.TopicDeliveries, func(p string) { got = append(got, "deliveries:"+p) })
	n.Notify(cluster.TopicQueue, "q1")
	n.Notify(cluster.TopicSubscriptions, "x")
	if want := []string{"queue:q1"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("got %v, want %v", got, want)
	}
}
