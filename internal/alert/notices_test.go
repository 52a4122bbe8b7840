package alert

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The source document's three example messages, and its other two.
func TestNoticesFromTheSource(t *testing.T) {
	cases := []struct {
		name string
		got  Notice
		want Notice
	}{
		{
			name: "balance alert",
			got:  BalanceNotice("CaptchaAI", 8.42, 10, SeverityWarning, "captchaai.com"),
			want: Notice{
				Title:       "💰 Balance Alert",
				Description: "CaptchaAI balance is **$8.42**",
				Color:       ColorWarning,
				Fields: []NoticeField{
					{Name: "Threshold", Value: "$10.00", Inline: true},
					{Name: "Severity", Value: "WARNING", Inline: true},
					{Name: "Action", Value: "Top up your balance at captchaai.com", Inline: false},
				},
			},
		},
		{
			name: "error spike",
			got: ErrorSpikeNotice(45.0/200, 45, 200,
				CodeCounts(map[string]int{"TIMEOUT": 15, "ERROR_CAPTCHA_UNSOLVABLE": 30}), 5*time.Minute),
			want: Notice{
				Title:       "\u26a0\ufe0f Error Rate Spike",
				Description: "Error rate: **22.5%** (45/200)",
				Color:       ColorError,
				Fields: []NoticeField{
					{Name: "Error Breakdown", Value: "• `ERROR_CAPTCHA_UNSOLVABLE`: 30\n• `TIMEOUT`: 15", Inline: false},
					{Name: "Window", Value: "Last 5 minutes", Inline: true},
				},
			},
		},
		{
			name: "daily summary",
			got: DailySummaryNotice(DailyStats{
				Total: 12450, SuccessRate: 0.952, AvgLatency: 22400 * time.Millisecond,
				Cost: 37.35, CostKnown: true, Errors: 598, Balance: 142.30, BalanceKnown: true, PeakQueue: 87,
			}, ""),
			want: Notice{
				Title:       "📈 Daily CAPTCHA Summary",
				Description: "**12450** tasks processed",
				Color:       ColorSuccess,
				Fields: []NoticeField{
					{Name: "Success Rate", Value: "95.2%", Inline: true},
					{Name: "Avg Latency", Value: "22.4s", Inline: true},
					{Name: "Total Cost", Value: "$37.35", Inline: true},
					{Name: "Errors", Value: "598", Inline: true},
					{Name: "Balance", Value: "$142.30", Inline: true},
					{Name: "Peak Queue", Value: "87", Inline: true},
				},
			},
		},
		{
			name: "queue backup",
			got:  QueueBackupNotice("", 1200, 6.25, 192*time.Second),
			want: Notice{
				Title:       "📊 Queue Backup",
				Description: "Queue depth: **1200** pending tasks",
				Color:       ColorWarning,
				Fields: []NoticeField{
					{Name: "Drain Rate", Value: "6.2/s", Inline: true},
					{Name: "Est. Drain Time", Value: "3 min", Inline: true},
				},
			},
		},
		{
			name: "recovered",
			got:  RecoveredNotice("", 0.71, 0.98),
			want: Notice{
				Title:       "✅ Pipeline Recovered",
				Description: "Solve rate recovered: 71.0% → 98.0%",
				Color:       ColorSuccess,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Fatalf("got\n%s\nwant\n%s", showNotice(c.got), showNotice(c.want))
			}
		})
	}
}

func TestNoticeEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		got  Notice
		want Notice
	}{
		{
			name: "critical balance without a site",
			got:  BalanceNotice("", 1.5, 2, SeverityCritical, ""),
			want: Notice{
				Title:       "💰 Balance Alert",
				Description: "Balance is **$1.50**",
				Color:       ColorError,
				Fields: []NoticeField{
					{Name: "Threshold", Value: "$2.00", Inline: true},
					{Name: "Severity", Value: "CRITICAL", Inline: true},
				},
			},
		},
		{
			name: "error spike without breakdown or total",
			got:  ErrorSpikeNotice(0, 0, 0, nil, 90*time.Second),
			want: Notice{
				Title:       "⚠️ Error Rate Spike",
				Description: "Error rate: **0.0%** (0/0)",
				Color:       ColorError,
				Fields: []NoticeField{
					{Name: "Error Breakdown", Value: "No details"},
					{Name: "Window", Value: "Last 90 seconds", Inline: true},
				},
			},
		},
		{
			name: "error spike, rate unknown, no window, a code-less error",
			got:  ErrorSpikeNotice(math.NaN(), 3, 0, []CodeCount{{Code: "", Count: 3}}, 0),
			want: Notice{
				Title:       "⚠️ Error Rate Spike",
				Description: "Error rate: **n/a** (3/0)",
				Color:       ColorError,
				Fields:      []NoticeField{{Name: "Error Breakdown", Value: "• (no code): 3"}},
			},
		},
		{
			name: "queue not draining",
			got:  QueueBackupNotice("deliveries", 5000, 0, -1),
			want: Notice{
				Title:       "📊 Queue Backup",
				Description: "Queue depth: **5000** pending tasks",
				Color:       ColorWarning,
				Fields: []NoticeField{
					{Name: "Queue", Value: "deliveries", Inline: true},
					{Name: "Drain Rate", Value: "0/s", Inline: true},
					{Name: "Est. Drain Time", Value: "not draining", Inline: true},
				},
			},
		},
		{
			name: "daily summary, poor day, cost and balance unknown",
			got:  DailySummaryNotice(DailyStats{Total: 100, SuccessRate: 0.92, AvgLatency: 31 * time.Second, Errors: 8, PeakQueue: 3}, "2026-03-29"),
			want: Notice{
				Title:       "📈 Daily CAPTCHA Summary — 2026-03-29",
				Description: "**100** tasks processed",
				Color:       ColorWarning,
				Fields: []NoticeField{
					{Name: "Success Rate", Value: "92.0%", Inline: true},
					{Name: "Avg Latency", Value: "31.0s", Inline: true},
					{Name: "Total Cost", Value: "n/a", Inline: true},
					{Name: "Errors", Value: "8", Inline: true},
					{Name: "Balance", Value: "n/a", Inline: true},
					{Name: "Peak Queue", Value: "3", Inline: true},
				},
			},
		},
		{
			name: "resolved ratio",
			got:  ResolvedNotice("High error rate", "task.error_rate", 0.225, 0.31, 0.09, 12*time.Minute, "%"),
			want: Notice{
				Title:       "✅ Resolved: High error rate",
				Description: "Resolved after **12 min**.\n`task.error_rate`: 22.5% → 31.0% → 9.0% (first → worst → last)",
				Color:       ColorSuccess,
			},
		},
		{
			name: "resolved without a name or duration",
			got:  ResolvedNotice("", "provider.balance", 8.42, 1.5, 25, 0, "$"),
			want: Notice{
				Title:       "✅ Resolved: provider.balance",
				Description: "`provider.balance`: $8.42 → $1.50 → $25.00 (first → worst → last)",
				Color:       ColorSuccess,
			},
		},
		{
			name: "firing count",
			got:  FiringNotice("Backlog", "subscription.backlog", SeverityCritical, 1200, 1000, ""),
			want: Notice{
				Title:       "🚨 Alert: Backlog",
				Description: "`subscription.backlog` is **1200**",
				Color:       ColorError,
				Fields: []NoticeField{
					{Name: "Threshold", Value: "1000", Inline: true},
					{Name: "Severity", Value: "CRITICAL", Inline: true},
				},
			},
		},
		{
			name: "firing seconds, no data",
			got:  FiringNotice("Slow solves", "task.latency", SeverityWarning, math.NaN(), 45, "s"),
			want: Notice{
				Title:       "⚠️ Alert: Slow solves",
				Description: "`task.latency` is **n/a**",
				Color:       ColorWarning,
				Fields: []NoticeField{
					{Name: "Threshold", Value: "45.0s", Inline: true},
					{Name: "Severity", Value: "WARNING", Inline: true},
				},
			},
		},
		{
			name: "flapping",
			got:  FlappingNotice("High error rate", 6, time.Hour),
			want: Notice{
				Title:       "🔁 Flapping: High error rate",
				Description: "Changed state **6** times in the last hour.",
				Color:       ColorWarning,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Fatalf("got\n%s\nwant\n%s", showNotice(c.got), showNotice(c.want))
			}
		})
	}
}

func TestErrorSpikeBreakdownIsBounded(t *testing.T) {
	var codes []CodeCount
	for i := 0; i < 25; i++ {
		codes = append(codes, CodeCount{Code: "E" + strings.Repeat("X", i), Count: 100 - i})
	}
	n := ErrorSpikeNotice(0.5, 100, 200, codes, time.Minute)
	lines := strings.Split(n.Fields[0].Value, "\n")
	if got, want := len(lines), MaxBreakdownLines+1; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	rest := 0
	for _, c := range codes[MaxBreakdownLines:] {
		rest += c.Count
	}
	if got, want := lines[MaxBreakdownLines], "• 15 more codes: "+strconv.Itoa(rest); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := n.Fields[1].Value, "Last minute"; got != want {
		t.Errorf("window: got %q, want %q", got, want)
	}
}

