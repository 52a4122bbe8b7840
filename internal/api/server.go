// Package api serves Carrier's REST API under /v1, with health, readiness and
// metrics endpoints. Every response uses one envelope: {"success": true,
// "data": …} or {"success": false, "error": {"code", "message", "field"}}.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"carrier/internal/alert"
	"carrier/internal/auth"
	"carrier/internal/captcha"
	"carrier/internal/dest"
	"carrier/internal/ingest"
	"carrier/internal/metrics"
	"carrier/internal/queue"
	"carrier/internal/quota"
	"carrier/internal/sns"
	"carrier/internal/sqs"
	"carrier/internal/store"
	"carrier/internal/subscription"
	"carrier/internal/task"
	"carrier/internal/topic"
)

// Deps are what the API needs from the rest of Carrier.
type Deps struct {
	Store     store.Store
	Publisher *ingest.Publisher
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Subscriptions runs /v1/webhooks and /v1/subscriptions.
	Subscriptions *subscription.Service
	// Keys authenticates requests and runs projects and their keys.
	Keys *auth.Service
	// Ready reports whether the process should receive traffic.
	Ready func(ctx context.Context) error
	// Tasks runs async tasks; nil when no provider is configured.
	Tasks *task.Service
	// Spool keeps callbacks and publishes on local disk while the store is down.
	Spool Spooler
	// Queues runs the pull queues; nil turns /v1/queues off.
	Queues *queue.Service
	// ListBytesPerSecond is how much list payload one project may read a
	// second (0: no limit).
	ListBytesPerSecond int
	// PublishLimit is each project's allowance of publishes on this node
	// (nil: no limit).
	PublishLimit *ingest.RateLimiter
	// SQS answers the SQS protocols (POST / with X-Amz-Target: AmazonSQS.*, and
	// the query protocol as sqs.IsQueryRequest recognises it); nil turns it off.
	SQS http.Handler
	// Fronts are other protocols' routes served on the API's mux (the
	// 2captcha front's /in.php and /res.php), pattern to handler, so their
	// paths get the API's own 404 and 405 answers for other methods.
	Fronts map[string]http.Handler
	// Alerts runs /v1/alert-rules and /v1/alerts; nil turns them off.
	Alerts *alert.Service
	// Captcha runs /v1/captcha; nil turns it off.
	Captcha *captcha.Service
	// Destinations are the destination kinds a subscription may have: the
	// registry the delivery engine sends with, so what the API shows is what
	// gets sent.
	Destinations *dest.Registry
	// SNS answers the SNS query protocol (requests sns.IsRequest recognises);
	// nil turns it off.
	SNS http.Handler
	// SNSPublic answers the unsigned SNS requests (sns.IsPublicRequest).
	SNSPublic http.Handler
	// Topics runs /v1/topics; nil turns it off.
	Topics *topic.Service
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
	// Redrive processes a dead letter again: a spooled publish's itself, any
	// other through the tasks service (see outage.Spooler.Redrive).
	Redrive(ctx context.Context, projectID, id string) (store.DeadLetter, error)
}

// Server is the HTTP API.
type Server struct {
	Deps
	log   *slog.Logger
	mux   *http.ServeMux
	reads *quota.Buckets // each project's list payload allowance (listBuckets)
	// patterns are the routes the API registered (not Fronts), in order:
	// what the OpenAPI drift test compares the document with.
	patterns []string
}

