// Package apptest starts real Carrier processes (in-process, on loopback) and
// real webhook endpoints for end-to-end tests.
package apptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"carrier/internal/app"
	"carrier/internal/config"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// AdminKey is the bootstrap admin key every test Carrier starts with.
const AdminKey = "ck_test_admin_key_0123456789"

// Options adjust a test Carrier.
type Options struct {
	// AllowPrivate lets deliveries reach loopback (default true in tests,
	// since the endpoints are loopback servers); set BlockPrivate to test SSRF.
	BlockPrivate bool
	Resolver     netguard.Resolver
	RetryBase    time.Duration // default 50ms
	Dispatch     func(*dispatch.Config)
	Configure    func(*config.Config)
	Tasks        func(*task.Config)
	// EmailTLS is the email destination's base TLS configuration (app.Options.EmailTLS).
	EmailTLS *tls.Config
}

// Carrier is a running Carrier under test.
type Carrier struct {
	T      testing.TB
	App    *app.App
	URL    string // http://127.0.0.1:port
	Config config.Config
	cancel context.CancelFunc
	done   chan error
}

// Start runs Carrier on the engine's fresh storage until the test ends.
func Start(t testing.TB, e storetest.Engine, o Options) *Carrier {
	t.Helper()
	cfg, err := config.Load("test", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = e.DataDir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir() // the local spool lives here on PostgreSQL too
	}
	cfg.DatabaseURL = e.DatabaseURL
	cfg.APIKey = AdminKey
	cfg.AllowPrivateNetworks = !o.BlockPrivate
	cfg.RetryBase = o.RetryBase
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 50 * time.Millisecond
	}
	cfg.ShutdownGrace = 2 * time.Second
	// The built-in alert rules would publish alert events to the "*"
	// subscriptions of tests about other things; alert tests turn them on.
	cfg.AlertDefaults = false
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), cfg, log, app.Options{Resolver: o.Resolver, Tasks: o.Tasks, EmailTLS: o.EmailTLS, Dispatch: func(d *dispatch.Config) {
		d.PollInterval = 50 * time.Millisecond
		if o.Dispatch != nil {
			o.Dispatch(d)
		}
	}})
	if err != nil {
		t.Fatalf("start carrier: %v", err)
	}
	if err := a.Listen(); err != nil {
		t.Fatalf("start carrier: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Carrier{T: t, App: a, URL: "http://" + a.Addr(), Config: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- a.Run(ctx) }()
	t.Cleanup(c.Stop)
	return c
}

// Stop shuts Carrier down gracefully (idempotent).
func (c *Carrier) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		if err != nil {
			c.T.Errorf("carrier stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.T.Errorf("carrier did not stop within 30s")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Response is a decoded API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Data returns the "data" member as an object.
func (r Response) Data() map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

// List returns the "data" member as an array of objects.
func (r Response) List() []map[string]any {
	raw, _ := r.JSON["data"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// ErrorCode returns error.code, or "".
func (r Response) ErrorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// ErrorField returns error.field, or "".
func (r Response) ErrorField() string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

// Do sends a request with the given key; body is marshalled unless it is a []byte or string.
func (c *Carrier) Do(method, path, key string, body any, header ...string) Response {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.T.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := Response{Status: resp.StatusCode, Header: resp.Header}
	out.Body, _ = io.ReadAll(resp.Body)
	json.Unmarshal(out.Body, &out.JSON)
	return out
}

// Admin sends a request with the admin key.
func (c *Carrier) Admin(method, path string, body any, header ...string) Response {
	c.T.Helper()
	return c.Do(method, path, AdminKey, body, header...)
}

// NewProject creates a project and returns its id and API key.
func (c *Carrier) NewProject(name string) (id, key string) {
	c.T.Helper()
	r := c.Admin("POST", "/v1/projects", map[string]any{"name": name})
	if r.Status != http.StatusCreated {
		c.T.Fatalf("create project: %d %s", r.Status, r.Body)
	}
	p := r.Data()["project"].(map[string]any)
	k := r.Data()["api_key"].(map[string]any)
	return p["id"].(string), k["key"].(string)
}

// CreateWebhook creates a webhook with the given fields (name defaults to "test")
// and returns its id and secret.
func (c *Carrier) CreateWebhook(key string, fields map[string]any) (id, secret string) {
	c.T.Helper()
	if _, ok := fields["name"]; !ok {
		fields["name"] = "test"
	}
	r := c.Do("POST", "/v1/webhooks", key, fields)
	if r.Status != http.StatusCreated {
		c.T.Fatalf("create webhook: %d %s", r.Status, r.Body)
	}
	return r.Data()["webhook_id"].(string), r.Data()["secret"].(string)
}

// Publish publishes an event and returns its id.
func (c *Carrier) Publish(key string, event map[string]any) string {
	c.T.Helper()
	r := c.Do("POST", "/v1/events", key, event)
	if r.Status != http.StatusAccepted {
		c.T.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	return r.Data()["event_id"].(string)
}

// Eventually polls cond every 20ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// Request is one request an Endpoint received.
type Request struct {
	Method string
	Path   string
	Query  string // the raw query
	Header http.Header
	Body   []byte
	At     time.Time
}

// Endpoint is a loopback webhook receiver whose answers a test scripts.
type Endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	// Respond decides the answer to the n-th request (0-based); nil answers 200.
	respond func(n int, r Request, w http.ResponseWriter)
	notify  chan struct{}
}

// NewEndpoint starts an endpoint; respond may be nil (always 200).
func NewEndpoint(t testing.TB, respond func(n int, r Request, w http.ResponseWriter)) *Endpoint {
	e := &Endpoint{respond: respond, notify: make(chan struct{}, 1)}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, At: time.Now()}
		e.mu.Lock()
		n := len(e.requests)
		e.requests = append(e.requests, req)
		respond := e.respond
		e.mu.Unlock()
		select {
		case e.notify <- struct{}{}:
		default:
		}
		if respond == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		respond(n, req, w)
	}))
	t.Cleanup(e.Close)
	return e
}

// SetRespond replaces the answering function.
func (e *Endpoint) SetRespond(f func(n int, r Request, w http.ResponseWriter)) {
	e.mu.Lock()
	e.respond = f
	e.mu.Unlock()
}

// Requests returns a copy of the requests received so far.
func (e *Endpoint) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.requests...)
}

// WaitRequests waits until at least n requests arrived and returns them.
func (e *Endpoint) WaitRequests(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	var got []Request
	Eventually(t, timeout, "endpoint requests", func() bool {
		got = e.Requests()
		return len(got) >= n
	})
	return got
}
