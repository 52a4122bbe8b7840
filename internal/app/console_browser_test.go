package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// consoleBrowser starts a headless Chromium that can reach 127.0.0.1 only.
func consoleBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CARRIER_REQUIRE_BROWSER") == "1" {
			t.Fatalf("CARRIER_REQUIRE_BROWSER=1 but there is no browser at %s: %v (apt-get install chromium)", chromiumPath, err)
		}
		t.Skipf("no headless browser: %s is missing (apt-get install chromium; CARRIER_REQUIRE_BROWSER=1 makes this a failure)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-domain-reliability", true), chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true), chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1400, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// artifactDir is where the browser test saves its screenshots:
// $CARRIER_ARTIFACTS_DIR/console (CI keeps them), else a temporary directory.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("CARRIER_ARTIFACTS_DIR")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInBrowser drives the console in headless Chromium over seeded
// data: sign in; filter the delivery log by two statuses and a time range;
// open a delivery and see its attempts; replay it and see the new attempt
// arrive through the live tail; bulk-retry a filtered set after its
// dry-run count; edit a filter policy and test it against a sample;
// deactivate and activate an endpoint; sign out. A form posted from another
// origin and requests without a session are refused. Each page is saved as a
// screenshot.
func TestConsoleInBrowser(t *testing.T) {
	ctx := consoleBrowser(t)
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{})
	shots := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	eval := func(expr string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return n
	}
	// poll evaluates expr until it is true; a page that navigates meanwhile
	// (a form submitted, a reload) is read again once loaded.
	poll := func(what, expr string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(function(){try{return !!(`+expr+`)}catch(e){return false}})()`))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: waiting for %s: %v", what, expr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Seed: a failing endpoint (no retries, so its deliveries fail at once;
	// fewer than the 10 failures in a row that deactivate it) and a working
	// one; eight events of two types.
	var failing atomic.Bool
	failing.Store(true)
	var slow atomic.Int64
	bad := apptest.NewEndpoint(t, func(n int, r apptest.Request, w http.ResponseWriter) {
		time.Sleep(time.Duration(slow.Load()))
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	good := apptest.NewEndpoint(t, nil)
	badID, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "billing (failing)", "webhook_url": bad.URL, "event_types": []string{"*"}, "max_retries": 0})
	goodID, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "audit", "webhook_url": good.URL, "event_types": []string{"*"}})
	start := time.Now().UTC()
	for i := range 8 {
		typ := "task.solved"
		if i%3 == 0 {
			typ = "task.failed"
		}
		c.Publish(apptest.AdminKey, map[string]any{"type": typ, "subject": fmt.Sprintf("task-%d", i), "data": map[string]any{"n": i}})
	}
	bad.WaitRequests(t, 8, 10*time.Second)
	good.WaitRequests(t, 8, 10*time.Second)
	apptest.Eventually(t, 10*time.Second, "8 failed deliveries", func() bool {
		r := c.Admin("GET", "/v1/webhooks/"+badID+"/deliveries?status=failed&limit=100", nil)
		return len(r.List()) == 8
	})
	base := c.URL + "/console"

	// Without a session: pages send to the sign-in page, actions are refused.
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(base + "/deliveries")
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("GET without a session: %v %v", resp, err)
	}
	resp, err = http.PostForm(base+"/subscriptions/"+goodID+"/active", url.Values{"active": {"false"}})
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without a session: %v %v", resp, err)
	}

	// Sign in.
	run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=api_key]`)))
	shot("01-sign-in")
	run("sign in", chromedp.SendKeys(chromedp.CSS(`input[name=api_key]`), apptest.AdminKey), chromedp.Submit(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`.cards`)))
	if got := text(".cards"); !strings.Contains(got, "failed") || !strings.Contains(got, "delivered") {
		t.Fatalf("overview cards: %q", got)
	}
	shot("02-overview")

	// The log, filtered by two statuses and a time range: the 8 failed and
	// the 8 delivered deliveries of the seed.
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	from := start.Add(-time.Minute).Format("2006-01-02T15:04")
	to := time.Now().UTC().Add(2 * time.Minute).Format("2006-01-02T15:04")
	run("filter", chromedp.Navigate(base+"/deliveries"), chromedp.WaitVisible(css(`#log`)),
		chromedp.Click(css(`input[name=state][value=failed]`)),
		chromedp.Click(css(`input[name=state][value=delivered]`)),
		chromedp.SetValue(css(`input[name=from]`), from),
		chromedp.SetValue(css(`input[name=to]`), to),
		chromedp.Click(css(`#filters button[type=submit]`)))
	poll("filter", `location.search.includes("state=failed") && location.search.includes("state=delivered") && location.search.includes("from=")`, 10*time.Second)
	rows := eval(`document.querySelectorAll("#log tbody tr:not(.empty)").length`)
	failed := eval(`document.querySelectorAll("#log tbody tr.failed").length`)
	delivered := eval(`document.querySelectorAll("#log tbody tr.delivered").length`)
	if rows != 16 || failed != 8 || delivered != 8 {
		t.Fatalf("filtered log: %d rows, %d failed, %d delivered", rows, failed, delivered)
	}
	// A window before the seed holds none of them; back in the window with
	// failed alone, the 8 failed ones.
	run("empty window", chromedp.SetValue(css(`input[name=to]`), start.Add(-time.Minute).Format("2006-01-02T15:04")),
		chromedp.SetValue(css(`input[name=from]`), start.Add(-2*time.Hour).Format("2006-01-02T15:04")),
		chromedp.Click(css(`#filters button[type=submit]`)), chromedp.WaitVisible(css(`#log tr.empty`)))
	run("back to the window", chromedp.SetValue(css(`input[name=from]`), from), chromedp.SetValue(css(`input[name=to]`), to),
		chromedp.Click(css(`input[name=state][value=delivered]`)))
	poll("failed only", `document.querySelectorAll("#log tbody tr.failed").length == 8 && document.querySelectorAll("#log tbody tr.delivered").length == 0`, 10*time.Second)
	shot("03-deliveries-filtered")

	// A failed delivery: its attempt; replayed while the endpoint works again
	// (slowly, so the attempt lands after the page loaded), the new attempt
	// arrives through the live tail.
	run("open a delivery", chromedp.Click(css(`#log tbody tr.failed a`)), chromedp.WaitVisible(css(`#attempts`)))
	if n := eval(`document.querySelectorAll("#attempts li.attempt").length`); n != 1 || !strings.Contains(text("#attempts"), "HTTP 500") ||
		!strings.Contains(text("#attempts"), "Content-Length: 0") {
		t.Fatalf("attempts: %d %q", n, text("#attempts"))
	}
	shot("04-delivery")
	failing.Store(false)
	slow.Store(int64(1500 * time.Millisecond))
	run("replay", chromedp.Click(css(`#replay`)), chromedp.WaitVisible(css(`.flash`)))
	poll("the replayed attempt, live", `document.querySelectorAll("#attempts li.attempt.new.delivered").length == 1`, 15*time.Second)
	poll("the state, live", `document.getElementById("state").textContent == "delivered"`, 5*time.Second)
	shot("05-delivery-replayed-live")
	slow.Store(0)

	// Bulk retry of the failing endpoint's failed deliveries: 7 left.
	run("dry run", chromedp.Navigate(base+"/bulk?subscription="+badID), chromedp.WaitVisible(css(`#dry-run-count`)))
	if got := text("#dry-run-count"); got != "7" {
		t.Fatalf("dry-run count %q", got)
	}
	shot("06-bulk-dry-run")
	run("start", chromedp.Click(css(`#start-bulk`)), chromedp.WaitVisible(css(`#job`)))
	// The job page reloads itself while the job runs.
	poll("bulk retry", `document.getElementById("job-status").textContent.includes("Finished")`, 15*time.Second)
	if got := text("#job-replayed"); got != "7" {
		t.Fatalf("bulk retry replayed %q", got)
	}
	shot("07-bulk-finished")
	apptest.Eventually(t, 10*time.Second, "every failed delivery retried", func() bool {
		r := c.Admin("GET", "/v1/webhooks/"+badID+"/deliveries?status=delivered&limit=100", nil)
		return len(r.List()) == 8
	})

	// The filter policy editor and its tester.
	run("policy", chromedp.Navigate(base+"/subscriptions/"+goodID), chromedp.WaitVisible(css(`#policy-form`)),
		chromedp.SetValue(css(`#policy`), `{"status": ["failed", "error"]}`),
		chromedp.SetValue(css(`#sample`), `{"attributes": {"status": "failed"}}`),
		chromedp.Click(css(`#test-policy`)), chromedp.WaitVisible(css(`#policy-result`)))
	if got := text("#policy-result"); !strings.Contains(got, "matches") || strings.Contains(got, "not") {
		t.Fatalf("policy test: %q", got)
	}
	run("test no match", chromedp.SetValue(css(`#sample`), `{"attributes": {"status": "solved"}}`), chromedp.Click(css(`#test-policy`)))
	poll("no match", `document.getElementById("policy-result") != null && document.getElementById("policy-result").textContent.includes("does not match")`, 10*time.Second)
	shot("08-filter-policy-test")
	run("save policy", chromedp.Click(css(`#save-policy`)), chromedp.WaitVisible(css(`.flash`)))
	if r := c.Admin("GET", "/v1/subscriptions/"+goodID, nil); !strings.Contains(string(r.Body), `"failed","error"`) {
		t.Fatalf("saved policy: %s", r.Body)
	}

	// A form on another origin (another loopback port) posting to the
	// console with the browser's cookie is refused: Sec-Fetch-Site is
	// same-site, not same-origin, and it has no CSRF token.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/subscriptions/%s/active"><input name="active" value="false"></form>
