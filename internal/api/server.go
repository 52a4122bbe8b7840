// Package api serves Carrier's REST API under /v1, with health, readiness and
// metrics endpoints. Every response uses one envelope: {"success": true,
// "data": …} or {"success": false, "error": {"code", "message", "field"}}.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"carrier/internal/dest"
	"carrier/internal/dest/pingback"
	"carrier/internal/ingest"
	"carrier/internal/match"
	"carrier/internal/metrics"
	"carrier/internal/netguard"
	"carrier/internal/queue"
	"carrier/internal/store"
	"carrier/internal/task"
)

// Deps are what the API needs from the rest of Carrier.
type Deps struct {
	Store     store.Store
	Publisher *ingest.Publisher
	Matcher   *match.Matcher
	Guard     *netguard.Guard
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Wake tells the delivery engine that deliveries may have become due.
	Wake func()
	// RotationOverlap is how long a rotated-out secret keeps signing.
	RotationOverlap time.Duration
	// Ready reports whether the process should receive traffic.
	Ready func(ctx context.Context) error
	// Tasks runs async tasks; nil when no provider is configured.
	Tasks *task.Service
	// Spool keeps callbacks and publishes on local disk while the store is down.
	Spool Spooler
	// Queues runs the pull queues; nil turns /v1/queues off.
	Queues *queue.Service
	// MaxSubscriptions is the most subscriptions one project may have (0: no limit).
	MaxSubscriptions int
	// ListBytesPerSecond is how much list payload one project may read a
	// second (0: no limit).
	ListBytesPerSecond int
	// Pingbacks keeps the pingback subscriptions of the 2captcha front; nil
	// refuses pingback URLs.
	Pingbacks *pingback.Registry
	// SQS answers the SQS protocol (POST / with X-Amz-Target: AmazonSQS.*); nil turns it off.
	SQS http.Handler
	// Fronts are other protocols' routes served on the API's mux (the
	// 2captcha front's /in.php and /res.php), pattern to handler, so their
	// paths get the API's own 404 and 405 answers for other methods.
	Fronts map[string]http.Handler
	// Destinations are the destination kinds a subscription may have: the
	// registry the delivery engine sends with, so what the API accepts is
	// what gets sent.
	Destinations *dest.Registry
}

// Spooler keeps writes durably on local disk while the store cannot take them,
// for a background replayer to move into the store later.
type Spooler interface {
	// Callback spools a pingback for token.
	Callback(token string, raw task.RawCallback) error
	// Publish spools an event; in.EventID is set, so the id answered now is the one stored later.
	Publish(in ingest.Input) error
	// Pending is the number of spooled writes not yet replayed.
	Pending() int
}

// Server is the HTTP API.
type Server struct {
	Deps
	log     *slog.Logger
	mux     *http.ServeMux
	keys    sync.Map // key hash -> cachedKey
	keysTTL time.Duration
	// keysOutage is how long after the store last confirmed a key it keeps
	// working while the store cannot be reached (KeyOutageGrace).
	keysOutage time.Duration
	// keysGen changes whenever a key is revoked, so a lookup that raced
	// with the revocation does not cache the key again.
	keysGen atomic.Uint64
	clock   func() time.Time
	reads   readBudget // each project's list payload allowance
}

type cachedKey struct {
	key       store.APIKey
	confirmed time.Time // when the store last found the key
	expires   time.Time // until when it is used without asking the store
}

// KeyTTL is how long a key the store found is used without asking again;
// a key revoked on another node keeps working there for at most this long.
const KeyTTL = 5 * time.Second

// KeyOutageGrace bounds how long a key keeps working while the store cannot
// be reached, counted from when the store last confirmed it, so publishes
// are spooled through a short outage but a key revoked just before a long
// one does not work for its whole length.
const KeyOutageGrace = 5 * time.Minute

// New builds the API server.
func New(d Deps) *Server {
	if d.Wake == nil {
		d.Wake = func() {}
	}
	s := &Server{Deps: d, log: d.Log, mux: http.NewServeMux(), keysTTL: KeyTTL, keysOutage: KeyOutageGrace, clock: time.Now}
	s.routes()
	return s
}

