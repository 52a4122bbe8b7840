package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/alert"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// bench is one engine's store, a project, a clock the test moves and an
// evaluator over them.
type bench struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	now time.Time
	ev  *alert.Evaluator
	svc *alert.Service
}

func newBench(t *testing.T, e storetest.Engine, start time.Time) *bench {
	st := e.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	b := &bench{t: t, ctx: ctx, st: st, now: start}
	clock := func() time.Time { return b.now }
	b.ev = &alert.Evaluator{Store: st, Now: clock, Provider: "CaptchaAI", ProviderSite: "captchaai.com"}
	b.svc = &alert.Service{Store: st, Now: clock}
	return b
}

func (b *bench) rule(r alert.Rule) alert.Rule {
	b.t.Helper()
	r.Enabled = true
	got, err := b.svc.Create(b.ctx, "p", r)
	if err != nil {
		b.t.Fatal(err)
	}
	return got
}

func (b *bench) round() {
	b.t.Helper()
	if err := b.ev.Round(b.ctx); err != nil {
		b.t.Fatal(err)
	}
}

// sent takes the notifications written to the outbox since the last call,
// as "type severity" strings, with their data.
func (b *bench) sent() ([]string, []alert.EventData) {
	b.t.Helper()
	rows, err := b.st.ClaimOutbox(b.ctx, "test", time.Hour, b.now.Add(24*time.Hour), 100)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	var data []alert.EventData
	for _, r := range rows {
		var d alert.EventData
		if err := json.Unmarshal(r.Data, &d); err != nil {
			b.t.Fatal(err)
		}
		s := r.Type + " " + d.Severity
		if d.PreviousSeverity != "" {
			s += "<-" + d.PreviousSeverity
		}
		out = append(out, s)
		data = append(data, d)
		if err := b.st.DeleteOutbox(b.ctx, r.ID); err != nil {
			b.t.Fatal(err)
		}
	}
	return out, data
}

func (b *bench) balance(v float64, ok bool) {
	b.t.Helper()
	g := store.Gauge{Name: alert.GaugeBalance, Item: alert.ProviderItem, Value: v, OK: ok, ObservedAt: b.now}
	if !ok {
		g.Error = "provider unreachable"
	}
	if _, err := b.st.RecordProbe(b.ctx, g); err != nil {
		b.t.Fatal(err)
	}
}

// task stores a task of project p decided at the current time, created
// latency before.
func (b *bench) task(status, code string, latency time.Duration, cost string) {
	b.t.Helper()
	done := b.now
	t := store.Task{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: "p", Method: "userrecaptcha", Params: map[string]string{}, Status: status,
		ErrorCode: code, Cost: cost, CreatedAt: done.Add(-latency), UpdatedAt: done, CompletedAt: &done, ExpiresAt: done.Add(time.Hour)}
	if err := b.st.CreateTask(b.ctx, t); err != nil {
		b.t.Fatal(err)
	}
}

func f(v float64) *float64 { return &v }

