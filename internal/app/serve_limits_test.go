package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// TestEndpointHugeResponseHeaders: an endpoint answering with 1 MB of
// headers fails the attempt with a clear error once 64 KiB are read,
// instead of having Carrier hold up to 10 MB per attempt.
func TestEndpointHugeResponseHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for range 20 { // bounded: one or a few attempts are expected
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				bufio.NewReader(conn).ReadString('\n') // the request line is enough
				w := bufio.NewWriter(conn)
				w.WriteString("HTTP/1.1 200 OK\r\n")
				line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
				for range 1000 { // 1 MB of headers
					if _, err := w.WriteString(line); err != nil {
						return
					}
				}
				w.WriteString("Content-Length: 0\r\n\r\n")
				w.Flush()
			}()
		}
	}()

	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{})
	id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": "http://" + ln.Addr().String() + "/hook",
		"event_types": []string{"order.paid"}, "max_retries": 0})
	c.Publish(apptest.AdminKey, map[string]any{"type": "order.paid"})
	var d map[string]any
	apptest.Eventually(t, 15*time.Second, "the delivery to fail", func() bool {
		l := c.Admin("GET", "/v1/webhooks/"+id+"/deliveries", nil).List()
		if len(l) == 1 && l[0]["status"] == "failed" {
			d = l[0]
			return true
		}
		return false
	})
	if d["error_code"] != "response_headers_too_large" || !strings.Contains(fmt.Sprint(d["error_message"]), "65536") {
		t.Errorf("delivery %v, want error_code response_headers_too_large and a message naming the 65536-byte limit", d)
	}
}

// TestTrickledBodyIsCutOff: a client that sends its headers and then its
// body a byte at a time is cut off once CARRIER_BODY_READ_TIMEOUT has
// passed (it held the connection for 60 s before).
func TestTrickledBodyIsCutOff(t *testing.T) {
	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{Configure: func(cfg *config.Config) {
		cfg.BodyReadTimeout = time.Second
	}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", apptest.AdminKey)
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		io.Copy(io.Discard, conn) // until Carrier answers and closes, or gives up
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 150; i++ { // at most 15 s of trickling
		select {
		case took := <-closed:
			if took > 4*time.Second {
				t.Fatalf("connection held for %s, want it cut off about 1 s after the headers", took)
			}
			return
		case <-tick.C:
			conn.Write([]byte(" "))
		}
	}
	t.Fatalf("a trickled body held the connection for %s", time.Since(start))
}

// TestLongPollOutlivesBodyDeadline: the body deadline is lifted once a body
// is read, so a long poll waits longer than it and still gets its message.
func TestLongPollOutlivesBodyDeadline(t *testing.T) {
	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{Configure: func(cfg *config.Config) {
		cfg.BodyReadTimeout = 500 * time.Millisecond
	}})
	r := c.Admin("POST", "/v1/queues", map[string]any{"name": "slow"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create queue: %d %s", r.Status, r.Body)
	}
	q := r.Data()["id"].(string)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		c.Admin("POST", "/v1/queues/"+q+"/messages", map[string]any{"body": "late"})
	}()
	start := time.Now()
	r = c.Admin("POST", "/v1/queues/"+q+"/receive", map[string]any{"wait_time_seconds": 5})
	msgs, _ := r.Data()["messages"].([]any)
	if r.Status != http.StatusOK || len(msgs) != 1 {
		t.Fatalf("long poll after %s: %d %s, want the message sent 1.5 s in", time.Since(start), r.Status, r.Body)
	}
}

// TestConnectionsCapped: with CARRIER_MAX_CONNECTIONS open connections, a
// further one waits (is not served) while the open ones keep working, and
// is served as soon as one of them closes.
func TestConnectionsCapped(t *testing.T) {
	c := apptest.Start(t, storetest.Engines(t)[0], apptest.Options{Configure: func(cfg *config.Config) {
		cfg.MaxConnections = 3
	}})
	addr := strings.TrimPrefix(c.URL, "http://")
	type client struct {
		conn net.Conn
		r    *bufio.Reader
	}
	get := func(cl client, wait time.Duration) error {
		cl.conn.SetDeadline(time.Now().Add(wait))
		if _, err := fmt.Fprint(cl.conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(cl.r, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	dial := func() client {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return client{conn, bufio.NewReader(conn)}
	}
	var open []client
	for i := 0; i < 3; i++ {
		cl := dial()
		if err := get(cl, 5*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, cl)
	}
	extra := dial() // the kernel accepts it; Carrier does not yet
	extraDone := make(chan error, 1)
	go func() { extraDone <- get(extra, 10*time.Second) }()
	select {
	case err := <-extraDone:
		t.Fatalf("a fourth connection was served (%v) while three were open", err)
	case <-time.After(700 * time.Millisecond):
	}
	if err := get(open[0], 5*time.Second); err != nil {
		t.Fatalf("an open connection stopped working at the cap: %v", err)
	}
	open[1].conn.Close()
	select {
	case err := <-extraDone:
		if err != nil {
			t.Fatalf("the waiting connection: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not served after another one closed")
	}
}
