package alert

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

// run steps r through values, one per minute, and returns the notifications
// as "type severity[<-previous][ repeat]" strings.
func run(t *testing.T, r Rule, values []any) []string {
	t.Helper()
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s State
	var got []string
	for _, v := range values {
		x := Sample{}
		switch v := v.(type) {
		case float64:
			x = Sample{OK: true, Value: v}
		case time.Duration: // let time pass without a sample
			now = now.Add(v)
			continue
		}
		var ns []Notification
		s, ns = Step(r, s, x, now)
		for _, n := range ns {
			d := n.Type + " " + n.Severity
			if n.PreviousSeverity != "" {
				d += "<-" + n.PreviousSeverity
			}
			if n.Repeat {
				d += " repeat"
			}
			got = append(got, d)
		}
		now = now.Add(time.Minute)
	}
	return got
}

func balanceRule() Rule {
	return Rule{Name: "balance", Metric: "provider.balance", Tiers: []Tier{
		{Severity: SeverityCritical, Fire: 2, Clear: f(3)},
		{Severity: SeverityWarning, Fire: 10, Clear: f(11)},
	}}
}

func errorRateRule() Rule {
	return Rule{Name: "errors", Metric: "task.error_rate", Window: Duration(5 * time.Minute), MinCount: 10,
		Tiers: []Tier{{Severity: SeverityCritical, Fire: 0.15, Clear: f(0.10)}}}
}

