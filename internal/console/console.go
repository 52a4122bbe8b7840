// Package console is Carrier's operator console: server-rendered pages
// (html/template) over the same domain services as the REST API, with a
// little JavaScript (static/console.js) that filters without reloads, tails
// live over server-sent events and runs actions inline. Every page and
// action works without JavaScript: filters are GET forms, actions POST
// forms that redirect back.
//
// Security: sign-in with an API key, which becomes a signed HttpOnly,
// SameSite=Strict session cookie (the key itself is never stored); every
// unsafe request must pass the Fetch Metadata check and carry the session's
// CSRF token; every page has a Content-Security-Policy with a per-response
// nonce and no inline handlers; a session sees only its key's project (an
// admin key may switch). Secrets are never rendered.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"carrier/internal/alert"
	"carrier/internal/auth"
	"carrier/internal/captcha"
	"carrier/internal/dest"
	"carrier/internal/ingest"
	"carrier/internal/queue"
	"carrier/internal/store"
	"carrier/internal/subscription"
	"carrier/internal/task"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Deps is what the console works with.
type Deps struct {
	Store         store.Store
	Auth          *auth.Service
	Subscriptions *subscription.Service
	Destinations  *dest.Registry
	// Publisher publishes the event catalogue's tests, as POST /v1/events
	// does, within PublishLimit (nil: no limit).
	Publisher    *ingest.Publisher
	PublishLimit *ingest.RateLimiter
	// Queues runs the pull queues; nil when they are off.
	Queues *queue.Service
	// Tasks runs async tasks; nil when no provider is configured.
	Tasks *task.Service
	// Spool redrives dead letters as /v1/dead-letters does (nil: through
	// Tasks alone).
	Spool  Redriver
	Alerts *alert.Service
	// Captcha runs the CAPTCHA verification sites; nil when off.
	Captcha *captcha.Service
	// Prefix is the path the console is mounted at, such as "/console".
	Prefix string
	Log    *slog.Logger
}

// Redriver processes a dead letter again (outage.Spooler).
type Redriver interface {
	Redrive(ctx context.Context, projectID, id string) (store.DeadLetter, error)
}

// Console serves the console's pages.
type Console struct {
	d      Deps
	keys   Keys
	prefix string
	secret []byte
	pages  map[string]*template.Template
	mux    *http.ServeMux
	bulk   *bulkRunner
}