// ServeHTTP answers a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in handler", "path", r.URL.Path, "panic", v)
			s.fail(w, r, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"})
		}
	}()
	if s.SQS != nil && r.Method == http.MethodPost && r.URL.Path == "/" && strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
		s.SQS.ServeHTTP(w, r)
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// No route: let the mux decide between 404 and 405, then answer in the error shape.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.fail(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + probe.header.Get("Allow")})
			return
		}
		s.fail(w, r, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusProbe records what the mux's own not-found or method-not-allowed handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

type handler func(w http.ResponseWriter, r *http.Request, k store.APIKey) error

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	}

	s.handle("POST /v1/projects", s.adminOnly(s.createProject))
	s.handle("POST /v1/projects/{id}/keys", s.createKey)
	s.handle("DELETE /v1/projects/{id}/keys/{keyId}", s.revokeKey)

	s.handle("POST /v1/events", s.publishEvent)
	s.handle("GET /v1/events", s.listEvents)
	s.handle("GET /v1/events/{id}", s.getEvent)

	s.handle("POST /v1/webhooks", s.createWebhook)
	s.handle("GET /v1/webhooks", s.listWebhooks)
	s.handle("GET /v1/webhooks/{id}", s.getWebhook)
	s.handle("PUT /v1/webhooks/{id}", s.updateWebhook)
	s.handle("DELETE /v1/webhooks/{id}", s.deleteWebhook)
	s.handle("GET /v1/webhooks/{id}/deliveries", s.listWebhookDeliveries)
	s.handle("GET /v1/webhooks/{id}/deliveries/{deliveryId}", s.getWebhookDelivery)
	s.handle("POST /v1/webhooks/{id}/deliveries/{deliveryId}/replay", s.replayDelivery)
	s.handle("POST /v1/webhooks/{id}/test", s.testWebhook)
	s.handle("PUT /v1/webhooks/{id}/activate", s.activateWebhook)
	s.handle("PUT /v1/webhooks/{id}/deactivate", s.deactivateWebhook)
	s.handle("POST /v1/webhooks/{id}/rotate-secret", s.rotateSecret)
	s.handle("POST /v1/webhooks/{id}/recover", s.recoverWebhook)
	s.handle("GET /v1/webhook-events", s.listWebhookEvents)

	s.handle("POST /v1/subscriptions", s.createSubscription)
	s.handle("GET /v1/subscriptions", s.listSubscriptions)
	s.handle("GET /v1/subscriptions/{id}", s.getSubscription)
	s.handle("PUT /v1/subscriptions/{id}", s.updateSubscription)
	s.handle("DELETE /v1/subscriptions/{id}", s.deleteWebhook)
	s.handle("PUT /v1/subscriptions/{id}/activate", s.activateWebhook)
	s.handle("PUT /v1/subscriptions/{id}/deactivate", s.deactivateWebhook)
	s.handle("GET /v1/subscriptions/{id}/deliveries", s.listWebhookDeliveries)
	s.handle("GET /v1/subscriptions/{id}/deliveries/{deliveryId}", s.getWebhookDelivery)
	s.handle("POST /v1/subscriptions/{id}/deliveries/{deliveryId}/replay", s.replayDelivery)
	s.handle("POST /v1/subscriptions/{id}/test", s.testWebhook)
	s.handle("POST /v1/subscriptions/{id}/recover", s.recoverWebhook)

	s.handle("POST /v1/tasks", s.createTask)
	s.handle("GET /v1/tasks", s.listTasks)
	s.handle("GET /v1/tasks/{id}", s.getTask)

	s.handle("POST /v1/queues", s.createQueue)
	s.handle("GET /v1/queues", s.listQueues)
	s.handle("GET /v1/queues/{id}", s.getQueue)
	s.handle("DELETE /v1/queues/{id}", s.deleteQueue)
	s.handle("POST /v1/queues/{id}/messages", s.sendMessages)
	s.handle("DELETE /v1/queues/{id}/messages/{receiptHandle}", s.deleteMessage)
	s.handle("POST /v1/queues/{id}/receive", s.receiveMessages)
	s.handle("POST /v1/queues/{id}/visibility", s.changeVisibility)
	s.handle("POST /v1/queues/{id}/purge", s.purgeQueue)
	s.handle("POST /v1/queues/{id}/redrive", s.redriveQueue)
	s.handle("POST /v1/sqs-credentials", s.createSQSCredential)
	s.handle("GET /v1/sqs-credentials", s.listSQSCredentials)
	s.handle("DELETE /v1/sqs-credentials/{id}", s.revokeSQSCredential)
	s.mux.HandleFunc("GET /callbacks/{token}", s.callback)
	s.mux.HandleFunc("POST /callbacks/{token}", s.callback)
	for pattern, h := range s.Fronts {
		s.mux.Handle(pattern, h)
	}
	s.handle("GET /v1/dead-letters", s.listDeadLetters)
	s.handle("GET /v1/dead-letters/{id}", s.getDeadLetter)
	s.handle("POST /v1/dead-letters/{id}/redrive", s.redriveDeadLetter)
	s.handle("POST /v1/dead-letters/redrive", s.redriveDeadLetters)
}