func TestBalanceWarningEscalationResolution(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Defaults()[0]) // Balance: warning below 10, critical below 2
			var all []string
			var datas []alert.EventData
			for _, v := range []float64{12, 8, 8, 1.5, 1.5, 20} {
				b.balance(v, true)
				b.round()
				got, d := b.sent()
				all = append(all, got...)
				datas = append(datas, d...)
				b.now = b.now.Add(time.Minute)
			}
			want := []string{"alert.firing warning", "alert.firing critical<-warning", "alert.resolved critical"}
			if strings.Join(all, ",") != strings.Join(want, ",") {
				t.Fatalf("got %v, want %v", all, want)
			}
			if n := datas[0].Notice; n.Title != "💰 Balance Alert" || n.Description != "CaptchaAI balance is **$8.00**" || n.Footer != "CaptchaAI Pipeline Monitor" {
				t.Errorf("warning notice = %+v", n)
			}
			r := datas[2]
			if *r.FirstValue != 8 || *r.WorstValue != 1.5 || *r.LastValue != 20 || r.DurationSeconds != 240 {
				t.Errorf("resolved: first %v worst %v last %v lasted %vs, want 8, 1.5, 20, 240s", *r.FirstValue, *r.WorstValue, *r.LastValue, r.DurationSeconds)
			}
			// One alert, ended, with its transitions and the events they caused.
			as, err := b.svc.Alerts(b.ctx, store.AlertFilter{ProjectID: "p"})
			if err != nil || len(as) != 1 || as[0].Status != "resolved" || as[0].EndedAt == nil {
				t.Fatalf("alerts = %+v, %v; want one resolved", as, err)
			}
			_, ts, err := b.svc.Alert(b.ctx, "p", as[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			var path []string
			for _, tr := range ts {
				path = append(path, tr.From+">"+tr.To+":"+tr.EventType)
			}
			if got := strings.Join(path, " "); got != "normal>firing:alert.firing firing>firing:alert.firing firing>resolved:alert.resolved" {
				t.Errorf("transitions = %s", got)
			}
		})
	}
}

func TestFailingProbeIsNoDataAndItsOwnAlert(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Defaults()[0])
			b.rule(alert.Defaults()[1]) // balance check failing: three in a row
			b.balance(50, true)
			b.round()
			var all []string
			for range 4 {
				b.balance(0, false)
				b.round()
				got, _ := b.sent()
				all = append(all, got...)
				b.now = b.now.Add(time.Minute)
			}
			// Never a balance alert (no fake balance of 0), once the probe alert.
			if strings.Join(all, ",") != "alert.firing warning" {
				t.Fatalf("got %v, want one probe alert", all)
			}
			gs, _ := b.st.ListGauges(b.ctx, alert.GaugeBalance)
			if len(gs) != 1 || gs[0].Value != 50 || gs[0].Failures != 4 {
				t.Errorf("gauge = %+v, want the last good value 50 and 4 failures", gs)
			}
			b.balance(50, true)
			b.round()
			got, _ := b.sent()
			if strings.Join(got, ",") != "alert.resolved warning" {
				t.Errorf("after a good probe: %v, want the probe alert resolved", got)
			}
		})
	}
}

func TestErrorSpikeOnceWithBreakdownAndRecovery(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Defaults()[2]) // error rate over 15% in 5 minutes, more than 10 results
			// Each minute 40 results at a given error rate; the 5-minute
			// window sees the last five minutes.
			rates := []float64{0.02, 0.02, 0.30, 0.30, 0.30, 0.30, 0.30, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02}
			var all []string
			var datas []alert.EventData
			for _, rate := range rates {
				errs := int(math.Round(rate * 40))
				for i := range 40 {
					switch {
					case i < errs*2/3:
						b.task(store.TaskFailed, "ERROR_CAPTCHA_UNSOLVABLE", 20*time.Second, "")
					case i < errs:
						b.task(store.TaskFailed, "TIMEOUT", 20*time.Second, "")
					default:
						b.task(store.TaskSolved, "", 20*time.Second, "0.003")
					}
				}
				b.now = b.now.Add(time.Second)
				b.round()
				got, d := b.sent()
				all = append(all, got...)
				datas = append(datas, d...)
				b.now = b.now.Add(time.Minute - time.Second)
			}
			if strings.Join(all, ",") != "alert.firing critical,alert.resolved critical" {
				t.Fatalf("got %v, want one spike and one recovery", all)
			}
			spike := datas[0].Notice
			if spike.Title != "⚠️ Error Rate Spike" || !strings.Contains(spike.Fields[0].Value, "`ERROR_CAPTCHA_UNSOLVABLE`") || !strings.Contains(spike.Fields[0].Value, "`TIMEOUT`") {
				t.Errorf("spike notice = %+v", spike)
			}
			rec := datas[1].Notice
			if rec.Title != "✅ Pipeline Recovered" || !strings.Contains(rec.Description, "→") {
				t.Errorf("recovery notice = %+v", rec)
			}
		})
	}
}

