package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"carrier/internal/alert"
	"carrier/internal/store"
)

// alertsShown bounds the current alerts listed, each with its latest
// transitions (one query each).
const (
	alertsShown      = 20
	transitionsShown = 5
)

type alertView struct {
	store.Alert
	Rule        string
	Transitions []store.AlertTransition
}

type alertsData struct {
	Enabled  bool
	Alerts   []alertView
	Silences []alert.Silence
	Labels   []string
}

func (c *Console) alertsPage(w http.ResponseWriter, r *http.Request) {
	if c.d.Alerts == nil {
		c.render(w, r, "alerts", "Alerts", alertsData{}, http.StatusOK)
		return
	}
	ctx, pid := r.Context(), project(r)
	data := alertsData{Enabled: true, Labels: alert.Labels}
	rules, err := c.d.Alerts.List(ctx, pid)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names := map[string]string{}
	for _, rule := range rules {
		names[rule.ID] = rule.Name
	}
	as, err := c.d.Alerts.Alerts(ctx, store.AlertFilter{ProjectID: pid, Current: true, Limit: alertsShown})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, a := range as {
		v := alertView{Alert: a, Rule: names[a.RuleID]}
		if _, ts, err := c.d.Alerts.Alert(ctx, pid, a.ID); err == nil {
			v.Transitions = ts[max(0, len(ts)-transitionsShown):]
		}
		data.Alerts = append(data.Alerts, v)
	}
	if data.Silences, err = c.d.Alerts.Silences(ctx, pid); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "alerts", "Alerts", data, http.StatusOK)
}

// parseMatchers reads one matcher a line: "name op value", op one of =,
// !=, =~, !~ (the alert service checks names, operators and values).
func parseMatchers(text string) ([]alert.Matcher, error) {
	var out []alert.Matcher
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		at, op := -1, ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if j := strings.Index(line, o); j > 0 && (at < 0 || j < at) {
				at, op = j, o
			}
		}
		if at < 0 {
			return nil, fmt.Errorf("matcher %d: write it as name=value, name!=value, name=~regexp or name!~regexp", i+1)
		}
		out = append(out, alert.Matcher{Name: strings.TrimSpace(line[:at]), Op: op, Value: strings.TrimSpace(line[at+len(op):])})
	}
	return out, nil
}

// silenceCreate creates a silence as POST /v1/silences does, starting now
// and lasting the duration in the form.
func (c *Console) silenceCreate(w http.ResponseWriter, r *http.Request) {
	if c.d.Alerts == nil {
		c.back(w, r, "/alerts", "", "Alerts are off.")
		return
	}
	matchers, err := parseMatchers(r.PostFormValue("matchers"))
	if err != nil {
		c.back(w, r, "/alerts", "", err.Error())
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue("duration")))
	if err != nil || d <= 0 {
		c.back(w, r, "/alerts", "", "Duration: write it as 30m, 2h or 48h.")
		return
	}
	now := time.Now()
	x, err := c.d.Alerts.CreateSilence(r.Context(), project(r), alert.Silence{Matchers: matchers, Comment: r.PostFormValue("comment"),
		CreatedBy: "console, key " + state(r).key.Prefix, StartsAt: now, EndsAt: now.Add(d)})
	if err != nil {
		c.back(w, r, "/alerts", "", err.Error())
		return
	}
	c.back(w, r, "/alerts", "Silence "+x.ID+" created, until "+x.EndsAt.UTC().Format("2006-01-02 15:04:05")+".", "")
}

func (c *Console) silenceExpire(w http.ResponseWriter, r *http.Request) {
	if c.d.Alerts == nil {
		c.back(w, r, "/alerts", "", "Alerts are off.")
		return
	}
	err := c.d.Alerts.ExpireSilence(r.Context(), project(r), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.back(w, r, "/alerts", "", "No such silence.")
	case err != nil:
		c.back(w, r, "/alerts", "", err.Error())
	default:
		c.back(w, r, "/alerts", "Silence expired.", "")
	}
}

// matcherText shows a silence's matchers as the form takes them.
func matcherText(ms []alert.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.Name + m.Op + m.Value
	}
	return strings.Join(parts, ", ")
}
