package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"carrier/internal/outage"
	"carrier/internal/store"
	"carrier/internal/task"
)

type taskJSON struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	Method         string            `json:"method"`
	Params         map[string]string `json:"params"`
	Metadata       json.RawMessage   `json:"metadata"`
	ProviderID     string            `json:"provider_id,omitempty"`
	Solution       string            `json:"solution,omitempty"`
	Via            string            `json:"via,omitempty"`
	ErrorCode      string            `json:"error_code,omitempty"`
	ErrorMessage   string            `json:"error_message,omitempty"`
	Cost           string            `json:"cost,omitempty"`
	PingbackURL    string            `json:"pingback_url,omitempty"`
	SubmitAttempts int               `json:"submit_attempts"`
	Polls          int               `json:"polls"`
	CreatedAt      string            `json:"created_at"`
	SubmittedAt    *string           `json:"submitted_at"`
	CompletedAt    *string           `json:"completed_at"`
	ExpiresAt      string            `json:"expires_at"`
	UpdatedAt      string            `json:"updated_at"`
	// Timings in milliseconds: created to submitted, submitted to completed.
	SubmitMS *int64          `json:"submit_ms,omitempty"`
	SolveMS  *int64          `json:"solve_ms,omitempty"`
	History  []taskEntryJSON `json:"history,omitempty"`
}

