package app_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// tcpProxy sits between Carrier and PostgreSQL so a test can cut the database
// off (every connection dropped, new ones refused) without touching the server.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close(); c.Close() }()
		go func() { io.Copy(c, u); u.Close(); c.Close() }()
	}
}

// Cut drops every connection and refuses new ones until Restore.
// postgresBehindProxy is the PostgreSQL engine reached through a proxy the
// test can cut (it skips the test, naming CARRIER_TEST_DATABASE_URL, without
// PostgreSQL).
func postgresBehindProxy(t *testing.T) (storetest.Engine, *tcpProxy) {
	t.Helper()
	var e storetest.Engine
	for _, eng := range storetest.Engines(t) {
		if eng.Name == storetest.Postgres {
			e = eng
		}
	}
	if e.Name == "" {
		t.Skip("postgres: skipped, CARRIER_TEST_DATABASE_URL is not set (the outage is simulated with a proxy in front of PostgreSQL)")
	}
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	e.DatabaseURL = u.String()
	return e, proxy
}

func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *tcpProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestDatabaseOutageSpoolsCallbacksAndPublishes cuts PostgreSQL off while
// pingbacks arrive and an event is published, restores it, and finds every
// result and the event in the store, each published once.
func TestDatabaseOutageSpoolsCallbacksAndPublishes(t *testing.T) {
	e, proxy := postgresBehindProxy(t)

	r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 1500 * time.Millisecond, MaxDelay: 2000 * time.Millisecond}})
	const n = 10
	var ids []string
	for range n {
		ids = append(ids, r.create(nil))
	}
	for _, id := range ids {
		r.waitStatus(id, "submitted", 10*time.Second)
	}
	proxy.Cut()
	// A pingback answered before the cut was stored, not spooled (on a
	// loaded machine the first ones can beat the cut).
	sentBefore := r.sim.Stats().PingbacksSent
	t.Logf("database cut off (%d pingbacks already answered)", sentBefore)

	// While it is down: a publish is acknowledged from the spool, and every pingback gets its 200.
	pub := r.c.Admin("POST", "/v1/events", map[string]any{"type": "scrape.completed", "subject": "job-9", "data": map[string]any{"ok": true}})
	if pub.Status != http.StatusAccepted || pub.Data()["spooled"] != true {
		t.Fatalf("publish during outage: %d %s", pub.Status, pub.Body)
	}
	eventID := pub.Data()["event_id"].(string)
	apptest.Eventually(t, 15*time.Second, "every pingback sent", func() bool { return r.sim.Stats().PingbacksSent >= n })
	if st := r.sim.Stats(); st.PingbacksFailed != 0 {
		t.Errorf("%d pingbacks were refused during the outage, want 0", st.PingbacksFailed)
	}
	ready := r.c.Do("GET", "/readyz", "", nil)
	if ready.JSON["status"] != "degraded" || ready.JSON["spool_pending"].(float64) < float64(n-sentBefore+1) {
		t.Errorf("readyz during outage: %d %s", ready.Status, ready.Body)
	}

	proxy.Restore()
	t.Log("database restored")
	for _, id := range ids {
		got := r.waitStatus(id, "solved", 20*time.Second)
		if got["via"] != "callback" {
			t.Errorf("task %s solved via %v, want callback (the spooled pingback)", id, got["via"])
		}
	}
	apptest.Eventually(t, 10*time.Second, "spooled event stored", func() bool {
		return r.c.Admin("GET", "/v1/events/"+eventID, nil).Status == http.StatusOK
	})
	for _, id := range ids {
		r.waitEvent(id, task.EventSolved)
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range ids {
		if k := len(r.events(id)[task.EventSolved]); k != 1 {
			t.Errorf("task %s: %d task.solved events, want 1", id, k)
		}
	}
	apptest.Eventually(t, 5*time.Second, "readyz back to ready", func() bool {
		return r.c.Do("GET", "/readyz", "", nil).JSON["status"] == "ready"
	})
}

// TestOutageRefusesFIFOPublishes: while the database is unreachable, a
// publish that a FIFO subscription wants is refused with 503 and Retry-After
// instead of being spooled (replayed later, it would be stored after the same
// key's events acknowledged after it, on this node or another: the chaos
// harness found such reorderings); a publish no FIFO subscription wants is
// still spooled. Once the database is back the refused publish, sent again,
// is stored, and both events are delivered.
func TestOutageRefusesFIFOPublishes(t *testing.T) {
	e, proxy := postgresBehindProxy(t)
	c := apptest.Start(t, e, apptest.Options{})
	ep := apptest.NewEndpoint(t, nil)
	c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"order.*"}, "ordering": "fifo"})
	c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"scrape.*"}})
	time.Sleep(1200 * time.Millisecond) // let the matcher see both

	proxy.Cut()
	fifo := map[string]any{"type": "order.paid", "subject": "order-1"}
	// The first requests after the cut can meet a connection cut halfway
	// (503 "the store is unavailable", before the spool is considered).
	var r apptest.Response
	apptest.Eventually(t, 10*time.Second, "the FIFO publish refused as FIFO", func() bool {
		r = c.Admin("POST", "/v1/events", fifo)
		return r.Status != http.StatusServiceUnavailable || strings.Contains(string(r.Body), "FIFO")
	})
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != "unavailable" || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(r.Body), "FIFO") {
		t.Fatalf("a FIFO publish during the outage: %d %v %s, want 503 unavailable with Retry-After, naming FIFO", r.Status, r.Header, r.Body)
	}
	plain := c.Admin("POST", "/v1/events", map[string]any{"type": "scrape.done", "subject": "job-1"})
	if plain.Status != http.StatusAccepted || plain.Data()["spooled"] != true {
		t.Fatalf("a publish no FIFO subscription wants, during the outage: %d %s, want 202 spooled", plain.Status, plain.Body)
	}

	proxy.Restore()
	var again apptest.Response
	apptest.Eventually(t, 20*time.Second, "the FIFO publish accepted once the database is back", func() bool {
		again = c.Admin("POST", "/v1/events", fifo)
		return again.Status == http.StatusAccepted
	})
	if again.Data()["spooled"] == true {
		t.Errorf("the FIFO publish after the outage was spooled: %s", again.Body)
	}
	ep.WaitRequests(t, 2, 30*time.Second)
}
