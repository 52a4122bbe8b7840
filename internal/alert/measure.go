package alert

import (
	"context"
	"math"
	"slices"
	"time"

	"carrier/internal/store"
)

// Gauge and sample series the alert package writes.
const (
	GaugeBalance    = "provider.balance"
	ProviderItem    = "default" // the one provider of a process
	SeriesDelivered = "subscription.delivered"
	SeriesFailed    = "subscription.failed"
	SeriesBacklog   = "project.backlog"
	// SampleBucket is the width of a sample bucket: the resolution of
	// rates and peaks.
	SampleBucket = 10 * time.Second
	// SampleRetention is how long samples are kept (the longest window
	// plus a day).
	SampleRetention = 8 * 24 * time.Hour
	maxLatencies    = 10000
)

// measurements reads, once per round and lazily, what the rules need.
type measurements struct {
	ctx   context.Context
	st    store.AlertStore
	now   time.Time
	err   error
	tasks map[time.Duration]map[string]*taskWindow // window -> project -> outcomes
	dead  map[time.Duration]map[string]int64
	back  []store.SubscriptionBacklog
	sampl map[string][]store.Sample // series and window -> samples
	gauge map[string]store.Gauge
	lat   map[string][]time.Duration // project and window -> sorted latencies
	queue []store.QueueBacklog
}

func (m *measurements) queues() []store.QueueBacklog {
	if m.queue == nil {
		q, err := m.st.QueueBacklogs(m.ctx, m.now)
		if err != nil {
			m.fail(err)
			q = []store.QueueBacklog{}
		}
		m.queue = q
	}
	return m.queue
}

// taskWindow sums a project's task outcomes over a window.
type taskWindow struct {
	Total, Solved, Errors int
	Latency               time.Duration // summed over solved tasks
	Cost                  float64
	Codes                 map[string]int
}

func (m *measurements) fail(err error) {
	if m.err == nil {
		m.err = err
	}
}

func (m *measurements) taskWindow(projectID string, window time.Duration) *taskWindow {
	if m.tasks == nil {
		m.tasks = map[time.Duration]map[string]*taskWindow{}
	}
	byProject, ok := m.tasks[window]
	if !ok {
		counts, err := m.st.TaskOutcomes(m.ctx, m.now.Add(-window), time.Time{})
		if err != nil {
			m.fail(err)
		}
		byProject = sumOutcomes(counts)
		m.tasks[window] = byProject
	}
	if w := byProject[projectID]; w != nil {
		return w
	}
	return &taskWindow{Codes: map[string]int{}}
}

func sumOutcomes(counts []store.TaskOutcomeCount) map[string]*taskWindow {
	out := map[string]*taskWindow{}
	for _, c := range counts {
		w := out[c.ProjectID]
		if w == nil {
			w = &taskWindow{Codes: map[string]int{}}
			out[c.ProjectID] = w
		}
		w.Total += c.Count
		w.Cost += c.Cost
		if c.Status == store.TaskSolved {
			w.Solved += c.Count
			w.Latency += c.Latency
			continue
		}
		w.Errors += c.Count
		code := c.ErrorCode
		if code == "" {
			code = "ERROR_" + c.Status
		}
		w.Codes[code] += c.Count
	}
	return out
}

func (m *measurements) deadLetters(projectID string, window time.Duration) int64 {
	if m.dead == nil {
		m.dead = map[time.Duration]map[string]int64{}
	}
	byProject, ok := m.dead[window]
	if !ok {
		var err error
		byProject, err = m.st.DeadLettersSince(m.ctx, m.now.Add(-window))
		if err != nil {
			m.fail(err)
		}
		m.dead[window] = byProject
	}
	return byProject[projectID]
}

func (m *measurements) backlogs() []store.SubscriptionBacklog {
	if m.back == nil {
		b, err := m.st.SubscriptionBacklogs(m.ctx)
		if err != nil {
			m.fail(err)
			b = []store.SubscriptionBacklog{}
		}
		m.back = b
	}
	return m.back
}

