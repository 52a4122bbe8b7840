// Package frontend serves the browser side of Carrier's CAPTCHA
// verification: dr.js, a small script that runs Tencent Cloud Captcha with
// the vendor's front-end disaster-recovery scheme (a ticket made in the
// browser when the vendor's script fails to load or start, which
// /v1/captcha/verify answers degraded_allow for a site that accepts them),
// and an example sign-in page that uses it.
//
// GET /captcha/dr.js is meant to be loaded by applications' pages;
// GET /captcha/example is a demonstration. The example takes its settings
// from the query and, being served from Carrier's origin, accepts only a
// back end on this server or on loopback and only Tencent's script or one
// on loopback: it cannot be turned into someone else's sign-in form or load
// someone else's code. Copy it into an application for real use.
package frontend

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TencentScript is the vendor's script dr.js loads by default.
const TencentScript = "https://turing.captcha.qcloud.com/TJCaptcha.js"

// Paths the routes are served at.
const (
	ScriptPath  = "/captcha/dr.js"
	ExamplePath = "/captcha/example"
)

//go:embed dr.js
var script []byte

//go:embed example.html
var examplePage string

var example = template.Must(template.New("example").Parse(examplePage))

// scriptETag changes with the script, so a cached copy is revalidated cheaply.
var scriptETag = func() string {
	h := sha256.Sum256(script)
	return `"` + hex.EncodeToString(h[:8]) + `"`
}()

// startup is the script's modification time as ServeContent sees it.
var startup = time.Now()

// Routes are the patterns this package answers, for the API's mux to mount
// (api.Deps.Fronts), so other methods get the API's own 405 answer.
func Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + ScriptPath:  http.HandlerFunc(serveScript),
		"GET " + ExamplePath: http.HandlerFunc(serveExample),
	}
}

// Handler serves the routes on their own mux.
func Handler() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range Routes() {
		mux.Handle(pattern, h)
	}
	return mux
}

func serveScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	// Short, so a fix reaches pages within minutes.
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", scriptETag)
	http.ServeContent(w, r, "dr.js", startup, bytes.NewReader(script))
}

// exampleConfig is what the example page's script is given.
type exampleConfig struct {
	AppID     string `json:"appId"`
	Backend   string `json:"backend"`
	ScriptURL string `json:"scriptUrl"`
	TimeoutMS int    `json:"timeoutMs"`
}

var appIDPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// exampleSettings reads the example's settings from the query; an error
// message names the parameter at fault.
func exampleSettings(q url.Values) (exampleConfig, string) {
	c := exampleConfig{AppID: q.Get("app_id"), Backend: q.Get("backend"), ScriptURL: q.Get("script")}
	if c.AppID != "" && !appIDPattern.MatchString(c.AppID) {
		return c, "app_id: must be the CaptchaAppId (digits)"
	}
	if c.Backend != "" && !sameOriginPath(c.Backend) && !loopbackURL(c.Backend) {
		return c, "backend: must be a path on this server (/login) or an http(s) URL on loopback"
	}
	if c.ScriptURL == "" {
		c.ScriptURL = TencentScript
	}
	if c.ScriptURL != TencentScript && !loopbackURL(c.ScriptURL) {
		return c, "script: must be " + TencentScript + " or an http(s) URL on loopback"
	}
	if v := q.Get("timeout_ms"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60_000 {
			return c, "timeout_ms: must be between 1 and 60000"
		}
		c.TimeoutMS = n
	}
	return c, ""
}

func sameOriginPath(s string) bool {
	return strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") && !strings.ContainsAny(s, "\\\r\n\t")
}

func loopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func serveExample(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	c, problem := exampleSettings(r.URL.Query())
	if problem != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(problem + "\n"))
		return
	}
	var buf bytes.Buffer
	// dr.js relative to the page, so it works behind a path prefix too.
	if err := example.Execute(&buf, map[string]any{"AppID": c.AppID, "DRScript": "dr.js", "Config": c}); err != nil {
		http.Error(w, "example page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
