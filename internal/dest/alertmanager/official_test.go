package alertmanager_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"testing"
	"time"

	amtemplate "github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/types"
	"github.com/prometheus/common/model"

	"carrier/internal/alert"
	"carrier/internal/dest/alertmanager"
	"carrier/internal/store"
)

// officialMessage is Alertmanager's notify/webhook.Message, field for field
// (that package is not imported: it pulls in most of Alertmanager).
type officialMessage struct {
	*amtemplate.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOfficialTypes checks every body against Alertmanager's own code
// (github.com/prometheus/alertmanager's template and types packages and
// prometheus/common's model): decoded into the official types and encoded
// again it comes back byte for byte, and it is exactly what Alertmanager
// builds (template.Data: receiver escaping, status, fingerprints, common
// labels and annotations, the zero endsAt of a firing alert; the group's
// order; the group key) for the same alerts.
func TestOfficialTypes(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 30, 0, 123456789, time.UTC)
	ends := created
	jobs := map[string]store.Job{
		"firing": alertJob(t, alert.EventFiring, alert.EventData{AlertID: "alert-1", RuleID: "rule-1", Rule: "Low balance",
			Metric: "provider.balance", Status: "firing", Severity: "warning", Value: f(4.5), Threshold: f(10),
			StartsAt: created.Add(-time.Hour), Notice: alert.Notice{Title: "💰 Balance Alert", Description: "Balance is **$4.50** & <falling>"}}, created, `{}`),
		"escalated": alertJob(t, alert.EventFiring, alert.EventData{AlertID: "alert-2", RuleID: "rule-2", Rule: "Solve rate",
			Metric: "tasks.solve_rate", Item: "sub_42", Status: "firing", Severity: "critical", PreviousSeverity: "warning",
			Value: f(0.42), Threshold: f(0.5), StartsAt: created.Add(-time.Hour), Notice: alert.Notice{Title: "🚨 Solve rate"}}, created, `{}`),
		"de-escalated": alertJob(t, alert.EventFiring, alert.EventData{AlertID: "alert-2", RuleID: "rule-2", Rule: "Solve rate",
			Metric: "tasks.solve_rate", Item: "sub_42", Status: "firing", Severity: "warning", PreviousSeverity: "critical",
			Value: f(0.48), Threshold: f(0.5), StartsAt: created.Add(-time.Hour)}, created, `{}`),
		"resolved": alertJob(t, alert.EventResolved, alert.EventData{AlertID: "alert-1", RuleID: "rule-1", Rule: "Low balance",
			Metric: "provider.balance", Status: "resolved", Severity: "warning", Value: f(25), StartsAt: created.Add(-time.Hour),
			EndsAt: &ends, Notice: alert.Notice{Title: "✅ Resolved: Low balance", Description: "after **1h**"}}, created, `{}`),
		"odd labels": alertJob(t, alert.EventFiring, alert.EventData{AlertID: "alert-3", RuleID: "rule-3", Rule: `Größe "quoted" <&>` + "\n\t\\",
			Item: "a/b?c=d", Severity: "info", StartsAt: created}, created, `{}`),
		"report": {Event: store.Event{ID: "evt-9", ProjectID: "p1", Type: alert.EventDailyReport, Subject: "rule-9", CreatedAt: created,
			Attributes: map[string]string{"severity": "info"},
			Data:       json.RawMessage(`{"rule_id":"rule-9","notice":{"title":"📈 Daily Summary","description":"**120** tasks"}}`)}},
		"plain event": {Event: store.Event{ID: "evt-10", ProjectID: "p1", Type: "task.failed", CreatedAt: created, Data: json.RawMessage(`{}`)}},
	}
	for name, job := range jobs {
		for _, src := range []alertmanager.Sources{
			{Receiver: "team.ops (pager)", ExternalURL: "https://carrier.example.com"},
			{Receiver: "carrier"},
		} {
			t.Run(name, func(t *testing.T) {
				body, err := alertmanager.Body(job, src)
				if err != nil {
					t.Fatal(err)
				}

				// Decoded into the official types (nothing unknown) and encoded again.
				var decoded officialMessage
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&decoded); err != nil {
					t.Fatalf("decode into template.Data: %v\n%s", err, body)
				}
				if again := encode(t, decoded); !bytes.Equal(again, body) {
					t.Errorf("round trip through template.Data\n got: %s\nwant: %s", again, body)
				}

				// What Alertmanager itself builds for the same alerts.
				ours := alertmanager.NewMessage(job, src)
				var alerts types.AlertSlice
				for _, a := range ours.Alerts {
					am := &types.Alert{Alert: model.Alert{Labels: labelSet(a.Labels), Annotations: labelSet(a.Annotations),
						StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}}
					if a.Status == alertmanager.StatusFiring {
						// Prometheus sends firing alerts with an end in the future,
						// which Alertmanager does not show.
						am.EndsAt = time.Now().Add(time.Hour)
					}
					alerts = append(alerts, am)
				}
				sort.Stable(alerts)
				tmpl, err := amtemplate.New()
				if err != nil {
					t.Fatal(err)
				}
				if tmpl.ExternalURL, err = url.Parse(src.ExternalURL); err != nil {
					t.Fatal(err)
				}
				group := labelSet(ours.GroupLabels)
				want := encode(t, officialMessage{
					Data:     tmpl.Data(src.Receiver, group, alerts...),
					Version:  "4",
					GroupKey: "{}:" + group.String(), // dispatch's aggrGroup.GroupKey for the root route
				})
				if !bytes.Equal(body, want) {
					t.Errorf("body is not what Alertmanager sends\n got: %s\nwant: %s", body, want)
				}
				for _, a := range decoded.Alerts {
					if fp := labelSet(a.Labels).Fingerprint().String(); a.Fingerprint != fp {
						t.Errorf("fingerprint %s, model.LabelSet.Fingerprint %s", a.Fingerprint, fp)
					}
				}
			})
		}
	}
}

// TestFingerprintIsPrometheus compares Fingerprint with
// model.LabelSet.Fingerprint over label sets that stress the order and the
// separator.
func TestFingerprintIsPrometheus(t *testing.T) {
	for _, ls := range []map[string]string{
		{},
		{"a": ""},
		{"a": "b"},
		{"ab": "c"},
		{"a": "bc"},
		{"a": "1", "b": "2", "B": "3", "_": "4", "a_b": "5"},
		{"alertname": "Größe", "x": "\xff\x00", "y": "日本"},
	} {
		if got, want := alertmanager.Fingerprint(ls), labelSet(ls).Fingerprint().String(); got != want {
			t.Errorf("Fingerprint(%q) = %s, model says %s", ls, got, want)
		}
	}
}

func labelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}
