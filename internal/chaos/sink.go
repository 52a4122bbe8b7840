package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sink modes, switched by faults.
const (
	SinkOK   int32 = iota
	SinkSlow       // answers after 200–700 ms
	SinkFail       // answers 503 to half the requests
	SinkHang       // answers nothing until the sender gives up
)

// Receipt is one request the sink received.
type Receipt struct {
	WebhookID, EventID, Sub, Node string
	Start, End                    int64 // unix microseconds
	Status                        int   // what the sink answered; 0 when it hung
}

// Sink is the loopback webhook receiver: it records every request, with the
// node that sent it (found from the connection's owner in /proc).
type Sink struct {
	srv  *http.Server
	ln   net.Listener
	mode atomic.Int32
	// owner names the process holding a socket inode ("" when unknown).
	owner func(inode string) string

	mu       sync.Mutex
	receipts []Receipt
}

type connKey struct{}

// StartSink listens on a loopback port.
func StartSink(owner func(inode string) string) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, owner: owner}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, s.sender(c))
		}}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the address of subscription sub's endpoint.
func (s *Sink) URL(sub string) string { return "http://" + s.ln.Addr().String() + "/hook/" + sub }

// SetMode switches how the sink answers.
func (s *Sink) SetMode(m int32) { s.mode.Store(m) }

// Close stops the sink.
func (s *Sink) Close() { s.srv.Close() }

// Receipts returns a copy of what was received so far.
func (s *Sink) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Receipt(nil), s.receipts...)
}

// Count is how many requests arrived.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.receipts)
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev struct {
		ID string `json:"id"`
	}
	json.Unmarshal(body, &ev)
	rc := Receipt{WebhookID: r.Header.Get("webhook-id"), EventID: ev.ID, Sub: strings.TrimPrefix(r.URL.Path, "/hook/"),
		Start: start.UnixMicro(), Status: http.StatusOK}
	rc.Node, _ = r.Context().Value(connKey{}).(string)
	switch s.mode.Load() {
	case SinkSlow:
		time.Sleep(time.Duration(200+rand.IntN(500)) * time.Millisecond)
	case SinkFail:
		if rand.IntN(2) == 0 {
			rc.Status = http.StatusServiceUnavailable
		}
	case SinkHang:
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		rc.Status = 0
	}
	if rc.Status != 0 {
		w.WriteHeader(rc.Status)
	}
	rc.End = time.Now().UnixMicro()
	s.mu.Lock()
	s.receipts = append(s.receipts, rc)
	s.mu.Unlock()
}

// sender names the process at the other end of a loopback connection: the
// socket inode of the client's port, from /proc/net/tcp, looked up among the
// nodes' open files.
func (s *Sink) sender(c net.Conn) string {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	local := c.LocalAddr().(*net.TCPAddr)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return ""
	}
	want := fmt.Sprintf(":%04X", remote.Port)
	peer := fmt.Sprintf(":%04X", local.Port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || !strings.HasSuffix(f[1], want) || !strings.HasSuffix(f[2], peer) {
			continue
		}
		return s.owner(f[9])
	}
	return ""
}

// socketOwner reports whether process pid holds socket inode.
func socketOwner(pid int, inode string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, e := range entries {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}