func (m *measurements) balance() (store.Gauge, bool) {
	if m.gauge == nil {
		m.gauge = map[string]store.Gauge{}
		gs, err := m.st.ListGauges(m.ctx, GaugeBalance)
		if err != nil {
			m.fail(err)
		}
		for _, g := range gs {
			m.gauge[g.Item] = g
		}
	}
	g, ok := m.gauge[ProviderItem]
	return g, ok
}

// delta is how much a subscription's counter (SeriesDelivered or
// SeriesFailed) grew over window, from the oldest sample in the window to
// now, and the seconds that spans; ok is false when no sample is old
// enough to span at least a bucket.
func (m *measurements) delta(series string, b store.SubscriptionBacklog, window time.Duration) (grew, seconds float64, ok bool) {
	if m.sampl == nil {
		m.sampl = map[string][]store.Sample{}
	}
	key := series + "\x00" + window.String()
	samples, cached := m.sampl[key]
	if !cached {
		var err error
		samples, err = m.st.SamplesSince(m.ctx, series, m.now.Add(-window))
		if err != nil {
			m.fail(err)
		}
		m.sampl[key] = samples
	}
	now := float64(b.Delivered)
	if series == SeriesFailed {
		now = float64(b.Failed)
	}
	for _, x := range samples { // oldest first
		if x.ProjectID != b.ProjectID || x.Item != b.SubscriptionID {
			continue
		}
		taken := x.TakenAt
		if taken.IsZero() {
			taken = x.Bucket
		}
		elapsed := m.now.Sub(taken).Seconds()
		if elapsed < SampleBucket.Seconds() {
			return 0, 0, false
		}
		return math.Max(0, now-x.Value), elapsed, true
	}
	return 0, 0, false
}

// drainRate is the deliveries per second a subscription made over window.
func (m *measurements) drainRate(b store.SubscriptionBacklog, window time.Duration) (float64, bool) {
	grew, secs, ok := m.delta(SeriesDelivered, b, window)
	if !ok {
		return 0, false
	}
	return grew / secs, true
}

// samplesToWrite are this round's readings of the counters that rates and
// peaks are computed from.
func (m *measurements) samplesToWrite() []store.Sample {
	bucket := m.now.Truncate(SampleBucket)
	depth := map[string]float64{}
	var out []store.Sample
	for _, b := range m.backlogs() {
		out = append(out,
			store.Sample{ProjectID: b.ProjectID, Series: SeriesDelivered, Item: b.SubscriptionID, Bucket: bucket, Value: float64(b.Delivered), TakenAt: m.now},
			store.Sample{ProjectID: b.ProjectID, Series: SeriesFailed, Item: b.SubscriptionID, Bucket: bucket, Value: float64(b.Failed), TakenAt: m.now})
		depth[b.ProjectID] += float64(b.Depth)
	}
	for p, d := range depth {
		out = append(out, store.Sample{ProjectID: p, Series: SeriesBacklog, Item: "", Bucket: bucket, Value: d, TakenAt: m.now})
	}
	return out
}

