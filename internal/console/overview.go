package console

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"carrier/internal/store"
	"carrier/internal/subscription"
)

// stateCap bounds the counts the overview shows: past it, "10,000+".
const stateCap = 10000

type bar struct {
	X, Width          float64
	DeliveredY, FailY float64
	DeliveredH, FailH float64
	OtherY, OtherH    float64
	Label             string
	Delivered, Failed int64
	Other             int64
}

type overviewData struct {
	States        []store.StateCount
	OldestPending string
	Rate          string // success rate of the last hour
	P95           string // p95 attempt time of the latest deliveries
	Bars          []bar
	Max           int64
	Subscriptions int
	Disabled      []store.Subscription
	Alerts        []store.Alert
	Balance       *store.Gauge // the provider balance the prober last read; nil without tasks or a reading
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx, pid := r.Context(), project(r)
	var data overviewData
	var err error
	if data.States, err = c.d.Store.DeliveryStates(ctx, pid, states, stateCap); err != nil {
		c.fail(w, r, err)
		return
	}
	var oldest *time.Time
	for _, s := range data.States {
		if (s.State == store.StatePending || s.State == store.StateRetrying) && s.Oldest != nil && (oldest == nil || s.Oldest.Before(*oldest)) {
			oldest = s.Oldest
		}
	}
	data.OldestPending = ago(oldest)
	since := time.Now().Add(-time.Hour).Truncate(time.Minute)
	minutes, err := c.d.Store.DeliveryMinutes(ctx, pid, since)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data.Bars, data.Max, data.Rate = chart(minutes, since)
	recent, _ := c.d.Store.DeliveryLog(ctx, store.DeliveryQuery{ProjectID: pid, States: []string{store.StateDelivered}, Limit: 500})
	data.P95 = p95(recent)
	subs, _ := c.d.Subscriptions.List(ctx, pid, subscription.Subscriptions)
	data.Subscriptions = len(subs)
	for _, s := range subs {
		if !s.Active {
			data.Disabled = append(data.Disabled, s)
		}
	}
	data.Alerts, _ = c.d.Store.ListAlerts(ctx, store.AlertFilter{ProjectID: pid, Current: true, Limit: 20})
	data.Balance = c.balance(r)
	c.render(w, r, "overview", "Overview", data, http.StatusOK)
}

// chart lays out one bar per minute of the last hour (an SVG drawn by the
// server, so the chart needs no JavaScript), stacked delivered, failed and
// still on the way.
func chart(minutes []store.MinuteStat, since time.Time) ([]bar, int64, string) {
	const n, width, height = 60, 600.0, 120.0
	byMinute := map[int64]*bar{}
	var delivered, failed int64
	for _, m := range minutes {
		i := int64(m.Minute.Sub(since) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		b := byMinute[i]
		if b == nil {
			b = &bar{}
			byMinute[i] = b
		}
		switch m.State {
		case store.StateDelivered:
			b.Delivered += m.Count
			delivered += m.Count
		case store.StateFailed:
			b.Failed += m.Count
			failed += m.Count
		default:
			b.Other += m.Count
		}
	}
	var max int64 = 1
	for _, b := range byMinute {
		if t := b.Delivered + b.Failed + b.Other; t > max {
			max = t
		}
	}
	bars := make([]bar, 0, n)
	keys := make([]int64, 0, len(byMinute))
	for k := range byMinute {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, i := range keys {
		b := *byMinute[i]
		scale := height / float64(max)
		b.X, b.Width = float64(i)*width/n, width/n-1
		b.DeliveredH, b.FailH, b.OtherH = float64(b.Delivered)*scale, float64(b.Failed)*scale, float64(b.Other)*scale
		b.DeliveredY = height - b.DeliveredH
		b.FailY = b.DeliveredY - b.FailH
		b.OtherY = b.FailY - b.OtherH
		b.Label = fmt.Sprintf("%s: %d delivered, %d failed, %d on the way", since.Add(time.Duration(i)*time.Minute).UTC().Format("15:04"), b.Delivered, b.Failed, b.Other)
		bars = append(bars, b)
	}
	rate := "—"
	if done := delivered + failed; done > 0 {
		rate = fmt.Sprintf("%.1f%%", 100*float64(delivered)/float64(done))
	}
	return bars, max, rate
}

func p95(ds []store.Delivery) string {
	if len(ds) == 0 {
		return "—"
	}
	ms := make([]int64, len(ds))
	for i, d := range ds {
		ms[i] = d.LastDurationMS
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
	return fmt.Sprintf("%d ms", ms[(len(ms)*95-1)/100])
}

// count renders a capped count.
func count(s store.StateCount) string {
	n := fmt.Sprint(s.Count)
	if s.Count >= 1000 {
		n = fmt.Sprintf("%d,%03d", s.Count/1000, s.Count%1000)
	}
	if s.Capped {
		n += "+"
	}
	return strings.TrimSpace(n)
}
