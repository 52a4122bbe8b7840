package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// Store is what the alert service and evaluator need from the store.
type Store interface {
	store.AlertStore
	store.Transactor
}

// MaxRulesPerProject bounds a project's rules, so the evaluator's round
// stays bounded too.
const MaxRulesPerProject = 1000

// ErrTooManyRules is returned when a project has MaxRulesPerProject rules.
var ErrTooManyRules = errors.New("a project has at most 1000 alert rules")

// Service runs alert rules and reads alerts: the domain logic behind
// /v1/alert-rules and /v1/alerts, and what a configuration file or the
// console call.
type Service struct {
	Store Store
	Now   func() time.Time
	// Provider and ProviderSite name the CAPTCHA provider in rendered samples.
	Provider     string
	ProviderSite string
	// Wake, when set, wakes the outbox relay after a test notification.
	Wake func()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Create validates a rule and stores it as a rule of projectID.
func (s *Service) Create(ctx context.Context, projectID string, r Rule) (Rule, error) {
	if err := r.Normalize(); err != nil {
		return r, err
	}
	existing, err := s.Store.ListAlertRules(ctx, projectID)
	if err != nil {
		return r, err
	}
	if len(existing) >= MaxRulesPerProject {
		return r, ErrTooManyRules
	}
	now := s.now()
	r.ID, r.ProjectID, r.CreatedAt, r.UpdatedAt = uuid.Must(uuid.NewV7()).String(), projectID, now, now
	ar, err := record(r)
	if err != nil {
		return r, err
	}
	if err := s.Store.CreateAlertRule(ctx, ar); err != nil {
		return r, err
	}
	return r, nil
}

// Update replaces a rule's definition (its id and creation time stay).
// Current alerts of the rule keep their state and are evaluated under the
// new definition from the next round.
func (s *Service) Update(ctx context.Context, projectID, id string, r Rule) (Rule, error) {
	old, err := s.Get(ctx, projectID, id)
	if err != nil {
		return r, err
	}
	if err := r.Normalize(); err != nil {
		return r, err
	}
	r.ID, r.ProjectID, r.CreatedAt, r.UpdatedAt = old.ID, projectID, old.CreatedAt, s.now()
	ar, err := record(r)
	if err != nil {
		return r, err
	}
	return r, s.Store.UpdateAlertRule(ctx, ar)
}

// Get reads a rule of a project.
func (s *Service) Get(ctx context.Context, projectID, id string) (Rule, error) {
	ar, err := s.Store.GetAlertRule(ctx, projectID, id)
	if err != nil {
		return Rule{}, err
	}
	return Decode(ar)
}

// List returns a project's rules, oldest first.
func (s *Service) List(ctx context.Context, projectID string) ([]Rule, error) {
	ars, err := s.Store.ListAlertRules(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(ars))
	for _, ar := range ars {
		r, err := Decode(ar)
		if err != nil {
			return nil, fmt.Errorf("alert rule %s: %w", ar.ID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Delete deletes a rule and ends its current alerts without notifying.
func (s *Service) Delete(ctx context.Context, projectID, id string) error {
	return s.Store.DeleteAlertRule(ctx, projectID, id, s.now())
}

// Test sends a sample firing notification of a rule to whatever subscribes
// to it, through the outbox like a real one; the event's "test" attribute
// is "true", so a filter policy can keep tests apart. It returns the event's
// outbox id.
func (s *Service) Test(ctx context.Context, projectID, id string) (string, error) {
	r, err := s.Get(ctx, projectID, id)
	if err != nil {
		return "", err
	}
	now := s.now()
	ev := &Evaluator{Provider: s.Provider, ProviderSite: s.ProviderSite}
	sev := SeverityInfo
	var value float64
	if len(r.Tiers) > 0 {
		sev, value = r.Tiers[0].Severity, r.Tiers[0].Fire
	}
	a := store.Alert{ID: "test-" + uuid.Must(uuid.NewV7()).String(), ProjectID: projectID, RuleID: r.ID, StartedAt: now}
	n := Notification{Type: EventFiring, Status: "firing", Severity: sev, Value: &value, Threshold: &value}
	st := State{Status: StatusFiring, Severity: sev, StartedAt: now, First: &value, Worst: &value, Last: &value}
	is := itemSample{item: "test", name: "test", sample: Sample{OK: true, Value: value, Details: sampleDetails(r)}}
	out := ev.event(r, a, st, n, is, now)
	if r.Kind == KindSchedule {
		rep := DailyReport{RuleID: r.ID, Rule: r.Name, Day: now.Format("2006-01-02"), TimeZone: r.Schedule.TimeZone, From: now.Add(-24 * time.Hour), To: now, Severity: SeverityInfo}
		rep.Notice = DailySummaryNotice(DailyStats{}, rep.Day)
		rep.Notice.Footer = ev.footer()
		data, _ := json.Marshal(rep)
		out.Type, out.Data = EventDailyReport, data
	}
	out.Attributes["test"] = "true"
	if err := s.Store.InTx(ctx, func(tx store.Tx) error { return tx.InsertOutbox(ctx, out) }); err != nil {
		return "", err
	}
	if s.Wake != nil {
		s.Wake()
	}
	return out.ID, nil
}

// sampleDetails are made-up figures for a test notification of r.
func sampleDetails(r Rule) map[string]any {
	switch r.Metric {
	case "task.error_rate":
		return map[string]any{"errors": 45, "total": 200, "breakdown": map[string]int{"ERROR_CAPTCHA_UNSOLVABLE": 30, "TIMEOUT": 15}}
	case "subscription.drain_time", "subscription.backlog":
		return map[string]any{"depth": 1200, "drain_rate": 2.0}
	}
	return map[string]any{"event_type": r.Event}
}

// Alerts lists a project's alerts, newest first.
func (s *Service) Alerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error) {
	return s.Store.ListAlerts(ctx, f)
}

// Alert reads an alert of a project with its transitions.
func (s *Service) Alert(ctx context.Context, projectID, id string) (store.Alert, []store.AlertTransition, error) {
	return s.Store.GetAlert(ctx, projectID, id)
}

// EnsureDefaults gives a project that has no rules the built-in rule set.
func (s *Service) EnsureDefaults(ctx context.Context, projectID string) error {
	existing, err := s.Store.ListAlertRules(ctx, projectID)
	if err != nil || len(existing) > 0 {
		return err
	}
	for _, r := range Defaults() {
		if _, err := s.Create(ctx, projectID, r); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("default alert rule %q: %w", r.Name, err)
		}
	}
	return nil
}

// Defaults are the built-in rules: the source document's alerts, with a
// clearing threshold for each and Carrier's own event alerts.
func Defaults() []Rule {
	c := func(v float64) *float64 { return &v }
	return []Rule{
		{Name: "Balance", Metric: "provider.balance", Enabled: true, Tiers: []Tier{
			{Severity: SeverityCritical, Fire: 2, Clear: c(3)},
			{Severity: SeverityWarning, Fire: 10, Clear: c(11)},
		}},
		{Name: "Balance check failing", Metric: "provider.probe_failures", Enabled: true, Tiers: []Tier{
			{Severity: SeverityWarning, Fire: 2.5, Clear: c(0.5)}, // three failed probes in a row
		}},
		{Name: "Error rate spike", Metric: "task.error_rate", Enabled: true, Window: Duration(5 * time.Minute), MinCount: 11, Tiers: []Tier{
			{Severity: SeverityCritical, Fire: 0.15, Clear: c(0.10)},
		}},
		{Name: "Queue backup", Metric: "subscription.drain_time", Enabled: true, Window: Duration(5 * time.Minute), Tiers: []Tier{
			{Severity: SeverityWarning, Fire: 600, Clear: c(120)},
		}},
		{Name: "Endpoint disabled", Kind: KindEvent, Event: "webhook.disabled", ResolveEvent: "endpoint.recovered", Enabled: true,
			Tiers: []Tier{{Severity: SeverityCritical}}},
		// Pending 30 s: a pingback that beat its submit answer is
		// dead-lettered and redriven within milliseconds, and is no news.
		{Name: "Dead letters", Metric: "dead_letters.count", Enabled: true, Window: Duration(15 * time.Minute), PendingFor: Duration(30 * time.Second), Tiers: []Tier{
			{Severity: SeverityWarning, Fire: 0},
		}},
		{Name: "Daily summary", Kind: KindSchedule, Enabled: true, Schedule: &Schedule{At: "09:00", TimeZone: "UTC"}},
		{Name: "CAPTCHA vendor degraded", Kind: KindEvent, Event: "captcha.vendor.degraded", ResolveEvent: "captcha.vendor.recovered", Enabled: true,
			Tiers: []Tier{{Severity: SeverityCritical}}},
	}
}

// ProviderIdentity names a provider and the site where its balance is
// topped up, from its base URL: CaptchaAI and 2Captcha by name, any other
// by its host.
func ProviderIdentity(baseURL string) (name, site string) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", ""
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "captchaai.com" || strings.HasSuffix(host, ".captchaai.com"):
		return "CaptchaAI", "captchaai.com"
	case host == "2captcha.com" || strings.HasSuffix(host, ".2captcha.com"):
		return "2Captcha", "2captcha.com"
	}
	return host, ""
}

// record is the stored form of a rule.
func record(r Rule) (store.AlertRule, error) {
	spec, err := json.Marshal(r)
	if err != nil {
		return store.AlertRule{}, err
	}
	return store.AlertRule{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Spec: spec, Enabled: r.Enabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}