type taskEntryJSON struct {
	Kind    string          `json:"kind"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	At      string          `json:"at"`
}

func taskView(t store.Task) taskJSON {
	v := taskJSON{ID: t.ID, Status: t.Status, Method: t.Method, Params: t.Params, Metadata: t.Metadata, ProviderID: t.ProviderID,
		Solution: t.Solution, Via: t.Via, ErrorCode: t.ErrorCode, ErrorMessage: t.ErrorMessage, Cost: t.Cost, PingbackURL: t.PingbackURL,
		SubmitAttempts: t.SubmitAttempts, Polls: t.Polls, CreatedAt: formatTime(t.CreatedAt), SubmittedAt: formatTimePtr(t.SubmittedAt),
		CompletedAt: formatTimePtr(t.CompletedAt), ExpiresAt: formatTime(t.ExpiresAt), UpdatedAt: formatTime(t.UpdatedAt)}
	if t.Status == store.TaskSubmitted {
		v.ErrorCode, v.ErrorMessage = "", ""
	}
	if t.SubmittedAt != nil {
		d := t.SubmittedAt.Sub(t.CreatedAt).Milliseconds()
		v.SubmitMS = &d
		if t.CompletedAt != nil {
			s := t.CompletedAt.Sub(*t.SubmittedAt).Milliseconds()
			v.SolveMS = &s
		}
	}
	return v
}

func (s *Server) tasksEnabled() error {
	if s.Tasks == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "async tasks are not configured: set CARRIER_PROVIDER_URL and CARRIER_PROVIDER_KEY, or start with --simulate"}
	}
	return nil
}

// taskRequest is the body of POST /v1/tasks.
type taskRequest struct {
	Method   string            `json:"method"`
	Params   map[string]string `json:"params"`
	Metadata json.RawMessage   `json:"metadata"`
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.tasksEnabled(); err != nil {
		return err
	}
	var req taskRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, err := s.Tasks.Create(r.Context(), k.ProjectID, task.NewTask{Method: req.Method, Params: req.Params, Metadata: req.Metadata})
	if err != nil {
		return err
	}
	ok(w, http.StatusAccepted, map[string]any{"task_id": t.ID, "status": t.Status, "created_at": formatTime(t.CreatedAt)})
	return nil
}

var taskStatuses = map[string]bool{store.TaskPending: true, store.TaskSubmitted: true, store.TaskSolved: true, store.TaskFailed: true, store.TaskExpired: true}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	if err := s.allowList(w, k.ProjectID); err != nil {
		return err
	}
	f := store.TaskFilter{ProjectID: k.ProjectID, Limit: limit, Offset: offset}
	q := r.URL.Query()
	if st := q.Get("status"); st != "" {
		if !taskStatuses[st] {
			return invalid("status", "must be one of pending, submitted, solved, failed, expired")
		}
		f.Status = st
	}
	if f.From, f.To, err = timeRange(r); err != nil {
		return err
	}
	tasks, err := s.Store.ListTasks(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]taskJSON, len(tasks))
	for i, t := range tasks {
		out[i] = taskView(t)
	}
	s.spendList(k.ProjectID, store.ListSize(tasks))
	ok(w, http.StatusOK, out, "meta", pageMeta(limit, offset, len(tasks), store.ListCut(tasks)))
	return nil
}

// timeRange reads the optional from and to query parameters.
func timeRange(r *http.Request) (from, to *time.Time, err error) {
	for _, name := range []string{"from", "to"} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		t, perr := parseTimeParam(v)
		if perr != nil {
			return nil, nil, invalid(name, "must be an ISO 8601 date or time, such as 2026-01-27 or 2026-01-27T10:00:00Z")
		}
		if name == "from" {
			from = &t
		} else {
			to = &t
		}
	}
	return from, to, nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	t, err := s.Store.GetTask(r.Context(), k.ProjectID, r.PathValue("id"))
	if err != nil {
		if isNotFound(err) {
			return notFound("task")
		}
		return err
	}
	hist, err := s.Store.TaskHistory(r.Context(), k.ProjectID, t.ID)
	if err != nil {
		return err
	}
	v := taskView(t)
	v.History = make([]taskEntryJSON, len(hist))
	for i, e := range hist {
		v.History[i] = taskEntryJSON{Kind: e.Kind, Message: e.Message, Detail: e.Detail, At: formatTime(e.At)}
		if string(e.Detail) == "null" {
			v.History[i].Detail = nil
		}
	}
	ok(w, http.StatusOK, v)
	return nil
}

// --- pingback receiver ---

// callback receives a provider's pingback on a task's unguessable URL. It
// answers 200 only once the callback is recorded (in the store, as a dead
// letter, or in the local spool while the store is down), and 404 to a token
// no task has, without recording anything.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	if s.Tasks == nil {
		s.fail(w, r, notFound("callback"))
		return
	}
	token := r.PathValue("token")
	if len(token) < 16 || len(token) > 128 {
		s.fail(w, r, notFound("callback"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, task.MaxCallbackBody))
	if err != nil {
		s.fail(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Message: "callback body exceeds 64 KiB"})
		return
	}
	raw := task.RawCallback{Method: r.Method, Query: r.URL.RawQuery, Body: string(body), ContentType: r.Header.Get("Content-Type")}
	if err := task.CheckRaw(raw); err != nil {
		// Kept as a dead letter it would be refused by PostgreSQL; the
		// fallback poller still fetches the task's result.
		s.fail(w, r, err)
		return
	}
	// A database that hangs instead of failing must not hold the provider's
	// request: after a few seconds the callback goes to the spool instead.
	// Once started, recording goes on even if the provider hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	out, err := s.Tasks.HandleCallback(ctx, token, raw)
	cancel()
	switch {
	case errors.Is(err, task.ErrUnknownToken):
		s.fail(w, r, notFound("callback"))
		return
	case err != nil:
		if s.Spool == nil || !store.IsUnavailable(err) {
			// A rejected write would be rejected again on replay.
			s.fail(w, r, err)
			return
		}
		if serr := s.Spool.Callback(token, raw); serr != nil {
			s.log.Error("callback could not be stored nor spooled", "err", err, "spool_err", serr)
			s.fail(w, r, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "callback could not be recorded; try again"})
			return
		}
		out = "spooled"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "OK")
	s.log.Debug("callback", "outcome", out)
}

// --- dead letters ---

type deadLetterJSON struct {
	ID          string  `json:"id"`
	TaskID      string  `json:"task_id,omitempty"`
	Source      string  `json:"source"`
	Reason      string  `json:"reason"`
	Message     string  `json:"message"`
	Status      string  `json:"status"`
	Method      string  `json:"method"`
	Query       string  `json:"query"`
	Body        string  `json:"body"`
	ContentType string  `json:"content_type,omitempty"`
	Redrives    int     `json:"redrives"`
	LastError   string  `json:"last_error,omitempty"`
	CreatedAt   string  `json:"created_at"`
	RedrivenAt  *string `json:"redriven_at"`
}

func deadLetterView(d store.DeadLetter) deadLetterJSON {
	return deadLetterJSON{ID: d.ID, TaskID: d.TaskID, Source: d.Source, Reason: d.Reason, Message: d.Message, Status: d.Status,
		Method: d.Method, Query: d.Query, Body: d.Body, ContentType: d.ContentType, Redrives: d.Redrives, LastError: d.LastError,
		CreatedAt: formatTime(d.CreatedAt), RedrivenAt: formatTimePtr(d.RedrivenAt)}
}

var deadLetterStatuses = map[string]bool{store.DeadLetterPending: true, store.DeadLetterRedriven: true}

func deadLetterFilter(r *http.Request, k store.APIKey) (store.DeadLetterFilter, error) {
	f := store.DeadLetterFilter{ProjectID: k.ProjectID}
	q := r.URL.Query()
	if st := q.Get("status"); st != "" {
		if !deadLetterStatuses[st] {
			return f, invalid("status", "must be pending or redriven")
		}
		f.Status = st
	}
	f.Reason = q.Get("reason")
	f.TaskID = q.Get("task_id")
	if src := q.Get("source"); src != "" {
		if src != "callback" && src != outage.DeadLetterSource {
			return f, invalid("source", "must be callback or spool")
		}
		f.Source = src
	}
	var err error
	f.From, f.To, err = timeRange(r)
	return f, err
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	if err := s.allowList(w, k.ProjectID); err != nil {
		return err
	}
	f, err := deadLetterFilter(r, k)
	if err != nil {
		return err
	}
	f.Limit, f.Offset = limit, offset
	dls, err := s.Store.ListDeadLetters(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]deadLetterJSON, len(dls))
	for i, d := range dls {
		out[i] = deadLetterView(d)
	}
	s.spendList(k.ProjectID, store.ListSize(dls))
	ok(w, http.StatusOK, out, "meta", pageMeta(limit, offset, len(dls), store.ListCut(dls)))
	return nil
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	d, err := s.Store.GetDeadLetter(r.Context(), k.ProjectID, r.PathValue("id"))
	if err != nil {
		if isNotFound(err) {
			return notFound("dead letter")
		}
		return err
	}
	ok(w, http.StatusOK, deadLetterView(d))
	return nil
}

// redriveError maps a redrive failure to the error shape.
func redriveError(err error) error {
	var rerr *task.RedriveError
	switch {
	case errors.As(err, &rerr):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "not_processable", Message: "still cannot be processed: " + rerr.Error()}
	case errors.Is(err, task.ErrAlreadyRedriven):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "dead letter was already redriven"}
	case isNotFound(err):
		return notFound("dead letter")
	}
	return err
}

// redrive processes a dead letter again: through the spooler, which
// publishes a spooled publish again itself and hands every other dead letter
// to the tasks service, or, without a spool, through the tasks service.
func (s *Server) redrive(ctx context.Context, projectID, id string) (store.DeadLetter, error) {
	if s.Spool != nil {
		d, err := s.Spool.Redrive(ctx, projectID, id)
		if errors.Is(err, outage.ErrNotRedrivable) {
			return d, s.tasksEnabled()
		}
		return d, err
	}
	if err := s.tasksEnabled(); err != nil {
		return store.DeadLetter{}, err
	}
	return s.Tasks.Redrive(ctx, projectID, id)
}

func (s *Server) redriveDeadLetter(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	d, err := s.redrive(r.Context(), k.ProjectID, r.PathValue("id"))
	if err != nil {
		return redriveError(err)
	}
	ok(w, http.StatusOK, deadLetterView(d))
	return nil
}

// redriveDeadLetters redrives every pending dead letter matching the filters
// (status is always pending), up to limit (default 100, at most 1000).
func (s *Server) redriveDeadLetters(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	limit, _, err := paging(r)
	if err != nil {
		return err
	}
	f, err := deadLetterFilter(r, k)
	if err != nil {
		return err
	}
	f.Status, f.Limit = store.DeadLetterPending, limit
	dls, err := s.Store.ListDeadLetters(r.Context(), f)
	if err != nil {
		return err
	}
	redriven, failed := 0, []map[string]any{}
	for _, d := range dls {
		if _, err := s.redrive(r.Context(), k.ProjectID, d.ID); err != nil {
			failed = append(failed, map[string]any{"id": d.ID, "error": redriveError(err).Error()})
			continue
		}
		redriven++
	}
	ok(w, http.StatusOK, map[string]any{"redriven": redriven, "failed": failed})
	return nil
}
