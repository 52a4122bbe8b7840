package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"carrier/internal/alert"
	"carrier/internal/store"
)

// Alert rules under /v1/alert-rules and alerts under /v1/alerts. The rule
// body is alert.Rule's JSON; "enabled" defaults to true.

type ruleRequest struct {
	alert.Rule
	Enabled *bool `json:"enabled"`
}

func (req ruleRequest) rule() alert.Rule {
	r := req.Rule
	r.Enabled = req.Enabled == nil || *req.Enabled
	return r
}

func (s *Server) alertsEnabled() error {
	if s.Alerts == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "alerts are not configured"}
	}
	return nil
}

func (s *Server) createAlertRule(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	var req ruleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rule, err := s.Alerts.Create(r.Context(), k.ProjectID, req.rule())
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, rule)
	return nil
}

func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	rules, err := s.Alerts.List(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, rules)
	return nil
}

func (s *Server) getAlertRule(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	rule, err := s.Alerts.Get(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("alert rule")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, rule)
	return nil
}

func (s *Server) updateAlertRule(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	var req ruleRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	rule, err := s.Alerts.Update(r.Context(), k.ProjectID, r.PathValue("id"), req.rule())
	if isNotFound(err) {
		return notFound("alert rule")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, rule)
	return nil
}

func (s *Server) deleteAlertRule(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	err := s.Alerts.Delete(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("alert rule")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "deleted": true})
	return nil
}

func (s *Server) testAlertRule(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	id, err := s.Alerts.Test(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("alert rule")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusAccepted, map[string]any{"event_id": id})
	return nil
}

type alertJSON struct {
	ID          string                `json:"id"`
	RuleID      string                `json:"rule_id"`
	Item        string                `json:"item"`
	Status      string                `json:"status"`
	Severity    string                `json:"severity"`
	StartedAt   string                `json:"started_at"`
	UpdatedAt   string                `json:"updated_at"`
	EndedAt     *string               `json:"ended_at"`
	FirstValue  *float64              `json:"first_value"`
	WorstValue  *float64              `json:"worst_value"`
	LastValue   *float64              `json:"last_value"`
	Flapping    bool                  `json:"flapping"`
	Transitions []alertTransitionJSON `json:"transitions,omitempty"`
}

type alertTransitionJSON struct {
	At        string   `json:"at"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Severity  string   `json:"severity"`
	Value     *float64 `json:"value"`
	EventType string   `json:"event_type,omitempty"`
	EventID   string   `json:"event_id,omitempty"`
}

func alertView(a store.Alert) alertJSON {
	var st alert.State
	_ = json.Unmarshal(a.State, &st) // an unreadable state shows no values
	return alertJSON{ID: a.ID, RuleID: a.RuleID, Item: a.Item, Status: a.Status, Severity: a.Severity,
		StartedAt: formatTime(a.StartedAt), UpdatedAt: formatTime(a.UpdatedAt), EndedAt: formatTimePtr(a.EndedAt),
		FirstValue: st.First, WorstValue: st.Worst, LastValue: st.Last, Flapping: st.Flapping}
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AlertFilter{ProjectID: k.ProjectID, RuleID: q.Get("rule_id"), Status: q.Get("status"), Current: q.Get("current") == "true"}
	switch f.Status {
	case "", alert.StatusPending, alert.StatusFiring, alert.StatusRecovering, "resolved", alert.StatusNormal:
	default:
		return invalid("status", "must be pending, firing, recovering, normal or resolved")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return invalid("limit", "must be an integer between 1 and 1000")
		}
		f.Limit = n
	}
	as, err := s.Alerts.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]alertJSON, len(as))
	for i, a := range as {
		out[i] = alertView(a)
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	a, ts, err := s.Alerts.Alert(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("alert")
	}
	if err != nil {
		return err
	}
	v := alertView(a)
	v.Transitions = make([]alertTransitionJSON, len(ts))
	for i, t := range ts {
		v.Transitions[i] = alertTransitionJSON{At: formatTime(t.At), From: t.From, To: t.To, Severity: t.Severity, Value: t.Value, EventType: t.EventType, EventID: t.EventID}
	}
	ok(w, http.StatusOK, v)
	return nil
}

// alertError maps the alert service's errors to the API's.
func alertError(err error) (*Error, bool) {
	var fe *alert.FieldError
	switch {
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Field: fe.Field, Message: fe.Error()}, true
	case errors.Is(err, alert.ErrTooManyRules):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded, Message: err.Error()}, true
	}
	return nil, false
}

func (s *Server) createSilence(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	var req alert.Silence
	if err := decode(w, r, &req); err != nil {
		return err
	}
	x, err := s.Alerts.CreateSilence(r.Context(), k.ProjectID, req)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, x)
	return nil
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	xs, err := s.Alerts.Silences(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, xs)
	return nil
}

func (s *Server) getSilence(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	x, err := s.Alerts.GetSilence(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("silence")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, x)
	return nil
}

// expireSilence ends a silence now (DELETE, as Alertmanager's API expires
// rather than deletes: the silence stays readable).
func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.alertsEnabled(); err != nil {
		return err
	}
	err := s.Alerts.ExpireSilence(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("silence")
	}
	if err != nil {
		return err
	}
	x, err := s.Alerts.GetSilence(r.Context(), k.ProjectID, r.PathValue("id"))
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, x)
	return nil
}
