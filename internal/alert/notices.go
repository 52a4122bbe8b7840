package alert

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The builders below write the Notice of each alert the source document
// (003, Discord alerts for a CAPTCHA pipeline) describes, with its titles,
// bold markers, field names, value formats and colors, so that every chat
// and email destination shows the same message. They are pure: figures in,
// Notice out. Numbers are formatted as the source's Python does: a ratio
// with ":.1%" (0.225 → "22.5%"), money with "$%.2f", counts without a
// thousands separator. The footer is left to the caller (MonitorFooter
// writes the source's), who knows the provider's name.

// MaxBreakdownLines is how many error codes an error spike lists; the rest
// are summed up in one more line, so the field stays readable (and within
// Discord's 1024 characters) however many codes there are.
const MaxBreakdownLines = 10

// CodeCount is how often one error code occurred.
type CodeCount struct {
	Code  string
	Count int
}

// CodeCounts orders a breakdown such as EventData.Details'
// {"ERROR_CAPTCHA_UNSOLVABLE": 30, "TIMEOUT": 15} for ErrorSpikeNotice:
// largest count first, codes alphabetically among equal counts (so the
// order never depends on map iteration).
func CodeCounts(m map[string]int) []CodeCount {
	out := make([]CodeCount, 0, len(m))
	for code, n := range m {
		out = append(out, CodeCount{Code: code, Count: n})
	}
	slices.SortFunc(out, func(a, b CodeCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// DailyStats are the figures of a daily summary. Cost and Balance are shown
// as "n/a" unless CostKnown and BalanceKnown say they were measured.
type DailyStats struct {
	Total        int
	SuccessRate  float64 // 0..1
	AvgLatency   time.Duration
	Cost         float64
	CostKnown    bool
	Errors       int
	Balance      float64
	BalanceKnown bool
	PeakQueue    int
}

// MonitorFooter is the footer the source puts under every message,
// "<provider> Pipeline Monitor" ("CaptchaAI Pipeline Monitor"); without a
// provider name it is "Carrier Pipeline Monitor".
func MonitorFooter(provider string) string {
	provider = strings.TrimSpace(provider)
	if provider == "" {
		provider = "Carrier"
	}
	return provider + " Pipeline Monitor"
}

// BalanceNotice is the source's "💰 Balance Alert": the provider's balance
// in the description, the threshold and the severity (Carrier's "warning"
// or "critical", shown in capitals) as inline fields, and, when site is not
// empty, where to top up. A critical alert has the error color, any other
// the warning color.
func BalanceNotice(provider string, balance, threshold float64, severity, site string) Notice {
	desc := "Balance is **" + noticeMoney(balance) + "**"
	if p := strings.TrimSpace(provider); p != "" {
		desc = p + " balance is **" + noticeMoney(balance) + "**"
	}
	fields := []NoticeField{
		{Name: "Threshold", Value: noticeMoney(threshold), Inline: true},
		{Name: "Severity", Value: noticeSeverity(severity), Inline: true},
	}
	if s := strings.TrimSpace(site); s != "" {
		fields = append(fields, NoticeField{Name: "Action", Value: "Top up your balance at " + s})
	}
	color := ColorWarning
	if severity == SeverityCritical {
		color = ColorError
	}
	return Notice{Title: "💰 Balance Alert", Description: desc, Color: color, Fields: fields}
}

// ErrorSpikeNotice is the source's "⚠️ Error Rate Spike": the error rate
// and errors/total in the description, the breakdown by error code (in the
// order given, at most MaxBreakdownLines lines, "No details" when there is
// none) and the window the rate was measured over ("Last 5 minutes"; left
// out when window is not positive).
func ErrorSpikeNotice(rate float64, errors, total int, breakdown []CodeCount, window time.Duration) Notice {
	var lines []string
	rest, restCodes := 0, 0
	for i, c := range breakdown {
		if i >= MaxBreakdownLines {
			rest += c.Count
			restCodes++
			continue
		}
		code := "`" + strings.ReplaceAll(c.Code, "`", "'") + "`"
		if strings.TrimSpace(c.Code) == "" {
			code = "(no code)"
		}
		lines = append(lines, fmt.Sprintf("• %s: %d", code, c.Count))
	}
	if restCodes > 0 {
		lines = append(lines, fmt.Sprintf("• %d more codes: %d", restCodes, rest))
	}
	list := strings.Join(lines, "\n")
	if list == "" {
		list = "No details"
	}
	fields := []NoticeField{{Name: "Error Breakdown", Value: list}}
	if window > 0 {
		fields = append(fields, NoticeField{Name: "Window", Value: noticeWindow(window), Inline: true})
	}
	return Notice{
		Title:       "⚠️ Error Rate Spike",
		Description: fmt.Sprintf("Error rate: **%s** (%d/%d)", noticePercent(rate), errors, total),
		Color:       ColorError,
		Fields:      fields,
	}
}

// QueueBackupNotice is the source's "📊 Queue Backup": the depth in the
// description and, instead of the source's depth ÷ active workers, the
// drain rate Carrier observed and the time the backlog takes to drain at
// that rate (drainTime < 0: it is not draining). name, when not empty, is
// shown as a first "Queue" field.
func QueueBackupNotice(name string, depth int, drainRatePerSecond float64, drainTime time.Duration) Notice {
	var fields []NoticeField
	if n := strings.TrimSpace(name); n != "" {
		fields = append(fields, NoticeField{Name: "Queue", Value: n, Inline: true})
	}
	eta := "not draining"
	if drainTime >= 0 {
		eta = noticeSpan(drainTime)
	}
	fields = append(fields,
		NoticeField{Name: "Drain Rate", Value: noticeRate(drainRatePerSecond), Inline: true},
		NoticeField{Name: "Est. Drain Time", Value: eta, Inline: true},
	)
	return Notice{
		Title:       "📊 Queue Backup",
		Description: fmt.Sprintf("Queue depth: **%d** pending tasks", depth),
		Color:       ColorWarning,
		Fields:      fields,
	}
}

// DailySummaryNotice is the source's "📈 Daily CAPTCHA Summary" of one day
// (such as "2026-03-29", added to the title so that the summaries of
// different days are told apart; "" leaves the source's title): the task
// count in the description and six inline fields. It has the success color
// when the success rate is above 92 %, else the warning color.
func DailySummaryNotice(stats DailyStats, day string) Notice {
	title := "📈 Daily CAPTCHA Summary"
	if d := strings.TrimSpace(day); d != "" {
		title += " — " + d
	}
	cost, balance := "n/a", "n/a"
	if stats.CostKnown {
		cost = noticeMoney(stats.Cost)
	}
	if stats.BalanceKnown {
		balance = noticeMoney(stats.Balance)
	}
	color := ColorWarning
	if stats.SuccessRate > 0.92 {
		color = ColorSuccess
	}
	return Notice{
		Title:       title,
		Description: fmt.Sprintf("**%d** tasks processed", stats.Total),
		Color:       color,
		Fields: []NoticeField{
			{Name: "Success Rate", Value: noticePercent(stats.SuccessRate), Inline: true},
			{Name: "Avg Latency", Value: fmt.Sprintf("%.1fs", stats.AvgLatency.Seconds()), Inline: true},
			{Name: "Total Cost", Value: cost, Inline: true},
			{Name: "Errors", Value: strconv.Itoa(stats.Errors), Inline: true},
			{Name: "Balance", Value: balance, Inline: true},
			{Name: "Peak Queue", Value: strconv.Itoa(stats.PeakQueue), Inline: true},
		},
	}
}

// RecoveredNotice is the source's "✅ Pipeline Recovered": the solve rate
// before and after, as ratios. title replaces the source's title when it
// is not empty.
func RecoveredNotice(title string, previous, current float64) Notice {
	if strings.TrimSpace(title) == "" {
		title = "✅ Pipeline Recovered"
	}
	return Notice{
		Title:       title,
		Description: "Solve rate recovered: " + noticePercent(previous) + " → " + noticePercent(current),
		Color:       ColorSuccess,
	}
}

// ResolvedNotice is the notice of any resolved alert, "✅ Resolved: <rule>":
// how long it lasted (left out when lasted is not positive) and the
// metric's first, worst and last values, formatted for unit (a rule's
// Unit: "$", "%" for a ratio, "s", or "" for a count; NaN is "n/a").
func ResolvedNotice(ruleName, metric string, first, worst, last float64, lasted time.Duration, unit string) Notice {
	var b strings.Builder
	if lasted > 0 {
		b.WriteString("Resolved after **" + noticeSpan(lasted) + "**.\n")
	}
	label := "Value"
	if m := strings.TrimSpace(metric); m != "" {
		label = "`" + m + "`"
	}
	fmt.Fprintf(&b, "%s: %s → %s → %s (first → worst → last)", label,
		noticeValue(first, unit), noticeValue(worst, unit), noticeValue(last, unit))
	return Notice{
		Title:       noticeTitle("✅ Resolved", ruleName, metric),
		Description: b.String(),
		Color:       ColorSuccess,
	}
}

// FiringNotice is the notice of a firing alert whose rule has no builder of
// its own: "🚨 <rule>" (critical) or "⚠️ <rule>", the metric's value in the
// description, the threshold and the severity as inline fields, colored as
// BalanceNotice is. Values are formatted for unit, as in ResolvedNotice.
func FiringNotice(ruleName, metric, severity string, value, threshold float64, unit string) Notice {
	label := "Value"
	if m := strings.TrimSpace(metric); m != "" {
		label = "`" + m + "`"
	}
	title, color := "⚠️ Alert", ColorWarning
	switch severity {
	case SeverityCritical:
		title, color = "🚨 Alert", ColorError
	case SeverityInfo:
		title, color = "ℹ️ Alert", ColorInfo
	}
	return Notice{
		Title:       noticeTitle(title, ruleName, metric),
		Description: label + " is **" + noticeValue(value, unit) + "**",
		Color:       color,
		Fields: []NoticeField{
			{Name: "Threshold", Value: noticeValue(threshold, unit), Inline: true},
			{Name: "Severity", Value: noticeSeverity(severity), Inline: true},
		},
	}
}

// FlappingNotice says that an alert keeps firing and resolving:
// "🔁 Flapping: <rule>", how many transitions within which window.
func FlappingNotice(ruleName string, transitions int, window time.Duration) Notice {
	desc := fmt.Sprintf("Changed state **%d** times", transitions)
	if window > 0 {
		desc += " in the " + strings.ToLower(noticeWindow(window))
	}
	return Notice{
		Title:       noticeTitle("🔁 Flapping", ruleName, ""),
		Description: desc + ".",
		Color:       ColorWarning,
	}
}

// noticeTitle is "<prefix>: <rule>", the metric standing in for a rule
// without a name, and prefix alone without either.
func noticeTitle(prefix, ruleName, metric string) string {
	name := strings.TrimSpace(ruleName)
	if name == "" {
		name = strings.TrimSpace(metric)
	}
	if name == "" {
		return prefix
	}
	return prefix + ": " + name
}

// noticeSeverity is a severity as the source shows it, in capitals.
func noticeSeverity(s string) string {
	if s = strings.ToUpper(strings.TrimSpace(s)); s == "" {
		return "UNKNOWN"
	}
	return s
}

// noticePercent formats a ratio as Python's "{:.1%}": 0.225 → "22.5%".
func noticePercent(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
}

// noticeMoney formats an amount as the source's "${:.2f}": 8.42 → "$8.42".
func noticeMoney(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return "$" + strconv.FormatFloat(v, 'f', 2, 64)
}

// noticeRate is a drain rate: "12.5/s", or per minute below one a second
// ("0.6/min") so that a slow drain does not read as "0.0/s".
func noticeRate(perSecond float64) string {
	switch {
	case math.IsNaN(perSecond) || math.IsInf(perSecond, 0):
		return "n/a"
	case perSecond <= 0:
		return "0/s"
	case perSecond < 1:
		return strconv.FormatFloat(perSecond*60, 'f', 1, 64) + "/min"
	}
	return strconv.FormatFloat(perSecond, 'f', 1, 64) + "/s"
}

// noticeSpan is a duration as the source's drain time writes it: "45 s",
// "3 min", "2 h 5 min", rounded to the unit shown.
func noticeSpan(d time.Duration) string {
	switch {
	case d < time.Minute-time.Second/2:
		return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + " s"
	case d < time.Hour-30*time.Second:
		return strconv.Itoa(int(d.Round(time.Minute)/time.Minute)) + " min"
	}
	d = d.Round(time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return strconv.Itoa(h) + " h"
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// noticeWindow is a measuring window in words: "Last 5 minutes", "Last
// hour", "Last 90 seconds", "Last 2 days", in the largest unit that divides
// it (a window that is not a whole number of seconds is rounded to one).
func noticeWindow(d time.Duration) string {
	if r := d.Round(time.Second); r > 0 {
		d = r
	}
	units := []struct {
		size        time.Duration
		one, plural string
	}{
		{24 * time.Hour, "day", "days"},
		{time.Hour, "hour", "hours"},
		{time.Minute, "minute", "minutes"},
		{time.Second, "second", "seconds"},
	}
	for _, u := range units {
		if d >= u.size && d%u.size == 0 {
			if n := int64(d / u.size); n != 1 {
				return "Last " + strconv.FormatInt(n, 10) + " " + u.plural
			}
			return "Last " + u.one
		}
	}
	return "Last " + d.String()
}

// noticeValue formats a rule's value for its unit: "$" money, "%" a ratio
// as a percentage, "s" seconds ("22.4s", or a span such as "3 min" from a
// minute on), "" a count or plain number; any other unit follows the
// number. NaN (no data) is "n/a".
func noticeValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	switch unit {
	case "$":
		return noticeMoney(v)
	case "%":
		return noticePercent(v)
	case "s":
		if math.Abs(v) < 60 {
			return strconv.FormatFloat(v, 'f', 1, 64) + "s"
		}
		return noticeSpan(time.Duration(v * float64(time.Second)))
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}