func TestEventRuleFiresOncePerEventAndResolves(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Defaults()[4]) // endpoint disabled, resolved by endpoint.recovered
			b.now = b.now.Add(time.Second)
			publish := func(typ, subject string) {
				ev := store.Event{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: "p", Type: typ, Subject: subject,
					Data:       json.RawMessage(`{"webhook_id":"` + subject + `","reason":"endpoint returned 410 Gone","consecutive_failures":3}`),
					Attributes: map[string]string{}, CreatedAt: b.now}
				if _, err := b.st.InsertEvents(b.ctx, []store.NewEvent{{Event: ev}}, b.now.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			publish("webhook.disabled", "sub-1")
			publish("webhook.disabled", "sub-2")
			b.round()
			b.round() // nothing new: nothing sent again
			got, d := b.sent()
			if strings.Join(got, ",") != "alert.firing critical,alert.firing critical" {
				t.Fatalf("got %v, want one alert per disabled endpoint", got)
			}
			if d[0].Item != "sub-1" || d[0].Notice.Fields[0].Value != "endpoint returned 410 Gone" {
				t.Errorf("first alert = %+v", d[0])
			}
			b.now = b.now.Add(time.Minute)
			publish("endpoint.recovered", "sub-1")
			b.round()
			got, _ = b.sent()
			if strings.Join(got, ",") != "alert.resolved critical" {
				t.Fatalf("after recovery: %v", got)
			}
			cur, _ := b.svc.Alerts(b.ctx, store.AlertFilter{ProjectID: "p", Current: true})
			if len(cur) != 1 || cur[0].Item != "sub-2" {
				t.Errorf("current alerts = %+v, want sub-2's only", cur)
			}
		})
	}
}

// TestDailySummaryAcrossDST: the daily summary at 09:00 Europe/Berlin is
// sent once per local day, covers exactly the local day before (23 hours
// on the day clocks go forward), and its figures are those the test counts
// from the same tasks.
func TestDailySummaryAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			// 2026-03-29 is the spring-forward day in Berlin (02:00 → 03:00).
			b := newBench(t, e, time.Date(2026, 3, 27, 12, 0, 0, 0, berlin))
			b.rule(alert.Rule{Name: "Daily", Kind: alert.KindSchedule, Schedule: &alert.Schedule{At: "09:00", TimeZone: "Europe/Berlin"}})
			b.balance(142.30, true)
			type day struct{ total, solved int }
			want := map[string]*day{}
			var reports []alert.DailyReport
			end := time.Date(2026, 3, 31, 10, 0, 0, 0, berlin)
			n := 0
			for b.now.Before(end) && n < 2000 {
				n++
				// One task every 20 minutes, every fifth failing.
				status, code, cost := store.TaskSolved, "", "0.002"
				if n%5 == 0 {
					status, code, cost = store.TaskFailed, "ERROR_CAPTCHA_UNSOLVABLE", ""
				}
				b.task(status, code, 22*time.Second, cost)
				// The local day that the report sent at 09:00 the next day covers.
				local := b.now.In(berlin)
				key := local.Format("2006-01-02")
				if local.Hour() < 9 {
					key = local.AddDate(0, 0, -1).Format("2006-01-02")
				}
				if want[key] == nil {
					want[key] = &day{}
				}
				want[key].total++
				if status == store.TaskSolved {
					want[key].solved++
				}
				b.now = b.now.Add(20 * time.Minute)
				b.round()
				rows, err := b.st.ClaimOutbox(b.ctx, "test", time.Hour, b.now.Add(24*time.Hour), 10)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					var rep alert.DailyReport
					if err := json.Unmarshal(r.Data, &rep); err != nil || r.Type != alert.EventDailyReport {
						t.Fatalf("row %s: %v", r.Type, err)
					}
					reports = append(reports, rep)
					b.st.DeleteOutbox(b.ctx, r.ID)
				}
			}
			var days []string
			for _, r := range reports {
				days = append(days, r.Day)
				w := want[r.Day]
				if w == nil {
					t.Fatalf("report for %s, which the test did not see", r.Day)
				}
				if r.Total != w.total || r.Solved != w.solved || math.Abs(r.SuccessRate-float64(w.solved)/float64(w.total)) > 1e-9 ||
					math.Abs(r.AvgLatencySeconds-22) > 1e-9 || math.Abs(r.Cost-0.002*float64(w.solved)) > 1e-9 || r.Balance == nil || *r.Balance != 142.30 {
					t.Errorf("report %s = total %d solved %d rate %v latency %v cost %v balance %v; want total %d solved %d",
						r.Day, r.Total, r.Solved, r.SuccessRate, r.AvgLatencySeconds, r.Cost, r.Balance, w.total, w.solved)
				}
				if hours := r.To.Sub(r.From).Hours(); (r.Day == "2026-03-28" && hours != 23) || (r.Day != "2026-03-28" && hours != 24) {
					t.Errorf("report %s covers %v hours", r.Day, hours)
				}
				if got := r.To.In(berlin).Format("15:04"); got != "09:00" {
					t.Errorf("report %s ends at %s local", r.Day, got)
				}
			}
			// Created on the 27th at noon: reports for the 27th … 30th, each once.
			if fmt.Sprint(days) != "[2026-03-27 2026-03-28 2026-03-29 2026-03-30]" {
				t.Errorf("reports for %v", days)
			}
		})
	}
}