<script>document.getElementById("f").submit()</script>`, base, goodID)
	}))
	defer evil.Close()
	run("cross-origin post", chromedp.Navigate(evil.URL))
	poll("cross-origin post", `location.href.includes("/console/subscriptions/") && document.body != null && document.body.textContent.length > 0`, 10*time.Second)
	if got := text("body"); !strings.Contains(got, "cross-site request refused") {
		t.Fatalf("cross-origin post answered %q", got)
	}
	if r := c.Admin("GET", "/v1/subscriptions/"+goodID, nil); !strings.Contains(string(r.Body), `"is_active":true`) {
		t.Fatalf("the cross-origin post changed the subscription: %s", r.Body)
	}

	// Deactivate and activate the endpoint.
	run("deactivate", chromedp.Navigate(base+"/subscriptions/"+goodID), chromedp.Click(css(`#deactivate`)), chromedp.WaitVisible(css(`#activate`)))
	if got := text("#sub-state"); !strings.HasPrefix(got, "inactive") {
		t.Fatalf("after deactivate: %q", got)
	}
	shot("09-endpoint-deactivated")
	run("activate", chromedp.Click(css(`#activate`)), chromedp.WaitVisible(css(`#deactivate`)))
	if got := text("#sub-state"); got != "active" {
		t.Fatalf("after activate: %q", got)
	}
	// Rotate the secret: shown on that answer only.
	run("rotate", chromedp.Click(css(`#rotate-secret`)), chromedp.WaitVisible(css(`#new-secret`)))
	newSecret := text("#new-secret code")
	if !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q", newSecret)
	}
	run("reload", chromedp.Navigate(base+"/subscriptions/"+goodID), chromedp.WaitVisible(css(`#policy-form`)))
	var html string
	if html, err = chromedp.Run(ctx, chromedp.OuterHTML(css(`html`))); err != nil || strings.Contains(html, newSecret) {
		t.Fatalf("the secret is shown again (or the page unreadable: %v)", err)
	}
	run("recover", chromedp.Click(css(`#recover`)), chromedp.WaitVisible(css(`.flash`)))
	if got := text(".flash"); !strings.Contains(got, "failed deliveries since") {
		t.Fatalf("recover: %q", got)
	}
	run("endpoints", chromedp.Navigate(base+"/subscriptions"), chromedp.WaitVisible(css(`table.subs`)))
	shot("10-endpoints")
	// One screenshot of each of the other pages (this run has no provider:
	// the tasks page says tasks are off).
	for i, p := range []struct{ path, sel string }{{"events", "#catalogue"}, {"queues", "main h1"}, {"tasks", "#tasks-off"},
		{"alerts", "main h1"}, {"captcha", "main h1"}, {"api", "#operations"}} {
		run(p.path, chromedp.Navigate(base+"/"+p.path), chromedp.WaitVisible(css(p.sel)))
		shot(fmt.Sprintf("%02d-%s", 12+i, p.path))
	}

	// Sign out: the session is gone.
	run("sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`input[name=api_key]`)))
	run("after sign out", chromedp.Navigate(base+"/deliveries"), chromedp.WaitVisible(chromedp.CSS(`input[name=api_key]`)))
	shot("11-signed-out")
	t.Logf("screenshots in %s", shots)
}
