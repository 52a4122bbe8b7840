package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/alert"
	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/dest/discord/discordtest"
	"carrier/internal/dest/slack/slacktest"
	"carrier/internal/dispatch"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
	"carrier/internal/task"
)

// End-to-end tests of alerts: a real Carrier whose leader evaluates the
// rules ten times a second and probes the in-process provider simulator's
// balance five times a second, notifications routed by ordinary
// subscriptions to the Discord and Slack stand-ins, and the test counting
// what arrives there.

// alertRole is the Discord role the ops subscriptions mention on critical alerts.
const alertRole = "123456789012345678"

// Notice colors as Discord shows them (alert.Colors).
const (
	colorWarning = 0xF39C12
	colorError   = 0xE74C3C
	colorSuccess = 0x2ECC71
)

type alertRig struct {
	t   *testing.T
	c   *apptest.Carrier
	sim *simulator.Simulator // nil with noProvider
}

type alertRigOptions struct {
	noDefaults bool // no built-in rules
	noProvider bool // no simulator, no balance probe
	dispatch   func(*dispatch.Config)
}

func startAlertRig(t *testing.T, e storetest.Engine, o alertRigOptions) *alertRig {
	t.Helper()
	c := apptest.Start(t, e, apptest.Options{
		Configure: func(cfg *config.Config) {
			cfg.AlertDefaults = !o.noDefaults
			cfg.AlertInterval = 100 * time.Millisecond
			cfg.BalanceProbeInterval = 200 * time.Millisecond
			cfg.Simulate = !o.noProvider
			cfg.ProviderName = "CaptchaAI"
		},
		Tasks:    func(tc *task.Config) { tc.Tick = 50 * time.Millisecond },
		Dispatch: o.dispatch,
	})
	return &alertRig{t: t, c: c, sim: c.App.Simulator}
}

// subscribe subscribes the default project to every alert event and
// returns the subscription's id.
func (r *alertRig) subscribe(name string, destination map[string]any) string {
	r.t.Helper()
	return r.subscription(map[string]any{"name": name, "event_types": []string{"alert.*"}, "destination": destination})
}

func (r *alertRig) subscription(body map[string]any) string {
	r.t.Helper()
	resp := r.c.Admin("POST", "/v1/subscriptions", body)
	if resp.Status != http.StatusCreated {
		r.t.Fatalf("create subscription %v: %d %s", body["name"], resp.Status, resp.Body)
	}
	return resp.Data()["subscription_id"].(string)
}

// rule returns the default project's rule with that name.
func (r *alertRig) rule(name string) map[string]any {
	r.t.Helper()
	resp := r.c.Admin("GET", "/v1/alert-rules", nil)
	for _, rule := range resp.List() {
		if rule["name"] == name {
			return rule
		}
	}
	r.t.Fatalf("no alert rule %q in %s", name, resp.Body)
	return nil
}

// updateRule changes a rule through PUT /v1/alert-rules/{id}.
func (r *alertRig) updateRule(name string, change func(rule map[string]any)) {
	r.t.Helper()
	rule := r.rule(name)
	change(rule)
	if resp := r.c.Admin("PUT", "/v1/alert-rules/"+rule["id"].(string), rule); resp.Status != http.StatusOK {
		r.t.Fatalf("update rule %s: %d %s", name, resp.Status, resp.Body)
	}
}

// createRule creates a rule through POST /v1/alert-rules and returns its id.
func (r *alertRig) createRule(rule map[string]any) string {
	r.t.Helper()
	resp := r.c.Admin("POST", "/v1/alert-rules", rule)
	if resp.Status != http.StatusCreated {
		r.t.Fatalf("create rule %v: %d %s", rule["name"], resp.Status, resp.Body)
	}
	return resp.Data()["id"].(string)
}

