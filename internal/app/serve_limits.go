package app

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// What the API server lets one client hold. A request's headers must arrive
// within serverHeaderTimeout and its body within CARRIER_BODY_READ_TIMEOUT
// after them (withBodyDeadline); answers may take as long as they need (a
// long poll waits up to 20 s after its body is read); an idle keep-alive
// connection is closed after serverIdleTimeout; and at most
// CARRIER_MAX_CONNECTIONS connections are open at once (limitListener).
const (
	serverHeaderTimeout = 10 * time.Second
	serverIdleTimeout   = 60 * time.Second
	// serverMaxHeaderBytes bounds a request's headers (Go's default is 1 MiB).
	serverMaxHeaderBytes = 64 << 10
)

// withBodyDeadline gives each request's body timeout to arrive, counted from
// when the handler starts (just after the headers), so that a client
// trickling a body cannot hold a connection. Once the body has been read to
// its end the deadline is lifted, so an answer that takes long on purpose (a
// long poll) is not cut off: net/http keeps reading the connection in the
// background while a handler runs and cancels the request when that read
// fails.
func withBodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { rc.SetReadDeadline(time.Time{}) }}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read to its end.
type deadlineBody struct {
	io.ReadCloser
	once sync.Once
	lift func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.once.Do(b.lift)
	}
	return n, err
}

// limitListener accepts at most n connections at a time: Accept waits
// (leaving newer ones in the kernel's backlog) until an open one closes.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	close sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and ends a wait for a slot.
func (l *limitListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed (once).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