// handle registers an authenticated handler.
func (s *Server) handle(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		k, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := h(w, r, k); err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) adminOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
		if !k.Admin {
			return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "this action needs an admin API key"}
		}
		return h(w, r, k)
	}
}

// HashKey returns the stored form of an API key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey returns a fresh random API key.
func NewKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "ck_" + hex.EncodeToString(b)
}

func (s *Server) authenticate(r *http.Request) (store.APIKey, error) {
	h := r.Header.Get("Authorization")
	key, found := strings.CutPrefix(h, "Bearer ")
	if !found || strings.TrimSpace(key) == "" {
		return store.APIKey{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	return s.authenticateKey(r.Context(), key)
}

// AuthenticateKey checks a key that came other than in an Authorization
// header (the 2captcha front's key parameter), with the same cache and
// outage grace. ok is false, with a nil error, when there is no such key or
// it was revoked; an error means the store could not be asked.
func (s *Server) AuthenticateKey(ctx context.Context, key string) (store.APIKey, bool, error) {
	if strings.TrimSpace(key) == "" {
		return store.APIKey{}, false, nil
	}
	k, err := s.authenticateKey(ctx, key)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
		return store.APIKey{}, false, nil
	}
	if err != nil {
		return k, false, err
	}
	return k, true, nil
}

// authenticateKey looks a key up: in the cache while it is fresh, else in the
// store, falling back on a recently confirmed cached key while the store
// cannot be reached.
func (s *Server) authenticateKey(ctx context.Context, key string) (store.APIKey, error) {
	hash := HashKey(strings.TrimSpace(key))
	c, cached := s.keys.Load(hash)
	t := s.clock()
	if cached && t.Before(c.(cachedKey).expires) {
		return c.(cachedKey).key, nil
	}
	gen := s.keysGen.Load()
	k, err := s.Store.APIKeyByHash(ctx, hash)
	if err != nil {
		if isNotFound(err) {
			s.keys.Delete(hash)
			return store.APIKey{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "invalid or revoked API key"}
		}
		if cached && t.Sub(c.(cachedKey).confirmed) <= s.keysOutage {
			// The store is unreachable: a key it confirmed recently keeps
			// working, so publishes can still be spooled during an outage.
			return c.(cachedKey).key, nil
		}
		return store.APIKey{}, err
	}
	if s.keysGen.Load() == gen {
		s.keys.Store(hash, cachedKey{key: k, confirmed: t, expires: t.Add(s.keysTTL)})
	}
	return k, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := s.Ready
	if check == nil {
		check = s.Store.Ping
	}
	pending := 0
	if s.Spool != nil {
		pending = s.Spool.Pending()
	}
	if err := check(ctx); err != nil {
		if s.Spool != nil {
			// Still taking callbacks and publishes: they are spooled to local disk.
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "degraded", "store": s.Store.Engine(),
				"error": err.Error(), "spooling": true, "spool_pending": pending})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": err.Error()})
		return
	}
	if pending > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "store": s.Store.Engine(), "spooling": false, "spool_pending": pending})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": s.Store.Engine()})
}