// metrics scrapes /metrics: each series as the exposition writes it
// (name{label="value",…}, labels sorted) to its value.
func (r *alertRig) metrics() map[string]float64 {
	r.t.Helper()
	resp := r.c.Do("GET", "/metrics", "", nil)
	if resp.Status != http.StatusOK {
		r.t.Fatalf("metrics: %d", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// waitMetric waits until series satisfies ok and returns its value.
func (r *alertRig) waitMetric(series, what string, timeout time.Duration, ok func(v float64) bool) float64 {
	r.t.Helper()
	var v float64
	var found bool
	apptest.Eventually(r.t, timeout, what+" ("+series+")", func() bool {
		v, found = r.metrics()[series]
		return found && ok(v)
	})
	return v
}

// waitBalance waits until Carrier has probed the balance v.
func (r *alertRig) waitBalance(v float64) {
	r.t.Helper()
	r.waitMetric("carrier_provider_balance", fmt.Sprintf("a balance probe reading %v", v), 20*time.Second, func(got float64) bool { return got == v })
}

const alertRounds = `carrier_maintenance_rounds_total{service="alerts"}`

// settle waits for n more evaluation rounds, so that anything those rounds
// would (wrongly) notify has been written, and then for the subscriptions'
// deliveries to be done: what a stand-in holds afterwards is all that comes.
func (r *alertRig) settle(n int, subs ...string) {
	r.t.Helper()
	start := r.metrics()[alertRounds]
	r.waitMetric(alertRounds, fmt.Sprintf("%d more evaluation rounds", n), 30*time.Second, func(v float64) bool { return v >= start+float64(n) })
	for _, id := range subs {
		apptest.Eventually(r.t, 30*time.Second, "no delivery of subscription "+id+" left to do", func() bool {
			for _, st := range []string{"pending", "retrying"} {
				if len(r.c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries?limit=1&status="+st, nil).List()) > 0 {
					return false
				}
			}
			return true
		})
	}
}

// alerts lists the default project's alerts (GET /v1/alerts), newest first.
func (r *alertRig) alerts() []map[string]any {
	r.t.Helper()
	resp := r.c.Admin("GET", "/v1/alerts", nil)
	if resp.Status != http.StatusOK {
		r.t.Fatalf("list alerts: %d %s", resp.Status, resp.Body)
	}
	return resp.List()
}

// embed is the one embed of a Discord message.
func embed(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	es, _ := m["embeds"].([]any)
	if len(es) != 1 {
		t.Fatalf("message has %d embeds, want 1: %v", len(es), m)
	}
	return es[0].(map[string]any)
}

// embedFields are an embed's fields as "name=value" in order.
func embedFields(e map[string]any) []string {
	var out []string
	fs, _ := e["fields"].([]any)
	for _, f := range fs {
		m := f.(map[string]any)
		out = append(out, fmt.Sprint(m["name"], "=", m["value"]))
	}
	return out
}

func embedField(e map[string]any, name string) string {
	fs, _ := e["fields"].([]any)
	for _, f := range fs {
		m := f.(map[string]any)
		if m["name"] == name {
			s, _ := m["value"].(string)
			return s
		}
	}
	return ""
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// titles are the embed titles of Discord messages.
func titles(t *testing.T, ms []map[string]any) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprint(embed(t, m)["title"]))
	}
	return out
}

// checkEmbed compares an embed's title, description, color and fields.
func checkEmbed(t *testing.T, which string, e map[string]any, title, description string, color int, fields ...string) {
	t.Helper()
	if e["title"] != title || e["description"] != description || e["color"] != float64(color) || !slices.Equal(embedFields(e), fields) {
		t.Errorf("%s embed:\n  title %q description %q color %#x fields %q\nwant\n  title %q description %q color %#x fields %q",
			which, e["title"], e["description"], int(e["color"].(float64)), embedFields(e), title, description, color, fields)
	}
	if f, _ := e["footer"].(map[string]any); f["text"] != "CaptchaAI Pipeline Monitor" {
		t.Errorf("%s footer = %v", which, e["footer"])
	}
}

// TestAlertBalanceToDiscordAndSlack drives the provider's balance 12 → 8 →
// 1.5 → 20 with the built-in rules: a Discord subscription that mentions a
// role on critical alerts, and a Slack one, each receive exactly the
// warning, the escalation to critical (the only message with the role
// mention, allowing only that role) and the resolution, once.
func TestAlertBalanceToDiscordAndSlack(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			discord, slack := discordtest.New(t), slacktest.New(t)
			dsub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL(),
				"mention": "<@&" + alertRole + ">", "mention_on": []string{"critical"}})
			ssub := r.subscribe("ops slack", map[string]any{"type": "slack", "webhook_url": slack.URL()})
			for i, v := range []float64{12, 8, 1.5, 20} {
				step := time.Now()
				r.sim.SetBalance(v)
				r.waitBalance(v)
				probed := time.Since(step)
				discord.WaitAccepted(t, i, 20*time.Second)
				slack.WaitAccepted(t, i, 20*time.Second)
				t.Logf("balance %v: probed after %v, notified after %v", v, probed.Round(time.Millisecond), time.Since(step).Round(time.Millisecond))
			}
			r.settle(10, dsub, ssub)

			ms := discord.Messages()
			if len(ms) != 3 || len(discord.Requests()) != 3 {
				t.Fatalf("Discord got %d messages in %d requests: %q; want the warning, the escalation and the resolution", len(ms), len(discord.Requests()), titles(t, ms))
			}
			warn, crit, res := ms[0], ms[1], ms[2]
			checkEmbed(t, "warning", embed(t, warn), "💰 Balance Alert", "CaptchaAI balance is **$8.00**", colorWarning,
				"Threshold=$10.00", "Severity=WARNING")
			checkEmbed(t, "escalation", embed(t, crit), "💰 Balance Alert (WARNING → CRITICAL)", "CaptchaAI balance is **$1.50**", colorError,
				"Threshold=$2.00", "Severity=CRITICAL")
			rd, _ := embed(t, res)["description"].(string)
			checkEmbed(t, "resolution", embed(t, res), "✅ Resolved: Balance", rd, colorSuccess)
			if !strings.HasSuffix(rd, "`provider.balance`: $8.00 → $1.50 → $20.00 (first → worst → last)") || !strings.HasPrefix(rd, "Resolved after **") {
				t.Errorf("resolution description = %q", rd)
			}
			if warn["content"] != nil || jsonText(warn["allowed_mentions"]) != `{"parse":[]}` {
				t.Errorf("the warning mentions someone: content %v, allowed_mentions %s", warn["content"], jsonText(warn["allowed_mentions"]))
			}
			if crit["content"] != "<@&"+alertRole+">" || jsonText(crit["allowed_mentions"]) != `{"parse":[],"roles":["`+alertRole+`"]}` {
				t.Errorf("escalation: content %v, allowed_mentions %s; want the role only", crit["content"], jsonText(crit["allowed_mentions"]))
			}
			// The resolution keeps the alert's severity (critical), so
			// mention_on ["critical"] pings the role for it too.
			t.Logf("resolution: content %v, allowed_mentions %s", res["content"], jsonText(res["allowed_mentions"]))

			sm := slack.Messages()
			if len(sm) != 3 || len(slack.Requests()) != 3 {
				t.Fatalf("Slack got %d messages in %d requests, want 3: %v", len(sm), len(slack.Requests()), sm)
			}
			for i, want := range []string{"💰 Balance Alert — CaptchaAI balance is $8.00", "💰 Balance Alert (WARNING → CRITICAL) — CaptchaAI balance is $1.50", "✅ Resolved: Balance — Resolved after "} {
				if text, _ := sm[i]["text"].(string); !strings.HasPrefix(text, want) {
					t.Errorf("Slack message %d: %q, want %q…", i, text, want)
				}
			}

			as := r.alerts()
			if len(as) != 1 || as[0]["status"] != "resolved" || as[0]["first_value"] != 8.0 || as[0]["worst_value"] != 1.5 || as[0]["last_value"] != 20.0 {
				t.Errorf("alerts = %v, want one resolved balance alert, 8 → 1.5 → 20", as)
			}
			t.Logf("%s: three notifications each to Discord and Slack, nothing else, in %v", e.Name, time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestAlertBalanceProbeFailing: getbalance failing (every res.php answer a
// 500) raises the "Balance check failing" alert once, after three failed
// probes, and never a balance alert: a failed probe is no data, not a
// balance of 0. A good probe resolves it.
func TestAlertBalanceProbeFailing(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			discord := discordtest.New(t)
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			r.sim.SetBalance(50)
			r.waitBalance(50)

			r.sim.SetFaults(simulator.Faults{ResFailures: 1})
			discord.WaitAccepted(t, 1, 20*time.Second)
			// Many more failed probes and rounds: still the one alert.
			at := r.metrics()["carrier_provider_balance_probe_failures"]
			r.waitMetric("carrier_provider_balance_probe_failures", "ten more failed probes", 30*time.Second, func(v float64) bool { return v >= at+10 })
			r.settle(10, sub)
			if got := titles(t, discord.Messages()); len(got) != 1 || got[0] != "⚠️ Balance Check Failing" {
				t.Fatalf("while the probe fails Discord got %q, want only the balance-check alert", got)
			}
			fired := embed(t, discord.Messages()[0])
			if d, _ := fired["description"].(string); !strings.Contains(d, "balance check failed **") || embedField(fired, "Severity") != "WARNING" || embedField(fired, "Last Error") == "" {
				t.Errorf("balance-check alert = %v", fired)
			}
			if v := r.metrics()["carrier_provider_balance"]; v != 50 {
				t.Errorf("carrier_provider_balance = %v while failing, want the last good reading 50", v)
			}
			t.Logf("%v failed probes, one alert: %s", r.metrics()["carrier_provider_balance_probe_failures"], jsonText(fired))

			r.sim.SetFaults(simulator.Faults{})
			r.waitMetric("carrier_provider_balance_probe_failures", "a good probe", 20*time.Second, func(v float64) bool { return v == 0 })
			discord.WaitAccepted(t, 2, 20*time.Second)
			r.settle(10, sub)
			got := titles(t, discord.Messages())
			if len(got) != 2 || got[1] != "✅ Resolved: Balance check failing" {
				t.Fatalf("Discord got %q, want the balance-check alert and its resolution", got)
			}
			for _, a := range r.alerts() {
				if rule := r.c.Admin("GET", "/v1/alert-rules/"+a["rule_id"].(string), nil).Data(); rule["name"] != "Balance check failing" {
					t.Errorf("alert of rule %v: %v", rule["name"], a)
				}
			}
			t.Logf("%s: one alert and one resolution in %v", e.Name, time.Since(began).Round(time.Millisecond))
		})
	}
}

