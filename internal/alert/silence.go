package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// Labels are the names an alert can be matched on, by silences and by
// subscriptions' filter policies (as event attributes).
var Labels = []string{"rule", "rule_id", "severity", "metric", "item", "kind"}

// Matcher matches one label of an alert, as Alertmanager's matchers do:
// Op "=" equal, "!=" not equal, "=~" matches the regular expression
// (anchored at both ends), "!~" does not.
type Matcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
	re    *regexp.Regexp
}

func (m *Matcher) compile() error {
	if m.Op == "" {
		m.Op = "="
	}
	switch m.Op {
	case "=", "!=":
	case "=~", "!~":
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return err
		}
		m.re = re
	default:
		return fmt.Errorf("op must be =, !=, =~ or !~")
	}
	return nil
}

func (m *Matcher) matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case "!=":
		return v != m.Value
	case "=~":
		return m.re.MatchString(v)
	case "!~":
		return !m.re.MatchString(v)
	}
	return v == m.Value
}

// Silence holds back the notifications of the alerts all its matchers
// match, from StartsAt until EndsAt. Transitions still happen and are
// recorded; a firing alert still firing when its silence ends is notified
// then, and an alert that fired and resolved under a silence is never
// notified.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxSilenceLength bounds how long a silence may last.
const MaxSilenceLength = 366 * 24 * time.Hour

// matches tells whether every matcher of x matches labels.
func (x Silence) matches(labels map[string]string) bool {
	for i := range x.Matchers {
		if !x.Matchers[i].matches(labels) {
			return false
		}
	}
	return len(x.Matchers) > 0
}

// normalize checks a new silence at now.
func (x *Silence) normalize(now time.Time) error {
	if len(x.Matchers) == 0 || len(x.Matchers) > 20 {
		return fieldErr("matchers", "between 1 and 20 matchers")
	}
	matchesEmpty := true
	for i := range x.Matchers {
		m := &x.Matchers[i]
		f := fmt.Sprintf("matchers[%d]", i)
		if !slices.Contains(Labels, m.Name) {
			return fieldErr(f+".name", "must be one of %s", strings.Join(Labels, ", "))
		}
		if len(m.Value) > 1000 {
			return fieldErr(f+".value", "at most 1000 characters")
		}
		if err := m.compile(); err != nil {
			return fieldErr(f+".op", "%v", err)
		}
		if !m.matches(map[string]string{}) {
			matchesEmpty = false
		}
	}
	if matchesEmpty {
		// As Alertmanager: a silence must not match every alert by accident.
		return fieldErr("matchers", "at least one matcher must not match the empty string")
	}
	if x.StartsAt.IsZero() || x.StartsAt.Before(now) {
		x.StartsAt = now
	}
	if !x.EndsAt.After(x.StartsAt) {
		return fieldErr("ends_at", "must be after starts_at (and now)")
	}
	if x.EndsAt.Sub(x.StartsAt) > MaxSilenceLength {
		return fieldErr("ends_at", "a silence lasts at most %s", MaxSilenceLength)
	}
	if len(x.Comment) > 1000 || len(x.CreatedBy) > 200 {
		return fieldErr("comment", "comment at most 1000 and created_by at most 200 characters")
	}
	return nil
}

// CreateSilence validates and stores a silence of projectID.
func (s *Service) CreateSilence(ctx context.Context, projectID string, x Silence) (Silence, error) {
	now := s.now()
	if err := x.normalize(now); err != nil {
		return x, err
	}
	x.ID, x.CreatedAt = uuid.Must(uuid.NewV7()).String(), now
	m, _ := json.Marshal(x.Matchers)
	err := s.Store.CreateSilence(ctx, store.Silence{ID: x.ID, ProjectID: projectID, Matchers: m, Comment: x.Comment, CreatedBy: x.CreatedBy,
		StartsAt: x.StartsAt, EndsAt: x.EndsAt, CreatedAt: now})
	return x, err
}

// Silences lists a project's silences that have not ended, newest first.
func (s *Service) Silences(ctx context.Context, projectID string) ([]Silence, error) {
	xs, err := s.Store.ListSilences(ctx, projectID, s.now())
	if err != nil {
		return nil, err
	}
	out := make([]Silence, 0, len(xs))
	for _, x := range xs {
		out = append(out, decodeSilence(x))
	}
	return out, nil
}

// GetSilence reads a silence of a project.
func (s *Service) GetSilence(ctx context.Context, projectID, id string) (Silence, error) {
	x, err := s.Store.GetSilence(ctx, projectID, id)
	if err != nil {
		return Silence{}, err
	}
	return decodeSilence(x), nil
}

// ExpireSilence ends a silence now.
func (s *Service) ExpireSilence(ctx context.Context, projectID, id string) error {
	return s.Store.ExpireSilence(ctx, projectID, id, s.now())
}

func decodeSilence(x store.Silence) Silence {
	out := Silence{ID: x.ID, Comment: x.Comment, CreatedBy: x.CreatedBy, StartsAt: x.StartsAt, EndsAt: x.EndsAt, CreatedAt: x.CreatedAt}
	_ = json.Unmarshal(x.Matchers, &out.Matchers) // stored by CreateSilence, so it decodes
	for i := range out.Matchers {
		if out.Matchers[i].compile() != nil {
			// A matcher that no longer compiles matches nothing.
			out.Matchers[i] = Matcher{Name: "rule_id", Op: "=", Value: "\x00"}
		}
	}
	return out
}

// alertLabels are the labels silences match an alert on.
func alertLabels(r Rule, item, severity string) map[string]string {
	return map[string]string{"rule": r.Name, "rule_id": r.ID, "severity": severity, "metric": r.Metric, "item": item, "kind": string(r.Kind)}
}