func TestRuleValidationNamesTheField(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Now())
			_, err := b.svc.Create(b.ctx, "p", alert.Rule{Name: "x", Metric: "provider.balance", Tiers: []alert.Tier{{Severity: "warning", Fire: 10, Clear: f(5)}}})
			fe, ok := err.(*alert.FieldError)
			if !ok || fe.Field != "tiers[0].clear" {
				t.Fatalf("got %v, want a field error on tiers[0].clear", err)
			}
			if rs, _ := b.svc.List(b.ctx, "p"); len(rs) != 0 {
				t.Errorf("a refused rule was stored: %+v", rs)
			}
		})
	}
}

func TestSilenceHoldsBackAndReleases(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Defaults()[0])
			x, err := b.svc.CreateSilence(b.ctx, "p", alert.Silence{Matchers: []alert.Matcher{{Name: "rule", Op: "=~", Value: "Bal.*"}},
				EndsAt: b.now.Add(time.Hour), Comment: "topping up", CreatedBy: "ops"})
			if err != nil {
				t.Fatal(err)
			}
			step := func(v float64) []string {
				b.balance(v, true)
				b.round()
				got, _ := b.sent()
				b.now = b.now.Add(time.Minute)
				return got
			}
			if got := step(8); got != nil {
				t.Fatalf("under the silence: %v, want nothing", got)
			}
			as, _ := b.svc.Alerts(b.ctx, store.AlertFilter{ProjectID: "p", Current: true})
			_, ts, _ := b.svc.Alert(b.ctx, "p", as[0].ID)
			if len(ts) != 1 || ts[0].Note != "silenced by "+x.ID || ts[0].EventID != "" {
				t.Errorf("transitions = %+v, want one held back by the silence", ts)
			}
			if err := b.svc.ExpireSilence(b.ctx, "p", x.ID); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(step(8), ","); got != "alert.firing warning" {
				t.Fatalf("after the silence ended, still firing: %v, want it notified once", got)
			}
			if got := step(8); got != nil {
				t.Fatalf("then: %v, want nothing more", got)
			}
			if got := strings.Join(step(20), ","); got != "alert.resolved warning" {
				t.Fatalf("resolution: %v", got)
			}

			// An alert that fires and resolves under a silence is never told.
			if _, err := b.svc.CreateSilence(b.ctx, "p", alert.Silence{Matchers: []alert.Matcher{{Name: "severity", Value: "warning"}}, EndsAt: b.now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if got := append(step(8), step(20)...); len(got) != 0 {
				t.Fatalf("fired and resolved under a silence: %v, want nothing", got)
			}
		})
	}
}