// shortErrorRateWindow gives the built-in "Error rate spike" rule a one-minute
// window, so that a test's tasks fill it.
func (r *alertRig) shortErrorRateWindow() {
	r.t.Helper()
	r.updateRule("Error rate spike", func(rule map[string]any) {
		rule["window"], rule["min_count"] = "1m", 10
	})
}

// taskBatch submits n tasks through the API, all decided by the simulator:
// refused of them are refused ERROR_BAD_PARAMETERS at submission (the
// first ones), unsolvable end ERROR_CAPTCHA_UNSOLVABLE (spread over the
// rest, or the last ones with last), the rest are solved. It waits until
// the error-rate rule has measured the whole batch: errors/total over
// everything submitted so far (*errs, *total).
func (r *alertRig) taskBatch(n, unsolvable, refused int, last bool, errs, total *int) {
	r.t.Helper()
	accepted := n - refused
	outs := make([]simulator.Outcome, accepted)
	for i := range outs {
		// Solved a little later, as a real provider would: after Carrier
		// has recorded the submission's answer.
		outs[i].Delay = 50 * time.Millisecond
		outs[i].Unsolvable = (i+1)*unsolvable/accepted > i*unsolvable/accepted
		if last {
			outs[i].Unsolvable = i >= accepted-unsolvable
		}
	}
	r.sim.SetNextOutcomes(outs...)
	r.sim.FailNextSubmits(refused, "ERROR_BAD_PARAMETERS")
	for range n {
		resp := r.c.Admin("POST", "/v1/tasks", map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"}})
		if resp.Status != http.StatusAccepted {
			r.t.Fatalf("create task: %d %s", resp.Status, resp.Body)
		}
	}
	*errs += unsolvable + refused
	*total += n
	want := float64(*errs) / float64(*total)
	r.waitMetric(`carrier_alert_rule_value{item="",project="default",rule="Error rate spike"}`, fmt.Sprintf("an error rate of %d/%d", *errs, *total),
		60*time.Second, func(v float64) bool { return math.Abs(v-want) < 1e-9 })
}

var (
	spikeDescription = regexp.MustCompile(`^Error rate: \*\*([0-9.]+)%\*\* \((\d+)/(\d+)\)$`)
	breakdownLine    = regexp.MustCompile("^• `([A-Z_]+)`: (\\d+)$")
	recoveredPattern = regexp.MustCompile(`^Solve rate recovered: ([0-9.]+)% → ([0-9.]+)%$`)
)

// TestAlertErrorSpikeAndRecovery: tasks decided by the simulator at an
// error rate of 2 %, then 30 %, then 2 % again raise exactly one "Error
// rate spike" with the breakdown by error code, and one recovery with the
// solve rates before and after.
func TestAlertErrorSpikeAndRecovery(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			r.shortErrorRateWindow()
			discord := discordtest.New(t)
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			var errs, total int

			r.taskBatch(50, 1, 0, false, &errs, &total) // 2 %: 1/50
			if n := len(discord.Accepted()); n != 0 {
				t.Fatalf("at 2%% Discord got %q", titles(t, discord.Messages()))
			}
			r.taskBatch(50, 10, 5, false, &errs, &total) // 30 %: 16/100 so far
			discord.WaitAccepted(t, 1, 30*time.Second)
			t.Logf("spike: %d/%d after %v", errs, total, time.Since(began).Round(time.Millisecond))
			r.taskBatch(100, 2, 0, false, &errs, &total) // 2 %: 18/200 so far, below the 10 % that clears
			discord.WaitAccepted(t, 2, 30*time.Second)
			r.settle(10, sub)

			ms := discord.Messages()
			if got := titles(t, ms); len(got) != 2 || got[0] != "⚠️ Error Rate Spike" || got[1] != "✅ Pipeline Recovered" {
				t.Fatalf("Discord got %q, want one spike and one recovery", got)
			}
			spike := embed(t, ms[0])
			desc, _ := spike["description"].(string)
			m := spikeDescription.FindStringSubmatch(desc)
			if m == nil || spike["color"] != float64(colorError) {
				t.Fatalf("spike = %v", spike)
			}
			rate, _ := strconv.ParseFloat(m[1], 64)
			bad, _ := strconv.Atoi(m[2])
			all, _ := strconv.Atoi(m[3])
			if rate <= 15 || all < 10 || math.Abs(rate-100*float64(bad)/float64(all)) > 0.05 {
				t.Errorf("spike: %s, want a rate above 15%% of at least 10 tasks", desc)
			}
			codes := map[string]int{}
			sum := 0
			for _, line := range strings.Split(embedField(spike, "Error Breakdown"), "\n") {
				lm := breakdownLine.FindStringSubmatch(line)
				if lm == nil {
					t.Fatalf("breakdown line %q in %v", line, embedFields(spike))
				}
				n, _ := strconv.Atoi(lm[2])
				codes[lm[1]] = n
				sum += n
			}
			if sum != bad || codes["ERROR_CAPTCHA_UNSOLVABLE"] == 0 || len(codes) > 2 || embedField(spike, "Window") != "Last minute" {
				t.Errorf("spike breakdown %v (sum %d, errors %d), fields %q", codes, sum, bad, embedFields(spike))
			}
			rec := embed(t, ms[1])
			rdesc, _ := rec["description"].(string)
			rm := recoveredPattern.FindStringSubmatch(rdesc)
			if rm == nil || rec["color"] != float64(colorSuccess) {
				t.Fatalf("recovery = %v", rec)
			}
			before, _ := strconv.ParseFloat(rm[1], 64)
			after, _ := strconv.ParseFloat(rm[2], 64)
			if before >= 85 || after < 90 {
				t.Errorf("recovery %q: want the worst solve rate (below 85%%) → the rate it recovered to (at least 90%%)", rdesc)
			}
			as := r.alerts()
			if len(as) != 1 || as[0]["status"] != "resolved" {
				t.Errorf("alerts = %v, want one resolved", as)
			}
			t.Logf("%s: spike %q %v, recovery %q; %d tasks in %v", e.Name, desc, codes, rdesc, total, time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestAlertErrorRateHoveringDoesNotFlap: an error rate that goes back and
// forth across the 15 % threshold (14 %, 16 %, 14.4 %, 15.3 %, 14.3 %,
// 15.5 %) raises the spike once and neither resolves it (it clears at 10 %)
// nor says it flaps.
func TestAlertErrorRateHoveringDoesNotFlap(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			r.shortErrorRateWindow()
			discord := discordtest.New(t)
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			var errs, total int
			var rates []string
			for i, b := range [][2]int{{50, 7}, {50, 9}, {25, 2}, {25, 5}, {25, 2}, {25, 6}} {
				// The first batch's errors come last, so that its first
				// dozen results alone do not read 2/13 and fire early.
				r.taskBatch(b[0], b[1], 0, i == 0, &errs, &total)
				rates = append(rates, fmt.Sprintf("%.1f%%", 100*float64(errs)/float64(total)))
			}
			r.settle(10, sub)
			if got := titles(t, discord.Messages()); len(got) != 1 || got[0] != "⚠️ Error Rate Spike" {
				t.Fatalf("rates %v: Discord got %q, want the one spike", rates, got)
			}
			as := r.alerts()
			if len(as) != 1 || as[0]["status"] != "firing" || as[0]["flapping"] != false {
				t.Errorf("alerts = %v, want one, firing, not flapping", as)
			}
			t.Logf("%s: rates %v, one alert, in %v", e.Name, rates, time.Since(began).Round(time.Millisecond))
		})
	}
}