func TestStep(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name   string
		rule   Rule
		values []any
		want   []string
	}{
		{"balance 12 → 8 → 1.5 → 20: warning, escalation, resolution", balanceRule(),
			[]any{12.0, 8.0, 8.0, 1.5, 1.5, 20.0, 20.0},
			[]string{"alert.firing warning", "alert.firing critical<-warning", "alert.resolved critical"}},
		{"critical clears into warning: de-escalation", balanceRule(),
			[]any{1.0, 2.5, 5.0, 10.5, 11.0},
			[]string{"alert.firing critical", "alert.firing warning<-critical", "alert.resolved warning"}},
		{"straight to critical from normal", balanceRule(), []any{50.0, 0.5, 50.0},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"error rate 2% → 30% → 2%", errorRateRule(), []any{0.02, 0.30, 0.30, 0.02},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"a rate hovering at the threshold does not flap", errorRateRule(),
			[]any{0.02, 0.16, 0.14, 0.16, 0.14, 0.155, 0.11, 0.16, 0.02},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"no data keeps the state", errorRateRule(), []any{0.3, nil, nil, 0.02},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"repeat only after the repeat interval", errorRateRule(), []any{0.3, 0.3, hour, 0.3, hour, 0.3, 0.3, 2 * hour, 0.3, 0.02},
			[]string{"alert.firing critical", "alert.firing critical repeat", "alert.resolved critical"}},
		{"pending period: a short spike never fires", func() Rule { r := errorRateRule(); r.PendingFor = Duration(3 * time.Minute); return r }(),
			[]any{0.3, 0.3, 0.02, 0.3, 0.3, 0.3, 0.3, 0.02},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"recovery period: a dip does not resolve", func() Rule { r := errorRateRule(); r.RecoverFor = Duration(3 * time.Minute); return r }(),
			[]any{0.3, 0.02, 0.3, 0.02, 0.02, 0.02, 0.02, 0.02},
			[]string{"alert.firing critical", "alert.resolved critical"}},
		{"no threshold crossed, nothing sent", balanceRule(), []any{12.0, 11.0, 10.0, 10.5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, tt.rule, tt.values)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestStepNoDataOKAndAlert(t *testing.T) {
	r := errorRateRule()
	r.NoData = NoDataOK
	if got := run(t, r, []any{0.3, nil}); fmt.Sprint(got) != "[alert.firing critical alert.resolved critical]" {
		t.Errorf("no_data ok: got %v", got)
	}
	r = balanceRule()
	r.NoData = NoDataAlert
	if got := run(t, r, []any{nil, 20.0}); fmt.Sprint(got) != "[alert.firing warning alert.resolved warning]" {
		t.Errorf("no_data alert: got %v", got)
	}
}

func TestStepFlapping(t *testing.T) {
	// Without hysteresis a rate that flips every minute is reported once as
	// flapping, then nothing until it settles, then its settled state.
	r := Rule{Name: "flappy", Metric: "task.error_rate", Window: Duration(5 * time.Minute), Tiers: []Tier{{Severity: SeverityWarning, Fire: 0.15}}}
	var values []any
	for i := 0; i < 20; i++ {
		values = append(values, 0.3, 0.02)
	}
	values = append(values, 2*time.Hour, 0.02)
	got := run(t, r, values)
	want := []string{"alert.firing warning", "alert.resolved warning", "alert.firing warning", "alert.resolved warning", "alert.flapping warning"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestStepResolvedCarriesFirstWorstLast(t *testing.T) {
	r := errorRateRule()
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var s State
	for i, v := range []float64{0.2, 0.71, 0.4, 0.12, 0.02} {
		s, _ = Step(r, s, Sample{OK: true, Value: v}, now.Add(time.Duration(i)*time.Minute))
	}
	if s.Status != StatusNormal || *s.First != 0.2 || *s.Worst != 0.71 || *s.Last != 0.02 || !s.StartedAt.Equal(now) {
		t.Errorf("got status %s first %v worst %v last %v started %v", s.Status, *s.First, *s.Worst, *s.Last, s.StartedAt)
	}
}

func TestNormalizeRefuses(t *testing.T) {
	tests := []struct {
		rule  Rule
		field string
	}{
		{Rule{Metric: "provider.balance", Tiers: []Tier{{Severity: "warning", Fire: 10}}}, "name"},
		{Rule{Name: "x", Metric: "nope"}, "metric"},
		{Rule{Name: "x", Metric: "provider.balance", Kind: KindRatio}, "kind"},
		{Rule{Name: "x", Metric: "provider.balance"}, "tiers"},
		{Rule{Name: "x", Metric: "provider.balance", Tiers: []Tier{{Severity: "loud", Fire: 10}}}, "tiers[0].severity"},
		{Rule{Name: "x", Metric: "provider.balance", Tiers: []Tier{{Severity: "warning", Fire: 10, Clear: f(9)}}}, "tiers[0].clear"},
		{Rule{Name: "x", Metric: "provider.balance", Tiers: []Tier{{Severity: "warning", Fire: 10}, {Severity: "critical", Fire: 2}}}, "tiers[1].severity"},
		{Rule{Name: "x", Metric: "provider.balance", Tiers: []Tier{{Severity: "critical", Fire: 10}, {Severity: "warning", Fire: 2}}}, "tiers[1].fire"},
		{Rule{Name: "x", Metric: "task.error_rate", Tiers: []Tier{{Severity: "warning", Fire: 0.1}}}, "window"},
		{Rule{Name: "x", Metric: "provider.balance", RepeatInterval: Duration(time.Minute), Tiers: []Tier{{Severity: "warning", Fire: 10}}}, "repeat_interval"},
		{Rule{Name: "x", Kind: KindEvent}, "event"},
		{Rule{Name: "x", Kind: KindSchedule, Schedule: &Schedule{At: "25:00", TimeZone: "UTC"}}, "schedule.at"},
		{Rule{Name: "x", Kind: KindSchedule, Schedule: &Schedule{At: "09:00", TimeZone: "Mars/Olympus"}}, "schedule.time_zone"},
		{Rule{Name: "x", Metric: "task.latency", Window: Duration(time.Hour), Quantile: 1.5, Tiers: []Tier{{Severity: "warning", Fire: 10}}}, "quantile"},
	}
	for _, tt := range tests {
		err := tt.rule.Normalize()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tt.field {
			t.Errorf("%+v: got %v, want an error on %s", tt.rule, err, tt.field)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := dir + "/rules.json"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rules, err := LoadFile(write(`[{"project": "default", "name": "low", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": 10, "clear": 11}]},
		{"project": "default", "name": "off", "metric": "provider.balance", "enabled": false, "tiers": [{"severity": "warning", "fire": 5}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || !rules[0].Rule.Enabled || rules[1].Rule.Enabled || rules[0].Op != Below {
		t.Errorf("rules = %+v", rules)
	}
	for body, want := range map[string]string{
		`[{"name": "x", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": 10}]}]`:                             "rule 0: project: is required",
		`[{"project": "p", "name": "x", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": 10, "clear": 1}]}]`: `rule 0 ("x"): tiers[0].clear`,
		`[{"project": "p", "name": "x", "metric": "provider.balance", "colour": 1}]`:                                                `unknown field "colour"`,
		`[{"project": "p", "name": "x", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": 10}]},
		  {"project": "p", "name": "x", "metric": "provider.balance", "tiers": [{"severity": "warning", "fire": 10}]}]`: `rule 1: name: "x" appears twice`,
	} {
		_, err := LoadFile(write(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", body, err, want)
		}
	}
}
