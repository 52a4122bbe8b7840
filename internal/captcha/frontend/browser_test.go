package frontend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"carrier/internal/app/apptest"
	"carrier/internal/captcha/frontend"
	"carrier/internal/captcha/standin"
	"carrier/internal/store/storetest"
)

// chromium is where Debian's chromium package puts the browser.
const chromium = "/usr/bin/chromium"

// browser starts one headless Chromium for the whole test. Every request a
// tab makes to a host other than 127.0.0.1 fails (see tab), and the
// browser's own resolver knows no name, so nothing reaches the internet.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CARRIER_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CARRIER_REQUIRE_BROWSER=1 but there is no browser at %s: %v (apt-get install chromium)", chromium, err)
		}
		t.Skipf("no headless browser: %s is missing (apt-get install chromium; CARRIER_REQUIRE_BROWSER=1 makes this a failure)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx
}

// blocked records the requests a tab was refused.
type blocked struct {
	mu   sync.Mutex
	urls []string
}

func (b *blocked) add(u string) {
	b.mu.Lock()
	b.urls = append(b.urls, u)
	b.mu.Unlock()
}

func (b *blocked) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.urls...)
}

// tab opens a tab of the browser whose every request is paused and let go
// only when it is for 127.0.0.1; any other fails as blocked by the client.
func tab(t *testing.T, browserCtx context.Context) (context.Context, *blocked) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(func() { cancel() })
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		t.Fatalf("fetch.enable: %v", err)
	}
	b := &blocked{}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return // the tab closed
			}
			u, perr := url.Parse(ev.Request.URL)
			if perr == nil && u.Hostname() == "127.0.0.1" {
				chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				continue
			}
			b.add(ev.Request.URL)
			chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
		}
	}()
	return ctx, b
}

// login is one form the back end received.
type login struct {
	Username, Ticket, Randstr, ErrorCode string
}

// backend is the application's back end: it takes the example page's form
// and asks Carrier, with the project's key, what to do with its ticket,
// answering the page Carrier's decision.
type backend struct {
	*httptest.Server
	mu     sync.Mutex
	logins []login
}

func newBackend(t *testing.T, carrierURL, key, site string) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page is Carrier's, on another port: a cross-origin simple request.
		w.Header().Set("Access-Control-Allow-Origin", carrierURL)
		if r.Method != http.MethodPost || r.URL.Path != "/login" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		l := login{Username: r.PostFormValue("username"), Ticket: r.PostFormValue("ticket"), Randstr: r.PostFormValue("randstr"), ErrorCode: r.PostFormValue("error_code")}
		b.mu.Lock()
		b.logins = append(b.logins, l)
		b.mu.Unlock()
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		body, _ := json.Marshal(map[string]any{"site": site, "ticket": l.Ticket, "randstr": l.Randstr, "remote_ip": ip})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, carrierURL+"/v1/captcha/verify", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var answer struct {
			Data json.RawMessage `json:"data"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &answer) != nil || len(answer.Data) == 0 {
			http.Error(w, fmt.Sprintf("carrier answered %d: %s", resp.StatusCode, raw), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer.Data)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) received() []login {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]login(nil), b.logins...)
}

// vendorScripts serves stand-ins of Tencent's TJCaptcha.js, one behaviour
// per path; any other path is a 404, and /hang/ never answers.
func vendorScripts(t *testing.T, std *standin.Server, appID string) *httptest.Server {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var js string
		switch r.URL.Path {
		case "/ok/TJCaptcha.js":
			// A real ticket from the stand-in's CAPTCHA, for the app id dr.js passed.
			ticket, randstr := std.IssueTicket(appID)
			js = fmt.Sprintf(`window.TencentCaptcha = function (appId, callback, opts) {
  var issued = {ret: 0, ticket: %q, randstr: %q};
  this.show = function () {
    setTimeout(function () {
      callback(appId === %q ? issued : {ret: 0, ticket: 'wrong-app-id-' + appId, randstr: 'x'});
    }, 0);
  };
};`, ticket, randstr, appID)
		case "/throws/TJCaptcha.js":
			js = `window.TencentCaptcha = function () { throw new Error('TencentCaptcha: initialisation failed'); };`
		case "/show-throws/TJCaptcha.js":
			js = `window.TencentCaptcha = function () { this.show = function () { throw new Error('TencentCaptcha: show failed'); }; };`
		case "/closes/TJCaptcha.js":
			js = `window.TencentCaptcha = function (appId, callback) {
  this.show = function () { setTimeout(function () { callback({ret: 2, ticket: null}); }, 0); };
};`
		case "/hang/TJCaptcha.js":
			select {
			case <-r.Context().Done():
			case <-hang:
			}
			return
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, js)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // before Close, which waits for handlers
	return srv
}

// refusedURL is a loopback URL nothing listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/TJCaptcha.js"
}

// pageState is what the example page shows once it is done.
type pageState struct {
	State    string `json:"state"`
	Status   string `json:"status"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Ticket   string `json:"ticket"`
	Response string `json:"response"`
}