// slowEndpoint answers every request after *delay.
func slowEndpoint(t *testing.T, delay *atomic.Int64) *apptest.Endpoint {
	return apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
		time.Sleep(time.Duration(delay.Load()))
		w.WriteHeader(http.StatusOK)
	})
}

var (
	backupDescription = regexp.MustCompile(`^Queue depth: \*\*(\d+)\*\* pending tasks$`)
	drainRate         = regexp.MustCompile(`^([0-9.]+)/(s|min)$`)
	drainSpan         = regexp.MustCompile(`^(\d+) (s|min)$|^(\d+) h( \d+ min)?$|^\d+(\.\d+)?s$`)
	// "`subscription.drain_time`: 1 min → 1 min → 3.8s (first → worst → last)"
	resolvedDrainTimes = regexp.MustCompile("`subscription.drain_time`: (.+) → (.+) → ([0-9.]+)s \\(first → worst → last\\)$")
)

// queueBackupRule is the built-in "Queue backup" rule's shape with small
// thresholds: more than 20 s to drain at the rate of the last minute, clear
// at 5 s, for the given subscriptions.
func queueBackupRule(items ...string) map[string]any {
	return map[string]any{"name": "Queue backup", "metric": "subscription.drain_time", "window": "1m", "items": items,
		"tiers": []map[string]any{{"severity": "warning", "fire": 20, "clear": 5}}}
}

