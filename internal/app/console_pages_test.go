package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carrier/internal/alert"
	"carrier/internal/app"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// consoleSession is a signed-in console client: it keeps the session
// cookie and reads the CSRF token from the pages it loads.
type consoleSession struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signIn(t *testing.T, c *apptest.Carrier) *consoleSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &consoleSession{t: t, base: c.URL + "/console", hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	resp, err := s.hc.PostForm(s.base+"/login", url.Values{"api_key": {apptest.AdminKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/console/") {
		t.Fatalf("sign in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return s
}

func (s *consoleSession) read(resp *http.Response, err error) (int, string) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		s.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

// page loads a page and fails unless it answers 200 with each of want.
func (s *consoleSession) page(path string, want ...string) string {
	s.t.Helper()
	status, body := s.read(s.hc.Get(s.base + path))
	if status != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	text := html.UnescapeString(body)
	for _, w := range want {
		if !strings.Contains(text, w) {
			s.t.Errorf("GET %s: no %q in the page", path, w)
		}
	}
	return text
}

// post submits a form as the page's form does (csrf and back) and returns
// the page it redirects back to, unescaped.
func (s *consoleSession) post(path, back string, form url.Values) string {
	s.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", s.csrf)
	form.Set("back", "/console"+back)
	status, body := s.read(s.hc.PostForm(s.base+path, form))
	if status != http.StatusOK {
		s.t.Fatalf("POST %s: %d %s", path, status, body)
	}
	return html.UnescapeString(body)
}

func TestConsolePages(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// ManualRedrive: the tasks service does not redrive a task's dead
			// letters itself once it is submitted, so the one redrive counted
			// below is the console's.
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.Simulate = true },
				Tasks: func(tc *task.Config) { tc.ManualRedrive = true }})
			ctx, st := context.Background(), c.App.Store
			s := signIn(t, c)

			// Without the CSRF token an action is refused.
			if status, _ := s.read(s.hc.PostForm(s.base+"/events/test", url.Values{"type": {"order.created"}})); status != http.StatusForbidden {
				t.Errorf("POST without the CSRF token: %d, want 403", status)
			}

			// The event catalogue: each type once, with its newest payload;
			// a test publishes that example again, to the matching endpoints.
			sink := apptest.NewEndpoint(t, nil)
			c.CreateWebhook(apptest.AdminKey, map[string]any{"name": "sink", "webhook_url": sink.URL, "event_types": []string{"order.*"}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "order.created", "data": map[string]any{"n": 1}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "order.created", "data": map[string]any{"n": 2, "sku": "newest-created"}})
			c.Publish(apptest.AdminKey, map[string]any{"type": "order.paid", "data": map[string]any{"amount": 7}})
			sink.WaitRequests(t, 3, 10*time.Second)
			events := s.page("/events", "order.created", "order.paid", `"sku": "newest-created"`, `"amount": 7`)
			if strings.Count(events, `value="order.created"`) != 1 {
				t.Errorf("the catalogue lists order.created %d times, want once", strings.Count(events, `value="order.created"`))
			}
			if got := s.post("/events/test", "/events", url.Values{"type": {"order.created"}}); !strings.Contains(got, "Test order.created published as event") {
				t.Errorf("send a test: no flash in %s", got)
			}
			reqs := sink.WaitRequests(t, 4, 10*time.Second)
			if b := string(reqs[3].Body); !strings.Contains(b, "newest-created") || !strings.Contains(b, "order.created") {
				t.Errorf("the test event delivered %s, want the newest order.created's payload", b)
			}
			if got := s.post("/events/test", "/events", url.Values{"type": {"never.seen"}}); !strings.Contains(got, `No example of type "never.seen"`) {
				t.Errorf("a test of an unknown type: %s", got)
			}

			// Pull queues: a message dead-lettered, shown in its
			// dead-letter queue, and redriven back.
			dlq := c.Admin("POST", "/v1/queues", map[string]any{"name": "work-dlq"}).Data()["id"].(string)
			work := c.Admin("POST", "/v1/queues", map[string]any{"name": "work", "dead_letter_queue": "work-dlq", "max_receive_count": 1}).Data()["id"].(string)
			c.Admin("POST", "/v1/queues/"+work+"/messages", map[string]any{"body": "job"})
			c.Admin("POST", "/v1/queues/"+work+"/receive", map[string]any{"visibility_timeout_seconds": 0})
			visible := func(id string) float64 {
				m, _ := c.Admin("GET", "/v1/queues/"+id, nil).Data()["approximate_messages"].(map[string]any)
				n, _ := m["visible"].(float64)
				return n
			}
			apptest.Eventually(t, 10*time.Second, "the message in work-dlq", func() bool {
				c.Admin("POST", "/v1/queues/"+work+"/receive", map[string]any{"visibility_timeout_seconds": 0})
				return visible(dlq) == 1
			})
			queues := s.page("/queues", "work-dlq", "after 1 receives", "Redrive to work")
			if !regexp.MustCompile(`<b>work</b>.*?<td>0</td><td>0</td><td>0</td><td class="oldest">—</td>\s*<td>work-dlq <span class="muted">after 1 receives</span></td>\s*<td>1</td>`).MatchString(strings.ReplaceAll(queues, "\n", " ")) {
				t.Errorf("queues page: work should be empty and its dead-letter queue 1 deep:\n%s", queues)
			}
			if !regexp.MustCompile(`<b>work-dlq</b>.*?<td>1</td><td>0</td><td>0</td><td class="oldest">[0-9.]+s ago</td>`).MatchString(strings.ReplaceAll(queues, "\n", " ")) {
				t.Errorf("queues page: work-dlq's message should be seconds old:\n%s", queues)
			}
			if got := s.post("/queues/"+dlq+"/redrive", "/queues", nil); !strings.Contains(got, "1 messages of work-dlq moved back") {
				t.Errorf("redrive: no flash in %s", got)
			}
			if visible(work) != 1 || visible(dlq) != 0 {
				t.Errorf("after the redrive: work %v visible, work-dlq %v, want 1 and 0", visible(work), visible(dlq))
			}

			// Tasks, a page of each status, and a dead letter redriven
			// through the tasks service (it is still malformed: it stays,
			// with its redrive counted).
			taskID := c.Admin("POST", "/v1/tasks", map[string]any{"method": "userrecaptcha",
				"params": map[string]string{"googlekey": "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-", "pageurl": "https://example.com/login"}}).Data()["task_id"].(string)
			found := ""
			for _, status := range []string{"pending", "submitted", "solved", "failed", "expired"} {
				if strings.Contains(s.page("/tasks?status="+status, "Dead letters waiting"), taskID) {
					found = status
				}
			}
			if found == "" {
				t.Errorf("task %s on no tab of the tasks page", taskID)
			}
			if strings.Contains(s.page("/tasks"), "Async tasks are off") {
				t.Errorf("tasks page says tasks are off with the simulator running")
			}
			if _, err := st.RecordProbe(ctx, store.Gauge{Name: alert.GaugeBalance, Item: alert.ProviderItem, Value: 12.5, OK: true, ObservedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			s.page("/tasks", "12.50", "provider balance")
			if !regexp.MustCompile(`id="overview-balance"[^>]*><span class="n">12.50</span> provider balance`).MatchString(s.page("/")) {
				t.Errorf("the overview does not show the provider balance")
			}
			now := time.Now().UTC()
			dl := store.DeadLetter{ID: "dl-console-test", ProjectID: app.DefaultProjectID, TaskID: taskID, Source: "callback", Reason: "malformed_callback",
				Message: "no code", Method: "POST", Body: "id=1", ContentType: "application/x-www-form-urlencoded", Status: store.DeadLetterPending,
				CreatedAt: now, UpdatedAt: now}
			if err := st.CreateDeadLetter(ctx, dl); err != nil {
				t.Fatal(err)
			}
			s.page("/tasks", "dl-console-test/redrive", "malformed_callback")
			if got := s.post("/dead-letters/"+dl.ID+"/redrive", "/tasks", nil); !strings.Contains(got, "Still cannot be processed") {
				t.Errorf("redrive of a malformed dead letter: %s", got)
			}
			if got, err := st.GetDeadLetter(ctx, app.DefaultProjectID, dl.ID); err != nil || got.Redrives != 1 || got.Status != store.DeadLetterPending {
				t.Errorf("after the redrive: %+v %v, want 1 redrive, still pending", got, err)
			}

			// Alerts: a firing alert with its transition; a silence created
			// and expired.
			rule := c.Admin("POST", "/v1/alert-rules", map[string]any{"name": "Console backlog", "metric": "subscription.drain_time", "window": "5m",
				"tiers": []any{map[string]any{"severity": "warning", "fire": 600, "clear": 120}}}).Data()["id"].(string)
			s.page("/alerts", "No alerts.", "No silences.")
			a := store.Alert{ID: "alert-console-test", ProjectID: app.DefaultProjectID, RuleID: rule, Item: "sub-1", Status: "firing", Severity: "warning",
				State: json.RawMessage(`{}`), StartedAt: now, UpdatedAt: now}
			if err := st.ApplyAlertChanges(ctx, []store.AlertChange{{Alert: a, Transitions: []store.AlertTransition{{ID: "tr-console-test", AlertID: a.ID,
				ProjectID: a.ProjectID, At: now, From: "pending", To: "firing", Severity: "warning"}}}}, nil); err != nil {
				t.Fatal(err)
			}
			s.page("/alerts", "Console backlog", "sub-1", "pending → firing", "firing")
			got := s.post("/silences", "/alerts", url.Values{"matchers": {"rule=Console backlog\nitem=~sub-.*"}, "duration": {"2h"}, "comment": {"deploy"}})
			if !strings.Contains(got, "Silence ") || !strings.Contains(got, "rule=Console backlog, item=~sub-.*") || !strings.Contains(got, "deploy") {
				t.Errorf("create a silence: %s", got)
			}
			silences := c.Admin("GET", "/v1/silences", nil).List()
			if len(silences) != 1 {
				t.Fatalf("silences after create: %v", silences)
			}
			if got := s.post("/silences", "/alerts", url.Values{"matchers": {"nolabel=x"}, "duration": {"2h"}}); !strings.Contains(got, "must be one of") {
				t.Errorf("a silence on an unknown label: %s", got)
			}
			if got := s.post("/silences/"+silences[0]["id"].(string)+"/expire", "/alerts", nil); !strings.Contains(got, "Silence expired.") || !strings.Contains(got, "No silences.") {
				t.Errorf("expire the silence: %s", got)
			}

			// CAPTCHA: a site, its key never shown.
			const secret = "0x4AAAAAAAconsoleSecretNeverShown"
			if r := c.Admin("POST", "/v1/captcha/sites", map[string]any{"name": "signup form", "vendor": "turnstile",
				"keys": map[string]any{"site_key": "0x4AAAAAAAconsoleSiteKey", "secret": secret}, "settings": map[string]any{"policy": "fail_open"}}); r.Status != http.StatusCreated {
				t.Fatalf("create a site: %d %s", r.Status, r.Body)
			}
			captchaPage := s.page("/captcha", "signup form", "turnstile", "fail_open", "None: every vendor answered.")
			if strings.Contains(captchaPage, secret) || strings.Contains(captchaPage, "consoleSiteKey") {
				t.Errorf("the CAPTCHA page shows a site's keys")
			}

			// The OpenAPI reference.
			s.page("/api", "Carrier REST API", "/v1/events", "/v1/queues/{id}/redrive", "POST", "DELETE", "public")

			// Each page is in the nav.
			for _, p := range []string{"events", "queues", "tasks", "alerts", "captcha", "api"} {
				if !strings.Contains(events, fmt.Sprintf(`href="/console/%s"`, p)) {
					t.Errorf("no %s in the nav", p)
				}
			}
		})
	}
}