// New builds the API server.
func New(d Deps) *Server {
	s := &Server{Deps: d, log: d.Log, mux: http.NewServeMux(), reads: listBuckets(d.ListBytesPerSecond)}
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
	// SQS query protocol: form-encoded Action=… to / or a queue URL, signed for sqs or naming Version=2012-11-05.
	if s.SQS != nil && sqs.IsQueryRequest(r) {
		s.SQS.ServeHTTP(w, r)
		return
	}
	// SNS query protocol: form-encoded POST / signed for sns or naming Version=2010-03-31.
	if s.SNS != nil && sns.IsRequest(r) {
		s.SNS.ServeHTTP(w, r)
		return
	}
	// What SNS serves unsigned to the endpoints it delivers to: SubscribeURL, UnsubscribeURL, the signing certificate.
	if s.SNSPublic != nil && sns.IsPublicRequest(r) {
		s.SNSPublic.ServeHTTP(w, r)
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
	s.public("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.public("GET /readyz", s.readyz)
	if s.Metrics != nil {
		s.public("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP)
	}
	s.public("GET /v1/openapi.json", serveOpenAPI)

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

	s.handle("POST /v1/topics", s.createTopic)
	s.handle("GET /v1/topics", s.listTopics)
	s.handle("GET /v1/topics/{name}", s.getTopic)
	s.handle("DELETE /v1/topics/{name}", s.deleteTopic)
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
	s.public("GET /callbacks/{token}", s.callback)
	s.public("POST /callbacks/{token}", s.callback)
	for pattern, h := range s.Fronts {
		s.mux.Handle(pattern, h)
	}
	s.handle("POST /v1/alert-rules", s.createAlertRule)
	s.handle("GET /v1/alert-rules", s.listAlertRules)
	s.handle("GET /v1/alert-rules/{id}", s.getAlertRule)
	s.handle("PUT /v1/alert-rules/{id}", s.updateAlertRule)
	s.handle("DELETE /v1/alert-rules/{id}", s.deleteAlertRule)
	s.handle("POST /v1/alert-rules/{id}/test", s.testAlertRule)
	s.handle("GET /v1/alerts", s.listAlerts)
	s.handle("GET /v1/alerts/{id}", s.getAlert)
	s.handle("POST /v1/silences", s.createSilence)
	s.handle("GET /v1/silences", s.listSilences)
	s.handle("GET /v1/silences/{id}", s.getSilence)
	s.handle("DELETE /v1/silences/{id}", s.expireSilence)

	s.handle("POST /v1/captcha/sites", s.createCaptchaSite)
	s.handle("GET /v1/captcha/sites", s.listCaptchaSites)
	s.handle("GET /v1/captcha/sites/{id}", s.getCaptchaSite)
	s.handle("PUT /v1/captcha/sites/{id}", s.updateCaptchaSite)
	s.handle("DELETE /v1/captcha/sites/{id}", s.deleteCaptchaSite)
	s.handle("POST /v1/captcha/verify", s.verifyCaptcha)

	s.handle("GET /v1/dead-letters", s.listDeadLetters)
	s.handle("GET /v1/dead-letters/{id}", s.getDeadLetter)
	s.handle("POST /v1/dead-letters/{id}/redrive", s.redriveDeadLetter)
	s.handle("POST /v1/dead-letters/redrive", s.redriveDeadLetters)
}

// public registers a handler that needs no API key.
func (s *Server) public(pattern string, h http.HandlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.mux.HandleFunc(pattern, h)
}

// handle registers an authenticated handler.
func (s *Server) handle(pattern string, h handler) {
	s.patterns = append(s.patterns, pattern)
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

// authenticate reads the key from the Authorization header and checks it
// with the key service.
func (s *Server) authenticate(r *http.Request) (store.APIKey, error) {
	h := r.Header.Get("Authorization")
	key, found := strings.CutPrefix(h, "Bearer ")
	if !found || strings.TrimSpace(key) == "" {
		return store.APIKey{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	return s.Keys.Authenticate(r.Context(), key)
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

// projectRequest is the body of POST /v1/projects.
type projectRequest struct {
	Name string `json:"name"`
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, _ store.APIKey) error {
	var req projectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	p, k, secret, err := s.Keys.CreateProject(r.Context(), req.Name)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, map[string]any{
		"project": projectJSON{ID: p.ID, Name: p.Name, CreatedAt: formatTime(p.CreatedAt)},
		"api_key": keyView(k, secret),
	}, "message", "Project created. Save the API key - it won't be shown again.")
	return nil
}

func keyView(k store.APIKey, secret string) keyJSON {
	return keyJSON{ID: k.ID, ProjectID: k.ProjectID, Name: k.Name, Prefix: k.Prefix, Key: secret, Admin: k.Admin, CreatedAt: formatTime(k.CreatedAt)}
}

// keyRequest is the body of POST /v1/projects/{id}/keys.
type keyRequest struct {
	Name string `json:"name"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, caller store.APIKey) error {
	projectID := r.PathValue("id")
	if !auth.CanManage(caller, projectID) {
		// Before reading the body: a caller learns nothing of other projects.
		return notFound("project")
	}
	var req keyRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	k, secret, err := s.Keys.CreateKey(r.Context(), caller, projectID, req.Name)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, keyView(k, secret), "message", "API key created. Save it - it won't be shown again.")
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, caller store.APIKey) error {
	if err := s.Keys.Revoke(r.Context(), caller, r.PathValue("id"), r.PathValue("keyId")); err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{"id": r.PathValue("keyId"), "revoked": true})
	return nil
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