// TestAlertQueueBackupSlowEndpoint: a backlog of 300 events behind an
// endpoint that takes 200 ms an event, one at a time, raises "Queue backup"
// with the depth, the drain rate Carrier observed and the time the backlog
// takes to drain at that rate; once the endpoint is fast again and the
// backlog drained, it resolves. Each once.
func TestAlertQueueBackupSlowEndpoint(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{noDefaults: true, noProvider: true,
				dispatch: func(d *dispatch.Config) { d.LaneConcurrency = 1 }})
			var delay atomic.Int64
			delay.Store(int64(200 * time.Millisecond))
			slow := slowEndpoint(t, &delay)
			sid := r.subscription(map[string]any{"name": "slow", "event_types": []string{"load.*"}, "timeout_seconds": 30,
				"destination": map[string]any{"type": "webhook", "url": slow.URL}})
			discord := discordtest.New(t)
			dsub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			r.createRule(queueBackupRule(sid))
			const events = 300
			for i := range events {
				r.c.Publish(apptest.AdminKey, map[string]any{"type": "load.item", "subject": fmt.Sprint("item-", i), "data": map[string]any{"i": i}})
			}
			t.Logf("published %d events in %v", events, time.Since(began).Round(time.Millisecond))

			discord.WaitAccepted(t, 1, 60*time.Second)
			fired := time.Now()
			reqs := slow.Requests()
			actual := 0.0
			if n := len(reqs); n > 1 {
				actual = float64(n-1) / reqs[n-1].At.Sub(reqs[0].At).Seconds()
			}
			backup := embed(t, discord.Messages()[0])
			t.Logf("fired after %v, %d delivered (%.1f/s actual): %q %q", fired.Sub(began).Round(time.Millisecond), len(reqs), actual, backup["description"], embedFields(backup))
			dm := backupDescription.FindStringSubmatch(fmt.Sprint(backup["description"]))
			rm := drainRate.FindStringSubmatch(embedField(backup, "Drain Rate"))
			sm := drainSpan.FindStringSubmatch(embedField(backup, "Est. Drain Time"))
			if backup["title"] != "📊 Queue Backup" || dm == nil || rm == nil || sm == nil || embedField(backup, "Queue") != "slow" || backup["color"] != float64(colorWarning) {
				t.Fatalf("queue backup = %v, want the depth, a drain rate and a drain time", backup)
			}
			depth, _ := strconv.Atoi(dm[1])
			rate, _ := strconv.ParseFloat(rm[1], 64)
			if rm[2] == "min" {
				rate /= 60
			}
			if depth <= 0 || depth >= events || rate <= 0 || rate > 2*actual+1 {
				t.Errorf("depth %d, rate %v/s (actual %.1f/s)", depth, rate, actual)
			}
			// The estimate is the depth at the rate shown (as rounded for display).
			eta, _ := strconv.ParseFloat(sm[1]+sm[3], 64)
			switch {
			case sm[2] == "min":
				eta *= 60
			case sm[3] != "":
				eta *= 3600
			}
			if want := float64(depth) / rate; eta < want/2 || eta > want*2 {
				t.Errorf("Est. Drain Time %q for %d at %v/s (%.0f s)", embedField(backup, "Est. Drain Time"), depth, rate, want)
			}

			delay.Store(0) // the endpoint recovers
			discord.WaitAccepted(t, 2, 60*time.Second)
			t.Logf("resolved %v after the endpoint recovered", time.Since(fired).Round(time.Millisecond))
			r.settle(10, dsub, sid)
			ms := discord.Messages()
			if got := titles(t, ms); len(got) != 2 || got[1] != "✅ Resolved: Queue backup" {
				t.Fatalf("Discord got %q, want the backup and its resolution", got)
			}
			res := embed(t, ms[1])
			// It resolves once the drain time is back at 5 s (the clear).
			vm := resolvedDrainTimes.FindStringSubmatch(fmt.Sprint(res["description"]))
			if vm == nil || res["color"] != float64(colorSuccess) {
				t.Fatalf("resolution = %v", res)
			}
			if last, _ := strconv.ParseFloat(vm[3], 64); last > 5 || !drainSpan.MatchString(vm[1]) || !drainSpan.MatchString(vm[2]) {
				t.Errorf("resolution %q: want the first and worst drain times and a last one of at most 5 s", res["description"])
			}
			if n := len(slow.Requests()); n < events {
				t.Errorf("the endpoint got %d requests, want all %d events", n, events)
			}
			t.Logf("%s: %q; in %v", e.Name, res["description"], time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestAlertQueueBackupHangingEndpoint: a backlog behind an endpoint that
// hangs does not drain at all. "Queue backup" says so ("not draining"),
// and, once the endpoint answers again and the backlog drained, resolves;
// the resolution's first → worst → last must read as drain times.
// (It once stood for "not draining" with math.MaxFloat64 seconds, which
// overflowed when rendered; a backlog that does not drain now measures as
// the age of its oldest delivery.)
func TestAlertQueueBackupHangingEndpoint(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{noDefaults: true, noProvider: true})
			release := make(chan struct{})
			hang := apptest.NewEndpoint(t, func(_ int, _ apptest.Request, w http.ResponseWriter) {
				select {
				case <-release:
				case <-time.After(50 * time.Second):
				}
				w.WriteHeader(http.StatusOK)
			})
			released := false
			t.Cleanup(func() {
				if !released {
					close(release)
				}
			})
			hid := r.subscription(map[string]any{"name": "hanging", "event_types": []string{"load.*"}, "timeout_seconds": 60,
				"destination": map[string]any{"type": "webhook", "url": hang.URL}})
			discord := discordtest.New(t)
			dsub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			r.createRule(queueBackupRule(hid))
			const events = 30
			for i := range events {
				r.c.Publish(apptest.AdminKey, map[string]any{"type": "load.item", "subject": fmt.Sprint("item-", i), "data": map[string]any{"i": i}})
			}
			discord.WaitAccepted(t, 1, 60*time.Second)
			backup := embed(t, discord.Messages()[0])
			t.Logf("fired after %v: %q %q", time.Since(began).Round(time.Millisecond), backup["description"], embedFields(backup))
			if backup["title"] != "📊 Queue Backup" || embedField(backup, "Est. Drain Time") != "not draining" || embedField(backup, "Drain Rate") != "0/s" {
				t.Errorf("queue backup = %v, want it not draining", backup)
			}

			close(release)
			released = true
			discord.WaitAccepted(t, 2, 60*time.Second)
			r.settle(10, dsub, hid)
			ms := discord.Messages()
			if got := titles(t, ms); len(got) != 2 || got[1] != "✅ Resolved: Queue backup" {
				t.Fatalf("Discord got %q, want the backup and its resolution", got)
			}
			d := fmt.Sprint(embed(t, ms[1])["description"])
			t.Logf("%s: resolution %q, in %v", e.Name, d, time.Since(began).Round(time.Millisecond))
			if strings.Contains(d, "-") || strings.Contains(d, "2562047 h") {
				t.Errorf("the resolution renders \"not draining\" as a drain time: %q", d)
			}
		})
	}
}