// latencies returns a project's solved-task latencies over window, sorted,
// read once per round for each project and window.
func (m *measurements) latencies(projectID string, window time.Duration) ([]time.Duration, error) {
	key := projectID + "\x00" + window.String()
	if ls, ok := m.lat[key]; ok {
		return ls, nil
	}
	ls, err := m.st.TaskLatencies(m.ctx, projectID, m.now.Add(-window), maxLatencies)
	if err != nil {
		m.fail(err)
		return nil, err
	}
	slices.Sort(ls)
	if m.lat == nil {
		m.lat = map[string][]time.Duration{}
	}
	m.lat[key] = ls
	return ls, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// itemSample is one scoped item's reading for a rule.
type itemSample struct {
	item   string
	name   string // the item's display name
	sample Sample
	// inhibited says why this item's notifications are held back (an
	// endpoint that is disabled: its own backlog and failure alerts say
	// nothing the endpoint-disabled alert has not said).
	inhibited string
}

// measure returns a rule's readings for this round, one per scoped item.
func (m *measurements) measure(r Rule) []itemSample {
	switch r.Metric {
	case "provider.balance":
		g, ok := m.balance()
		return []itemSample{{item: ProviderItem, name: "provider", sample: Sample{OK: ok && g.OK, Value: g.Value}}}
	case "provider.probe_failures":
		g, ok := m.balance()
		return []itemSample{{item: ProviderItem, name: "provider", sample: Sample{OK: ok, Value: float64(g.Failures),
			Details: map[string]any{"error": g.Error}}}}
	case "task.error_rate":
		w := m.taskWindow(r.ProjectID, r.Window.D())
		x := Sample{OK: w.Total > 0 && w.Total >= r.MinCount}
		if x.OK {
			x.Value = float64(w.Errors) / float64(w.Total)
		}
		codes := map[string]int{}
		for i, c := range CodeCounts(w.Codes) {
			if i == MaxBreakdownLines {
				break
			}
			codes[c.Code] = c.Count
		}
		x.Details = map[string]any{"errors": w.Errors, "total": w.Total, "breakdown": codes}
		return []itemSample{{sample: x}}
	case "task.latency":
		ls, err := m.latencies(r.ProjectID, r.Window.D())
		x := Sample{OK: err == nil && len(ls) > 0 && len(ls) >= r.MinCount}
		if x.OK {
			x.Value = quantile(ls, r.Quantile).Seconds()
			x.Details = map[string]any{"count": len(ls), "quantile": r.Quantile}
		}
		return []itemSample{{sample: x}}
	case "dead_letters.count":
		n := m.deadLetters(r.ProjectID, r.Window.D())
		return []itemSample{{sample: Sample{OK: m.err == nil, Value: float64(n)}}}
	case "queue.backlog", "queue.oldest_age":
		var out []itemSample
		for _, q := range m.queues() {
			if q.ProjectID != r.ProjectID || (len(r.Items) > 0 && !slices.Contains(r.Items, q.QueueID)) {
				continue
			}
			x := Sample{OK: true, Value: float64(q.Messages), Details: map[string]any{"depth": q.Messages}}
			if r.Metric == "queue.oldest_age" {
				x.Value = 0
				if q.Messages > 0 {
					x.Value = m.now.Sub(q.OldestAt).Seconds()
				}
			}
			out = append(out, itemSample{item: q.QueueID, name: q.Name, sample: x})
		}
		return out
	case "subscription.backlog", "subscription.oldest_age", "subscription.drain_time", "subscription.error_rate":
		var out []itemSample
		for _, b := range m.backlogs() {
			if b.ProjectID != r.ProjectID || (len(r.Items) > 0 && !slices.Contains(r.Items, b.SubscriptionID)) {
				continue
			}
			x := Sample{OK: true}
			switch r.Metric {
			case "subscription.error_rate":
				failed, _, okF := m.delta(SeriesFailed, b, r.Window.D())
				delivered, _, okD := m.delta(SeriesDelivered, b, r.Window.D())
				total := failed + delivered
				x.OK = okF && okD && total > 0 && total >= float64(r.MinCount)
				if x.OK {
					x.Value = failed / total
				}
				x.Details = map[string]any{"failed": int(failed), "total": int(total)}
			case "subscription.backlog":
				x.Value = float64(b.Depth)
			case "subscription.oldest_age":
				if b.Depth > 0 {
					x.Value = m.now.Sub(b.OldestAt).Seconds()
				}
			case "subscription.drain_time":
				// The time the backlog needs to drain at the rate it
				// actually drained over the window, and at least as long
				// as its oldest delivery has waited: a backlog that does
				// not drain at all is as late as its oldest delivery, so
				// one delivery pending on a quiet subscription is not a
				// backup, and a stuck one becomes one as it ages.
				rate, _ := m.drainRate(b, r.Window.D())
				if b.Depth > 0 {
					x.Value = m.now.Sub(b.OldestAt).Seconds()
					if rate > 0 {
						x.Value = math.Max(x.Value, float64(b.Depth)/rate)
					}
				}
				x.Details = map[string]any{"depth": b.Depth, "drain_rate": rate}
			}
			is := itemSample{item: b.SubscriptionID, name: b.Name, sample: x}
			if !b.Active {
				is.inhibited = "the endpoint is disabled"
			}
			out = append(out, is)
		}
		return out
	}
	return nil
}