const readPage = `(function () {
  var s = document.body.getAttribute('data-state');
  if (['done', 'failed', 'closed', 'ticket'].indexOf(s) < 0) { return null; }
  function text(id) { return document.getElementById(id).textContent; }
  return {state: s, status: text('status'), decision: text('decision'), reason: text('reason'), ticket: text('ticket'), response: text('response')};
})()`

// signIn opens the example page in a new tab, signs in, and waits for the
// page to settle.
func signIn(t *testing.T, browserCtx context.Context, pageURL string) (pageState, []string) {
	t.Helper()
	ctx, blocked := tab(t, browserCtx)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second) // bounds a hang only
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL),
		chromedp.SendKeys(chromedp.ID("username"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Click(chromedp.ID("submit")),
	); err != nil {
		t.Fatalf("sign in on %s: %v", pageURL, err)
	}
	st, err := chromedp.Run(ctx, chromedp.Poll[pageState](readPage, chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		t.Fatalf("waiting for the page to settle: %v", err)
	}
	return st, blocked.list()
}

var drTicket = regexp.MustCompile(`^terror_1001_([0-9]+)_([0-9]+)$`)

// TestBrowserDisasterRecovery drives the example page, served by a real
// Carrier, in headless Chromium: each way the vendor's script can fail
// still ends in a disaster-recovery ticket that Carrier lets through as
// degraded_allow (dr_ticket); a working CAPTCHA's ticket is allowed; a
// closed CAPTCHA posts nothing.
func TestBrowserDisasterRecovery(t *testing.T) {
	browserCtx := browser(t)
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			_, key := c.NewProject("captcha-frontend")
			std := standin.New(t)
			r := c.Do("POST", "/v1/captcha/sites", key, map[string]any{
				"name": "web", "vendor": "tencent",
				"keys": map[string]any{"app_id": standin.TencentAppID, "app_secret": standin.TencentAppSecret,
					"secret_id": standin.TencentSecretID, "secret_key": standin.TencentSecretKey},
				"settings": map[string]any{"policy": "fail_closed", "deadline_ms": 2000, "accept_dr_tickets": true,
					"dr_per_ip": 100, "endpoints": []string{std.URL(standin.Tencent)}},
			})
			if r.Status != http.StatusCreated {
				t.Fatalf("create site: %d %s", r.Status, r.Body)
			}
			scenarios(t, browserCtx, c.URL, key, "web", std)
		})
	}
}