// TestAlertNotificationsWaitOutDiscordRateLimit: while the Discord
// stand-in answers 429 with retry_after, the balance warning, escalation
// and resolution are each retried after the wait it asked for and arrive
// exactly once; the throttling is not held against the endpoint.
func TestAlertNotificationsWaitOutDiscordRateLimit(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			discord := discordtest.New(t)
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL(),
				"mention": "<@&" + alertRole + ">", "mention_on": []string{"critical"}})
			r.sim.SetBalance(12)
			r.waitBalance(12)
			discord.Throttle(3 * time.Second)
			for _, v := range []float64{8, 1.5, 20} {
				r.sim.SetBalance(v)
				r.waitBalance(v)
				// The notifications wait behind Discord's 429s, so wait for
				// the evaluator to have seen this balance instead: without it a
				// loaded machine can go from 8 to 1.5 between two rounds, and
				// the warning is (rightly) never sent.
				r.settle(3)
			}
			discord.WaitAccepted(t, 3, 60*time.Second)
			r.settle(10, sub)

			accepted := discord.AcceptedRequests()
			got := titles(t, discord.Messages())
			want := []string{"💰 Balance Alert", "💰 Balance Alert (WARNING → CRITICAL)", "✅ Resolved: Balance"}
			sorted := slices.Clone(got)
			slices.Sort(sorted)
			wantSorted := slices.Clone(want)
			slices.Sort(wantSorted)
			if !slices.Equal(sorted, wantSorted) {
				t.Fatalf("Discord accepted %q, want each of %q once", got, want)
			}
			// Each message was first refused with a 429 and then sent again
			// no earlier than the retry_after it was given.
			for _, a := range accepted {
				var first *discordtest.Request
				for _, q := range discord.Requests() {
					if q.Status == http.StatusTooManyRequests && bytes.Equal(q.Body, a.Body) {
						first = &q
						break
					}
				}
				if first == nil {
					t.Errorf("%s was accepted without a 429 first", a.Body)
					continue
				}
				wait := time.Duration(first.RetryAfter * float64(time.Second))
				if a.At.Before(first.At.Add(wait - 100*time.Millisecond)) {
					t.Errorf("sent again %v after a 429 asking for %v", a.At.Sub(first.At), wait)
				}
				t.Logf("429 (retry_after %.3fs), accepted %v later", first.RetryAfter, a.At.Sub(first.At).Round(time.Millisecond))
			}
			t.Logf("order of arrival %q; %d 429s", got, discord.Throttled())
			s := r.c.Admin("GET", "/v1/subscriptions/"+sub, nil).Data()
			if s["is_active"] != true || s["consecutive_failures"] != 0.0 || s["failed_deliveries"] != 0.0 {
				t.Errorf("subscription after the 429s: active %v, consecutive failures %v, failed %v", s["is_active"], s["consecutive_failures"], s["failed_deliveries"])
			}
			t.Logf("%s: in %v", e.Name, time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestAlertQueueBackupIgnoresOneThrottledNotification: a Discord
// subscription that has been idle for a while (longer than a sample bucket)
// gets one alert, which Discord throttles for three seconds. One delivery
// waiting out a 429 is not a queue backup: Discord gets the balance warning
// and nothing else.
// (The drain time once counted such a subscription as not draining at all
// and fired at once; it is now at least the oldest delivery's age, which a
// 429 of a few seconds does not come near.)
func TestAlertQueueBackupIgnoresOneThrottledNotification(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := startAlertRig(t, e, alertRigOptions{})
			discord := discordtest.New(t)
			created := time.Now()
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			r.sim.SetBalance(50)
			r.waitBalance(50)
			// Let the subscription be idle until its first delivery-count
			// sample (written by the first round after it was created, in
			// the sample bucket of that round) is a bucket old: from then
			// on the drain rate is measured.
			idle := created.Add(300 * time.Millisecond).Truncate(alert.SampleBucket).Add(alert.SampleBucket + time.Second)
			apptest.Eventually(t, 30*time.Second, "the subscription idle for a sample bucket", func() bool { return time.Now().After(idle) })
			discord.Throttle(3 * time.Second)
			r.sim.SetBalance(8)
			r.waitBalance(8)
			discord.WaitAccepted(t, 1, 30*time.Second)
			r.settle(20, sub)
			got := titles(t, discord.Messages())
			t.Logf("%s: Discord got %q in %v", e.Name, got, time.Since(began).Round(time.Millisecond))
			if len(got) != 1 || got[0] != "💰 Balance Alert" {
				t.Errorf("Discord got %q, want only the balance warning", got)
			}
		})
	}
}