func TestSilenceRefusesMatchAll(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Now())
			for _, tt := range []struct {
				x     alert.Silence
				field string
			}{
				{alert.Silence{EndsAt: b.now.Add(time.Hour)}, "matchers"},
				{alert.Silence{Matchers: []alert.Matcher{{Name: "rule", Op: "=~", Value: ".*"}}, EndsAt: b.now.Add(time.Hour)}, "matchers"},
				{alert.Silence{Matchers: []alert.Matcher{{Name: "colour", Value: "x"}}, EndsAt: b.now.Add(time.Hour)}, "matchers[0].name"},
				{alert.Silence{Matchers: []alert.Matcher{{Name: "rule", Op: "=~", Value: "("}}, EndsAt: b.now.Add(time.Hour)}, "matchers[0].op"},
				{alert.Silence{Matchers: []alert.Matcher{{Name: "rule", Value: "x"}}, EndsAt: b.now.Add(-time.Hour)}, "ends_at"},
			} {
				_, err := b.svc.CreateSilence(b.ctx, "p", tt.x)
				if fe, ok := err.(*alert.FieldError); !ok || fe.Field != tt.field {
					t.Errorf("%+v: got %v, want an error on %s", tt.x, err, tt.field)
				}
			}
			if xs, _ := b.svc.Silences(b.ctx, "p"); len(xs) != 0 {
				t.Errorf("refused silences were stored: %+v", xs)
			}
		})
	}
}

func TestCriticalInhibitsWarningOfTheSameItem(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			// Two rules on the balance: a warning-only one created first, then a critical-only one.
			b.rule(alert.Rule{Name: "low", Metric: "provider.balance", Tiers: []alert.Tier{{Severity: "warning", Fire: 10}}})
			b.rule(alert.Rule{Name: "very low", Metric: "provider.balance", Tiers: []alert.Tier{{Severity: "critical", Fire: 2}}})
			b.balance(1, true)
			b.round()
			got, d := b.sent()
			if strings.Join(got, ",") != "alert.firing critical" || d[0].Rule != "very low" {
				t.Fatalf("got %v, want only the critical alert", got)
			}
			// Critical clears, warning still holds: now the warning is told.
			b.now = b.now.Add(time.Minute)
			b.balance(5, true)
			b.round()
			got, _ = b.sent()
			if strings.Join(got, ",") != "alert.resolved critical,alert.firing warning" && strings.Join(got, ",") != "alert.firing warning,alert.resolved critical" {
				t.Fatalf("got %v, want the critical resolved and the warning told", got)
			}
		})
	}
}

func TestQueueBacklogPerQueue(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			b := newBench(t, e, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			b.rule(alert.Rule{Name: "queue backlog", Metric: "queue.backlog", Tiers: []alert.Tier{{Severity: "warning", Fire: 5, Clear: f(1)}}})
			for _, name := range []string{"busy", "quiet"} {
				q := store.Queue{ID: name, ProjectID: "p", Name: name, VisibilityTimeout: time.Minute, Retention: 24 * time.Hour, CreatedAt: b.now}
				if err := b.st.CreateQueue(b.ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			var msgs []store.QueueMessage
			for i := range 8 {
				msgs = append(msgs, store.QueueMessage{ID: fmt.Sprintf("m%d", i), Body: "x", Attributes: map[string]string{},
					SentAt: b.now, VisibleAt: b.now, ExpiresAt: b.now.Add(time.Hour)})
			}
			if _, err := b.st.SendMessages(b.ctx, "p", "busy", msgs); err != nil {
				t.Fatal(err)
			}
			b.round()
			got, d := b.sent()
			if strings.Join(got, ",") != "alert.firing warning" || d[0].Item != "busy" || *d[0].Value != 8 {
				t.Fatalf("got %v %+v, want the busy queue's alert at 8", got, d)
			}
		})
	}
}