// scenarios signs in on the example page of the Carrier at carrierURL,
// whose site verifies with the Tencent stand-in std and accepts DR tickets,
// once for each way the vendor's script can behave.
func scenarios(t *testing.T, browserCtx context.Context, carrierURL, key, site string, std *standin.Server) {
	back := newBackend(t, carrierURL, key, site)
	scripts := vendorScripts(t, std, standin.TencentAppID)
	page := func(script string, timeoutMS int) string {
		q := url.Values{"app_id": {standin.TencentAppID}, "backend": {back.URL + "/login"}}
		if script != "" {
			q.Set("script", script)
		}
		if timeoutMS > 0 {
			q.Set("timeout_ms", strconv.Itoa(timeoutMS))
		}
		return carrierURL + frontend.ExamplePath + "?" + q.Encode()
	}

	drCases := []struct {
		name, script string
		timeoutMS    int
		blocked      string // a host the page tried and was refused
	}{
		// Tencent's own URL: the browser may not reach it, as when it is down.
		{name: "tencent unreachable", blocked: "turing.captcha.qcloud.com"},
		{name: "script 404", script: scripts.URL + "/missing/TJCaptcha.js"},
		{name: "script refused", script: refusedURL(t)},
		{name: "script load timeout", script: scripts.URL + "/hang/TJCaptcha.js", timeoutMS: 300},
		{name: "constructor throws", script: scripts.URL + "/throws/TJCaptcha.js"},
		{name: "show throws", script: scripts.URL + "/show-throws/TJCaptcha.js"},
	}
	for _, tc := range drCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(back.received())
			st, refused := signIn(t, browserCtx, page(tc.script, tc.timeoutMS))
			if st.State != "done" || st.Decision != "degraded_allow" || st.Reason != "dr_ticket" {
				t.Fatalf("page shows %+v, want decision degraded_allow, reason dr_ticket", st)
			}
			if !strings.Contains(st.Ticket, "disaster recovery, errorCode 1001") {
				t.Errorf("page's ticket %q is not marked as a disaster-recovery ticket", st.Ticket)
			}
			got := back.received()
			if len(got) != before+1 {
				t.Fatalf("back end received %d forms, want 1", len(got)-before)
			}
			l := got[len(got)-1]
			m := drTicket.FindStringSubmatch(l.Ticket)
			if m == nil || m[1] != standin.TencentAppID {
				t.Fatalf("ticket %q, want terror_1001_%s_<unix seconds>", l.Ticket, standin.TencentAppID)
			}
			if at, _ := strconv.ParseInt(m[2], 10, 64); time.Since(time.Unix(at, 0)).Abs() > 5*time.Minute {
				t.Errorf("ticket's time %s is not the browser's now", time.Unix(at, 0))
			}
			if !regexp.MustCompile(`^@[0-9a-z]+$`).MatchString(l.Randstr) || l.ErrorCode != "1001" || l.Username != "ada@example.com" {
				t.Errorf("form %+v: want randstr '@'+base36, error_code 1001, the username", l)
			}
			for _, u := range refused {
				if tc.blocked == "" || !strings.Contains(u, tc.blocked) {
					t.Errorf("the page tried %s", u)
				}
			}
			if tc.blocked != "" && len(refused) == 0 {
				t.Errorf("the page never asked for %s", tc.blocked)
			}
		})
	}

	t.Run("vendor works", func(t *testing.T) {
		before := len(back.received())
		st, refused := signIn(t, browserCtx, page(scripts.URL+"/ok/TJCaptcha.js", 0))
		if st.State != "done" || st.Decision != "allow" || st.Reason != "ok" {
			t.Fatalf("page shows %+v, want decision allow, reason ok", st)
		}
		got := back.received()
		if len(got) != before+1 {
			t.Fatalf("back end received %d forms, want 1", len(got)-before)
		}
		if l := got[len(got)-1]; strings.HasPrefix(l.Ticket, "terror_") || l.ErrorCode != "" {
			t.Errorf("form %+v: want the vendor's ticket, no error code", l)
		}
		if len(refused) > 0 {
			t.Errorf("the page tried %v", refused)
		}
	})

	t.Run("user closes", func(t *testing.T) {
		before := len(back.received())
		st, refused := signIn(t, browserCtx, page(scripts.URL+"/closes/TJCaptcha.js", 0))
		if st.State != "closed" || !strings.Contains(st.Status, "closed") || st.Decision != "" {
			t.Fatalf("page shows %+v, want closed and no decision", st)
		}
		// The page settles only after onResult, which posts nothing when closed.
		if got := back.received(); len(got) != before {
			t.Errorf("back end received %+v after the user closed the CAPTCHA", got[before:])
		}
		if len(refused) > 0 {
			t.Errorf("the page tried %v", refused)
		}
	})
}