func TestNoticeFormats(t *testing.T) {
	windows := map[time.Duration]string{
		5 * time.Minute:                    "Last 5 minutes",
		time.Hour:                          "Last hour",
		90 * time.Second:                   "Last 90 seconds",
		90 * time.Minute:                   "Last 90 minutes",
		2 * time.Hour:                      "Last 2 hours",
		24 * time.Hour:                     "Last day",
		48 * time.Hour:                     "Last 2 days",
		time.Second:                        "Last second",
		1500 * time.Millisecond:            "Last 2 seconds",
		300 * time.Millisecond:             "Last 300ms",
		time.Minute + 500*time.Microsecond: "Last minute",
	}
	for d, want := range windows {
		if got := noticeWindow(d); got != want {
			t.Errorf("noticeWindow(%s): got %q, want %q", d, got, want)
		}
	}
	spans := map[time.Duration]string{
		0:                                     "0 s",
		45 * time.Second:                      "45 s",
		59*time.Second + 600*time.Millisecond: "1 min",
		3 * time.Minute:                       "3 min",
		192 * time.Second:                     "3 min",
		59*time.Minute + 40*time.Second:       "1 h",
		2*time.Hour + 5*time.Minute:           "2 h 5 min",
		26 * time.Hour:                        "26 h",
	}
	for d, want := range spans {
		if got := noticeSpan(d); got != want {
			t.Errorf("noticeSpan(%s): got %q, want %q", d, got, want)
		}
	}
	rates := map[float64]string{12.5: "12.5/s", 1: "1.0/s", 0.01: "0.6/min", 0: "0/s", -3: "0/s", math.Inf(1): "n/a"}
	for r, want := range rates {
		if got := noticeRate(r); got != want {
			t.Errorf("noticeRate(%v): got %q, want %q", r, got, want)
		}
	}
	values := []struct {
		v    float64
		unit string
		want string
	}{
		{0.225, "%", "22.5%"},
		{0.0005, "%", "0.1%"}, // Python: f"{0.0005:.1%}" == "0.1%"
		{8.42, "$", "$8.42"},
		{-1.5, "$", "$-1.50"}, // as Python's f"${-1.5:.2f}"
		{22.4, "s", "22.4s"},
		{3600, "s", "1 h"},
		{1200, "", "1200"},
		{2.5, "", "2.5"},
		{1.005, "", "1"},
		{-0.001, "", "0"},
		{7, "tasks", "7 tasks"},
		{math.NaN(), "$", "n/a"},
	}
	for _, c := range values {
		if got := noticeValue(c.v, c.unit); got != c.want {
			t.Errorf("noticeValue(%v, %q): got %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}

func TestMonitorFooter(t *testing.T) {
	for provider, want := range map[string]string{"CaptchaAI": "CaptchaAI Pipeline Monitor", " ": "Carrier Pipeline Monitor"} {
		if got := MonitorFooter(provider); got != want {
			t.Errorf("MonitorFooter(%q): got %q, want %q", provider, got, want)
		}
	}
}

func TestCodeCountsOrder(t *testing.T) {
	got := CodeCounts(map[string]int{"B": 2, "A": 2, "C": 9, "D": 1})
	want := []CodeCount{{"C", 9}, {"A", 2}, {"B", 2}, {"D", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// The JSON names are what the destinations decode (dest.Notice).
func TestNoticeJSON(t *testing.T) {
	n := BalanceNotice("CaptchaAI", 8.42, 10, SeverityWarning, "")
	n.Footer = MonitorFooter("CaptchaAI")
	b, err := json.Marshal(EventData{Severity: SeverityWarning, Notice: n})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Notice map[string]any `json:"notice"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"color":"warning","description":"CaptchaAI balance is **$8.42**","fields":[{"inline":true,"name":"Threshold","value":"$10.00"},{"inline":true,"name":"Severity","value":"WARNING"}],"footer":"CaptchaAI Pipeline Monitor","title":"💰 Balance Alert"}`
	gotJSON, _ := json.Marshal(got.Notice)
	if string(gotJSON) != wantJSON {
		t.Fatalf("got %s, want %s", gotJSON, wantJSON)
	}
}

func showNotice(n Notice) string {
	b, _ := json.MarshalIndent(n, "", "  ")
	return string(b)
}