// TestAlertDeadLettersIgnoresRedrivenPingbacks: tasks the provider solves
// at once, so that their pingbacks arrive before Carrier has recorded the
// submission's answer. Carrier keeps each such pingback as a dead letter
// and redrives it as soon as the answer is recorded (internal/task: "a
// pingback that beat the submit answer"), so no dead letter is left over
// and the built-in "Dead letters" rule has nothing to say.
// (The rule once counted redriven dead letters too; it counts those not
// redriven, and waits 30 s before firing.)
func TestAlertDeadLettersIgnoresRedrivenPingbacks(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			r := startAlertRig(t, e, alertRigOptions{})
			discord := discordtest.New(t)
			sub := r.subscribe("ops discord", map[string]any{"type": "discord", "webhook_url": discord.URL()})
			r.sim.SetNextOutcomes(make([]simulator.Outcome, 20)...) // solved at once
			for range 20 {
				if resp := r.c.Admin("POST", "/v1/tasks", map[string]any{"method": "userrecaptcha", "params": map[string]string{"googlekey": "6Le-test", "pageurl": "https://example.com/login"}}); resp.Status != http.StatusAccepted {
					t.Fatalf("create task: %d %s", resp.Status, resp.Body)
				}
			}
			apptest.Eventually(t, 30*time.Second, "20 tasks solved", func() bool {
				return len(r.c.Admin("GET", "/v1/tasks?status=solved&limit=100", nil).List()) == 20
			})
			r.settle(10, sub)
			dls := r.c.Admin("GET", "/v1/dead-letters?limit=100", nil).List()
			pending := 0
			for _, d := range dls {
				if d["status"] != "redriven" {
					pending++
				}
			}
			t.Logf("%s: %d dead letters, %d not redriven; Discord got %q", e.Name, len(dls), pending, titles(t, discord.Messages()))
			if len(dls) == 0 {
				t.Skip("no pingback beat its submission's answer this time")
			}
			if pending != 0 {
				t.Fatalf("%d dead letters were not redriven", pending)
			}
			if got := titles(t, discord.Messages()); len(got) != 0 {
				t.Errorf("Discord got %q for %d dead letters all redriven at once, want nothing", got, len(dls))
			}
		})
	}
}