// --- projects and keys ---

type projectJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type keyJSON struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	Key       string `json:"key,omitempty"`
	Admin     bool   `json:"admin"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, _ store.APIKey) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if l := len(req.Name); l < 1 || l > 255 {
		return invalid("name", "must be 1-255 characters")
	}
	p := store.Project{ID: newID(), Name: req.Name, CreatedAt: now()}
	if err := s.Store.CreateProject(r.Context(), p); err != nil {
		return err
	}
	k, secret, err := IssueKey(r.Context(), s.Store, p.ID, "default", false)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, map[string]any{
		"project": projectJSON{ID: p.ID, Name: p.Name, CreatedAt: formatTime(p.CreatedAt)},
		"api_key": keyView(k, secret),
	}, "message", "Project created. Save the API key - it won't be shown again.")
	return nil
}

// IssueKey creates and stores a new key for a project and returns it with its
// plaintext, which is never stored.
func IssueKey(ctx context.Context, st store.Store, projectID, name string, admin bool) (store.APIKey, string, error) {
	secret := NewKey()
	k := store.APIKey{ID: newID(), ProjectID: projectID, Name: name, Prefix: secret[:10], Hash: HashKey(secret), Admin: admin, CreatedAt: now()}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return k, "", err
	}
	return k, secret, nil
}

func keyView(k store.APIKey, secret string) keyJSON {
	return keyJSON{ID: k.ID, ProjectID: k.ProjectID, Name: k.Name, Prefix: k.Prefix, Key: secret, Admin: k.Admin, CreatedAt: formatTime(k.CreatedAt)}
}

// canManage: admins manage every project's keys; a project key manages its own project's.
func canManage(k store.APIKey, projectID string) bool {
	return k.Admin || k.ProjectID == projectID
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, caller store.APIKey) error {
	projectID := r.PathValue("id")
	if !canManage(caller, projectID) {
		return notFound("project")
	}
	var req struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	if req.Name == "" {
		req.Name = "key"
	}
	if len(req.Name) > 255 {
		return invalid("name", "must be at most 255 characters")
	}
	if _, err := s.Store.GetProject(r.Context(), projectID); err != nil {
		if isNotFound(err) {
			return notFound("project")
		}
		return err
	}
	k, secret, err := IssueKey(r.Context(), s.Store, projectID, req.Name, false)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, keyView(k, secret), "message", "API key created. Save it - it won't be shown again.")
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, caller store.APIKey) error {
	projectID := r.PathValue("id")
	if !canManage(caller, projectID) {
		return notFound("project")
	}
	// A project key may manage its project's keys, but not the admin keys that
	// live in the default project: otherwise any key of that project could
	// lock every administrator out.
	target, err := s.Store.GetAPIKey(r.Context(), projectID, r.PathValue("keyId"))
	if err != nil {
		if isNotFound(err) {
			return notFound("API key")
		}
		return err
	}
	if target.Admin && !caller.Admin {
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "only an admin API key may revoke an admin API key"}
	}
	if err := s.Store.RevokeAPIKey(r.Context(), projectID, target.ID, now()); err != nil {
		if isNotFound(err) {
			return notFound("API key")
		}
		return err
	}
	// Forget cached lookups so the key stops working here at once (other
	// nodes forget it within KeyTTL: there is no cluster notifier yet).
	s.forgetKeys()
	ok(w, http.StatusOK, map[string]any{"id": r.PathValue("keyId"), "revoked": true})
	return nil
}

// forgetKeys drops every cached key lookup, and keeps lookups already under
// way from caching what they found.
func (s *Server) forgetKeys() {
	s.keysGen.Add(1)
	s.keys.Range(func(k, _ any) bool { s.keys.Delete(k); return true })
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// formatTime renders times as RFC 3339 UTC with milliseconds, as in the seed documents.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