// New builds the console; it creates the session secret in the store the
// first time.
func New(ctx context.Context, d Deps) (*Console, error) {
	secret, err := loadSecret(ctx, d.Store, time.Now())
	if err != nil {
		return nil, err
	}
	c := &Console{d: d, keys: d.Store, prefix: strings.TrimRight(d.Prefix, "/"), secret: secret, mux: http.NewServeMux(),
		bulk: &bulkRunner{jobs: map[string]*bulkJob{}}}
	if err := c.parse(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Prefix is the path the console is mounted at.
func (c *Console) Prefix() string { return c.prefix }

func (c *Console) parse() error {
	c.pages = map[string]*template.Template{}
	funcs := template.FuncMap{
		"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
		"timep":    func(t *time.Time) string { return formatTimePtr(t) },
		"ago":      ago,
		"path":     func(p string) string { return c.prefix + p },
		"percent":  func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
		"list":     func(v ...string) []string { return v },
		"count":    count,
		"matchers": matcherText,
		"statusClass": func(code int) string {
			if code == 0 {
				return "none"
			}
			return fmt.Sprintf("s%dxx", code/100)
		},
	}
	pages, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", p)
		if err != nil {
			return fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

func formatTimePtr(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	d := time.Since(*t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String() + " ago"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h ago", d.Hours())
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// page is what every page template sees.
type page struct {
	Title   string
	Nav     string
	Nonce   string
	CSRF    string
	Project string
	Key     store.APIKey
	Prefix  string
	Flash   string
	Error   string
	Data    any
}

// ctxKey carries the request's nonce and session.
type ctxKey struct{}

type reqState struct {
	nonce   string
	session session
	key     store.APIKey
}

func state(r *http.Request) *reqState {
	s, _ := r.Context().Value(ctxKey{}).(*reqState)
	if s == nil {
		return &reqState{}
	}
	return s
}

// ServeHTTP answers a console request: security headers on every answer,
// the session required everywhere but the sign-in page and static files,
// and the CSRF checks on every unsafe method.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nonceRaw := make([]byte, 16)
	rand.Read(nonceRaw)
	st := &reqState{nonce: base64.RawStdEncoding.EncodeToString(nonceRaw)}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+st.nonce+"'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	rel := strings.TrimPrefix(r.URL.Path, c.prefix)
	public := rel == "/login" || strings.HasPrefix(rel, "/static/")
	if !public {
		s, k, ok := c.signedIn(r)
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, c.prefix+"/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		st.session, st.key = s, k
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		if !public {
			token := r.Header.Get("X-CSRF-Token")
			if token == "" {
				token = r.PostFormValue("csrf")
			}
			if token != c.csrfToken(st.session) {
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
				return
			}
		}
	}
	c.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
}

func (c *Console) routes() {
	p := c.prefix
	static, _ := fs.Sub(staticFiles, "static")
	c.mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", staticHandler(static)))
	c.mux.HandleFunc("GET "+p+"/login", c.loginPage)
	c.mux.HandleFunc("POST "+p+"/login", c.login)
	c.mux.HandleFunc("POST "+p+"/logout", c.logout)
	c.mux.HandleFunc("POST "+p+"/project", c.switchProject)
	c.mux.HandleFunc("GET "+p+"/{$}", c.overview)
	c.mux.HandleFunc("GET "+p+"/deliveries", c.deliveries)
	c.mux.HandleFunc("GET "+p+"/deliveries/tail", c.deliveriesTail)
	c.mux.HandleFunc("GET "+p+"/deliveries/{id}", c.delivery)
	c.mux.HandleFunc("GET "+p+"/deliveries/{id}/stream", c.deliveryStream)
	c.mux.HandleFunc("POST "+p+"/deliveries/{id}/replay", c.replay)
	c.mux.HandleFunc("GET "+p+"/subscriptions", c.subscriptionsPage)
	c.mux.HandleFunc("GET "+p+"/subscriptions/{id}", c.subscriptionPage)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/active", c.setActive)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/test", c.sendTest)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/rotate-secret", c.rotateSecret)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/recover", c.recoverFailed)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/filter", c.saveFilter)
	c.mux.HandleFunc("POST "+p+"/subscriptions/{id}/filter/test", c.testFilter)
	c.mux.HandleFunc("GET "+p+"/bulk", c.bulkPage)
	c.mux.HandleFunc("POST "+p+"/bulk", c.bulkStart)
	c.mux.HandleFunc("GET "+p+"/bulk/{id}", c.bulkJobPage)
	c.mux.HandleFunc("POST "+p+"/bulk/{id}/cancel", c.bulkCancel)
	c.mux.HandleFunc("GET "+p+"/events", c.eventsPage)
	c.mux.HandleFunc("POST "+p+"/events/test", c.eventTest)
	c.mux.HandleFunc("GET "+p+"/queues", c.queuesPage)
	c.mux.HandleFunc("POST "+p+"/queues/{id}/redrive", c.queueRedrive)
	c.mux.HandleFunc("GET "+p+"/tasks", c.tasksPage)
	c.mux.HandleFunc("POST "+p+"/dead-letters/{id}/redrive", c.deadLetterRedrive)
	c.mux.HandleFunc("GET "+p+"/alerts", c.alertsPage)
	c.mux.HandleFunc("POST "+p+"/silences", c.silenceCreate)
	c.mux.HandleFunc("POST "+p+"/silences/{id}/expire", c.silenceExpire)
	c.mux.HandleFunc("GET "+p+"/captcha", c.captchaPage)
	c.mux.HandleFunc("GET "+p+"/api", c.apiPage)
}

// staticHandler serves the embedded files with a long cache: their names
// do not change between releases often, and the pages add no query.
func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// render writes page name with data.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name, title string, data any, status int) {
	st := state(r)
	pg := page{Title: title, Nav: name, Nonce: st.nonce, Project: st.session.ProjectID, Key: st.key, Prefix: c.prefix, Data: data,
		Flash: r.URL.Query().Get("flash"), Error: r.URL.Query().Get("error")}
	if st.session.ID != "" {
		pg.CSRF = c.csrfToken(st.session)
	}
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	tmpl := "layout.html"
	if r.URL.Query().Get("partial") == "1" && t.Lookup("results") != nil {
		tmpl = "results" // the part a filter replaces, for console.js
	}
	if err := t.ExecuteTemplate(&b, tmpl, pg); err != nil {
		c.d.Log.Error("console render", "page", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// back redirects to the page a form came from (a path of the console only),
// with a flash message or an error.
func (c *Console) back(w http.ResponseWriter, r *http.Request, fallback, flash, errMsg string) {
	to := r.PostFormValue("back")
	if !strings.HasPrefix(to, c.prefix+"/") || strings.HasPrefix(to, "//") || strings.Contains(to, "\\") {
		to = c.prefix + fallback
	}
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	switch {
	case errMsg != "":
		to += sep + "error=" + urlQueryEscape(errMsg)
	case flash != "":
		to += sep + "flash=" + urlQueryEscape(flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
