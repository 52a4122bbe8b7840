package alert

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// DailyReport is the data of a report.daily event: the project's tasks
// decided in the local day that ended at To.
type DailyReport struct {
	RuleID      string    `json:"rule_id"`
	Rule        string    `json:"rule"`
	Day         string    `json:"day"` // the local date the report covers (YYYY-MM-DD)
	TimeZone    string    `json:"time_zone"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Total       int       `json:"total"`
	Solved      int       `json:"solved"`
	Errors      int       `json:"errors"`
	SuccessRate float64   `json:"success_rate"`
	// AvgLatencySeconds is the mean time from submission to solution of the solved tasks.
	AvgLatencySeconds float64        `json:"avg_latency_seconds"`
	Cost              float64        `json:"cost"`
	Balance           *float64       `json:"balance"`
	PeakQueue         int            `json:"peak_queue"`
	ErrorCodes        map[string]int `json:"error_codes,omitempty"`
	Notice            Notice         `json:"notice"`
	Severity          string         `json:"severity"`
}

// ScheduledAt returns the most recent time, at or before now, at which a
// schedule fires (its local time on the latest local day it has passed),
// and the time it fired the local day before. On a day the local time does
// not exist (a spring-forward gap) it fires at the same wall time shifted
// by the gap, as time.Date normalises it; on a day it exists twice it fires
// at the first.
func ScheduledAt(sch Schedule, now time.Time) (latest, previous time.Time, err error) {
	loc, err := time.LoadLocation(sch.TimeZone)
	if err != nil {
		return latest, previous, err
	}
	h, m, err := parseClock(sch.At)
	if err != nil {
		return latest, previous, err
	}
	local := now.In(loc)
	y, mo, d := local.Date()
	latest = time.Date(y, mo, d, h, m, 0, 0, loc)
	if latest.After(now) {
		latest = time.Date(y, mo, d-1, h, m, 0, 0, loc)
	}
	ly, lmo, ld := latest.Date()
	previous = time.Date(ly, lmo, ld-1, h, m, 0, 0, loc)
	return latest.UTC(), previous.UTC(), nil
}

// schedule evaluates a schedule rule: once per local day, at its time, it
// sends a report.daily for the day that ended. The cursor (the last time
// it reported for) moves in the report's transaction, so a report is sent
// once; if Carrier was down at that time it reports once when it is back,
// for the latest day only.
func (e *Evaluator) schedule(r Rule, m *measurements, cur store.AlertCursor, now time.Time) ([]store.AlertChange, store.AlertCursor, bool) {
	latest, previous, err := ScheduledAt(*r.Schedule, now)
	if err != nil {
		e.logf("alert rule %s: %v", r.ID, err)
		return nil, cur, false
	}
	if cur.RuleID == "" {
		cur = store.AlertCursor{RuleID: r.ID}
		if !r.CreatedAt.Before(latest) {
			// Created after today's time: the first report is the next one.
			cur.At = latest
			return nil, cur, true
		}
	}
	if !cur.At.Before(latest) {
		return nil, cur, false
	}
	rep, err := e.dailyReport(r, m, previous, latest)
	if err != nil {
		e.logf("alert rule %s: daily report: %v", r.ID, err)
		return nil, cur, false
	}
	data, _ := json.Marshal(rep)
	ev := store.OutboxEvent{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: r.ProjectID, Type: EventDailyReport, Subject: r.ID, Data: data,
		Attributes: map[string]string{"rule": r.Name, "severity": rep.Severity}, CreatedAt: now,
	}
	cur.At = latest
	return []store.AlertChange{{Events: []store.OutboxEvent{ev}}}, cur, true
}

// dailyReport sums the project's tasks decided in [from, to).
func (e *Evaluator) dailyReport(r Rule, m *measurements, from, to time.Time) (DailyReport, error) {
	counts, err := m.st.TaskOutcomes(m.ctx, from, to)
	if err != nil {
		return DailyReport{}, err
	}
	w := sumOutcomes(counts)[r.ProjectID]
	if w == nil {
		w = &taskWindow{Codes: map[string]int{}}
	}
	loc, _ := time.LoadLocation(r.Schedule.TimeZone)
	rep := DailyReport{
		RuleID: r.ID, Rule: r.Name, Day: from.In(loc).Format("2006-01-02"), TimeZone: r.Schedule.TimeZone,
		From: from, To: to, Total: w.Total, Solved: w.Solved, Errors: w.Errors, Cost: w.Cost, ErrorCodes: w.Codes,
		Severity: SeverityInfo,
	}
	if w.Total > 0 {
		rep.SuccessRate = float64(w.Solved) / float64(w.Total)
	}
	if w.Solved > 0 {
		rep.AvgLatencySeconds = w.Latency.Seconds() / float64(w.Solved)
	}
	g, ok := m.balance()
	if ok && g.OK {
		b := g.Value
		rep.Balance = &b
	}
	samples, err := m.st.SamplesSince(m.ctx, SeriesBacklog, from)
	if err != nil {
		return DailyReport{}, err
	}
	for _, x := range samples {
		if x.ProjectID == r.ProjectID && x.Bucket.Before(to) && int(x.Value) > rep.PeakQueue {
			rep.PeakQueue = int(x.Value)
		}
	}
	stats := DailyStats{
		Total: rep.Total, SuccessRate: rep.SuccessRate, AvgLatency: time.Duration(rep.AvgLatencySeconds * float64(time.Second)),
		Cost: rep.Cost, CostKnown: true, Errors: rep.Errors, PeakQueue: rep.PeakQueue,
	}
	if rep.Balance != nil {
		stats.Balance, stats.BalanceKnown = *rep.Balance, true
	}
	rep.Notice = DailySummaryNotice(stats, rep.Day)
	if rep.Notice.Footer == "" {
		rep.Notice.Footer = e.footer()
	}
	return rep, nil
}
