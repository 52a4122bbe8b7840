package alertmanager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// Version is the webhook payload version Alertmanager sends and this kind
// reproduces.
const Version = "4"

// The alert statuses of the payload.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Event types of alert notifications (internal/alert publishes them; this
// package reads their JSON without importing it, as dest.Notice does).
const (
	eventFiring   = "alert.firing"
	eventResolved = "alert.resolved"
	eventFlapping = "alert.flapping"
)

// rootRoute is the route part of a group key: Alertmanager's root route has
// no matchers.
const rootRoute = "{}"

// Message is the body of every request: Alertmanager's notify/webhook
// Message, its embedded template.Data first, in the same field order.
type Message struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []Alert           `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// Alert is one alert of a Message: Alertmanager's template.Alert.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertData is the part of an alert.* event's data (internal/alert's
// EventData) that the payload shows.
type alertData struct {
	AlertID          string     `json:"alert_id"`
	RuleID           string     `json:"rule_id"`
	Rule             string     `json:"rule"`
	Metric           string     `json:"metric"`
	Item             string     `json:"item"`
	Severity         string     `json:"severity"`
	PreviousSeverity string     `json:"previous_severity"`
	Value            *float64   `json:"value"`
	Threshold        *float64   `json:"threshold"`
	StartsAt         time.Time  `json:"starts_at"`
	EndsAt           *time.Time `json:"ends_at"`
}

// Sources says where a message comes from: its receiver, and Carrier's
// public URL for the links (externalURL, generatorURL; "" for none).
type Sources struct {
	Receiver    string
	ExternalURL string
}

// NewMessage renders job's event as the Alertmanager message it is sent as
// (see the package documentation for the mapping).
func NewMessage(job store.Job, src Sources) Message {
	e := job.Event
	project := e.ProjectID
	if project == "" {
		project = job.Subscription.ProjectID
	}
	var alerts []Alert
	var group map[string]string
	if d, ok := alertEvent(e); ok {
		alerts, group = fromAlert(e, d, project, src.ExternalURL)
	} else {
		alerts, group = fromEvent(e, project, src.ExternalURL)
	}
	sortAlerts(alerts)
	m := Message{
		Receiver:          regexp.QuoteMeta(src.Receiver),
		Status:            StatusResolved,
		Alerts:            alerts,
		GroupLabels:       group,
		CommonLabels:      common(alerts, func(a Alert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a Alert) map[string]string { return a.Annotations }),
		ExternalURL:       src.ExternalURL,
		Version:           Version,
		GroupKey:          GroupKey(rootRoute, group),
	}
	for _, a := range alerts {
		if a.Status == StatusFiring {
			m.Status = StatusFiring
		}
	}
	return m
}

// Body renders job's event as the exact bytes that are posted: the message
// as Alertmanager encodes it (json.Encoder: HTML-escaped, newline-terminated).
func Body(job store.Job, src Sources) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(NewMessage(job, src)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// alertEvent reads the data of an alert notification; ok is false for any
// other event, and for an alert.* event whose data names no rule.
func alertEvent(e store.Event) (alertData, bool) {
	var d alertData
	switch e.Type {
	case eventFiring, eventResolved, eventFlapping:
	default:
		return d, false
	}
	if json.Unmarshal(e.Data, &d) != nil || strings.TrimSpace(d.Rule) == "" {
		return d, false
	}
	return d, true
}

// fromAlert maps an alert notification: one alert, or two for a change of
// severity (the new one firing, the previous one resolved at the event's
// time).
func fromAlert(e store.Event, d alertData, project, external string) ([]Alert, map[string]string) {
	at := e.CreatedAt.UTC()
	labels := labelSet(
		"alertname", d.Rule,
		"severity", d.Severity,
		"metric", d.Metric,
		"item", d.Item,
		"rule_id", d.RuleID,
		"project", project,
	)
	annotations := map[string]string{}
	if n, ok := dest.NoticeOf(e.Data); ok {
		annotations = labelSet("summary", dest.StripBold(n.Title), "description", dest.StripBold(n.Description))
	}
	if d.Value != nil {
		annotations["value"] = decimal(*d.Value)
	}
	if d.Threshold != nil {
		annotations["threshold"] = decimal(*d.Threshold)
	}
	starts := d.StartsAt.UTC()
	if d.StartsAt.IsZero() {
		starts = at
	}
	generator := ""
	if external != "" && d.AlertID != "" {
		generator = external + "/v1/alerts/" + d.AlertID
	}
	a := Alert{Status: StatusFiring, Labels: labels, Annotations: annotations, StartsAt: starts, GeneratorURL: generator}
	if e.Type == eventResolved {
		a.Status, a.EndsAt = StatusResolved, at
		if d.EndsAt != nil && !d.EndsAt.IsZero() {
			a.EndsAt = d.EndsAt.UTC()
		}
	}
	a.Fingerprint = Fingerprint(a.Labels)
	alerts := []Alert{a}
	if d.PreviousSeverity != "" && d.PreviousSeverity != d.Severity && a.Status == StatusFiring {
		prev := a
		prev.Labels = maps.Clone(labels)
		prev.Labels["severity"] = d.PreviousSeverity
		prev.Status, prev.EndsAt = StatusResolved, at
		prev.Fingerprint = Fingerprint(prev.Labels)
		alerts = append(alerts, prev)
	}
	return alerts, labelSet("alertname", d.Rule, "project", project, "item", d.Item)
}

// fromEvent maps any other event: one firing alert named after its type.
func fromEvent(e store.Event, project, external string) ([]Alert, map[string]string) {
	severity := e.Attributes["severity"]
	if severity == "" {
		var d struct {
			Severity any `json:"severity"`
		}
		if json.Unmarshal(e.Data, &d) == nil {
			severity, _ = d.Severity.(string)
		}
	}
	annotations := map[string]string{}
	if n, ok := dest.NoticeOf(e.Data); ok {
		annotations = labelSet("summary", dest.StripBold(n.Title), "description", dest.StripBold(n.Description))
	}
	generator := ""
	if external != "" && e.ID != "" {
		generator = external + "/v1/events/" + e.ID
	}
	a := Alert{
		Status:       StatusFiring,
		Labels:       labelSet("alertname", e.Type, "project", project, "severity", severity, "subject", e.Subject),
		Annotations:  annotations,
		StartsAt:     e.CreatedAt.UTC(),
		GeneratorURL: generator,
	}
	a.Fingerprint = Fingerprint(a.Labels)
	return []Alert{a}, labelSet("alertname", e.Type, "project", project, "subject", e.Subject)
}

// labelSet makes a label set of name, value pairs, leaving out the names
// whose value is empty (Prometheus has no empty labels).
func labelSet(pairs ...string) map[string]string {
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			m[pairs[i]] = pairs[i+1]
		}
	}
	return m
}

// decimal writes a value as a plain decimal, such as 12.5 or 1000000.
func decimal(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// common returns the pairs every alert has, as Alertmanager computes
// commonLabels and commonAnnotations; {} for no alerts.
func common(alerts []Alert, of func(Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	maps.Copy(out, of(alerts[0]))
	for _, a := range alerts[1:] {
		set := of(a)
		for k, v := range out {
			if w, ok := set[k]; !ok || w != v {
				delete(out, k)
			}
		}
	}
	return out
}

// Fingerprint is the fingerprint Alertmanager shows for an alert with these
// labels: prometheus/common's model.LabelSet.Fingerprint, FNV-1a (64 bits)
// over each label name and value in the order of the names, each followed by
// the separator byte 0xff, as 16 lower-case hex digits. The empty set is
// FNV-1a's offset basis, cbf29ce484222325.
func Fingerprint(labels map[string]string) string {
	h := fnv.New64a()
	sep := []byte{0xff}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(name))
		h.Write(sep)
		h.Write([]byte(labels[name]))
		h.Write(sep)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// GroupKey is Alertmanager's key of an alert group, "<route key>:<group
// labels>", the labels written as model.LabelSet.String writes them:
// {a="1", b="2"}, names in order, values quoted as Go quotes strings.
func GroupKey(route string, group map[string]string) string {
	var b strings.Builder
	b.WriteString(route)
	b.WriteString(":{")
	for i, name := range slices.Sorted(maps.Keys(group)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(group[name]))
	}
	b.WriteByte('}')
	return b.String()
}

// sortAlerts orders alerts as Alertmanager orders a group's alerts
// (types.AlertSlice): by their job and instance labels (which Carrier's
// alerts do not have), then by model.LabelSet.Before.
func sortAlerts(alerts []Alert) {
	slices.SortStableFunc(alerts, func(a, b Alert) int {
		switch {
		case labelsBefore(a.Labels, b.Labels):
			return -1
		case labelsBefore(b.Labels, a.Labels):
			return 1
		}
		return 0
	})
}

// labelsBefore is model.LabelSet.Before: the smaller set first, else the
// first label name, in order, that one set lacks or whose values differ.
func labelsBefore(a, b map[string]string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	names := slices.Sorted(maps.Keys(a))
	for n := range b {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		av, ok := a[n]
		if !ok {
			return true
		}
		bv, ok := b[n]
		if !ok {
			return false
		}
		if av != bv {
			return av < bv
		}
	}
	return false
}
