package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"carrier/internal/ingest"
	"carrier/internal/store"
)

type publishRequest struct {
	Type           string            `json:"type"`
	Data           json.RawMessage   `json:"data"`
	Subject        string            `json:"subject"`
	Attributes     ingest.Attributes `json:"attributes"`
	IdempotencyKey string            `json:"idempotency_key"`
	// OrderingKey and DeduplicationID serve FIFO subscriptions (see the README).
	OrderingKey     string `json:"ordering_key"`
	DeduplicationID string `json:"deduplication_id"`
}

type eventJSON struct {
	ID             string            `json:"id"`
	Type           string            `json:"type"`
	Subject        string            `json:"subject,omitempty"`
	Data           json.RawMessage   `json:"data"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	CreatedAt      string            `json:"created_at"`
	Deliveries     []deliveryJSON    `json:"deliveries,omitempty"`
}

func eventView(e store.Event) eventJSON {
	return eventJSON{ID: e.ID, Type: e.Type, Subject: e.Subject, Data: e.Data, Attributes: e.Attributes,
		IdempotencyKey: e.IdempotencyKey, CreatedAt: formatTime(e.CreatedAt)}
}

func (s *Server) publishEvent(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	var req publishRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	key := req.IdempotencyKey
	if h := r.Header.Get("Idempotency-Key"); h != "" {
		if key != "" && key != h {
			return invalid("idempotency_key", "differs from the Idempotency-Key header")
		}
		key = h
	}
	in := ingest.Input{
		ProjectID: k.ProjectID, Type: req.Type, Subject: req.Subject, Data: req.Data,
		Attributes: req.Attributes, IdempotencyKey: key,
		OrderingKey: req.OrderingKey, DeduplicationID: req.DeduplicationID,
		CapFanout: true,
	}
	if err := s.PublishLimit.Allow(k.ProjectID, 1); err != nil {
		return err
	}
	res, err := s.Publisher.Publish(r.Context(), in)
	if err != nil {
		spooled, serr := s.spoolPublish(w, r, in, err)
		if serr != nil {
			return serr
		}
		ok(w, http.StatusAccepted, map[string]any{"event_id": spooled, "deliveries": nil, "duplicate": false, "spooled": true})
		return nil
	}
	data := map[string]any{"event_id": res.EventID, "deliveries": res.Deliveries, "duplicate": res.Duplicate}
	if res.Duplicate {
		ok(w, http.StatusOK, data)
		return nil
	}
	ok(w, http.StatusAccepted, data)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	if err := s.allowList(w, k.ProjectID); err != nil {
		return err
	}
	events, err := s.Store.ListEvents(r.Context(), k.ProjectID, limit, offset)
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(events))
	for i, e := range events {
		out[i] = eventView(e)
	}
	s.spendList(k.ProjectID, store.ListSize(events))
	ok(w, http.StatusOK, out, "meta", pageMeta(limit, offset, len(events), store.ListCut(events)))
	return nil
}

// pageMeta describes a page of a list: has_more says whether another page may
// follow (the page is full, or it was cut short at store.ListBytes of
// payload), and next_offset where it starts.
func pageMeta(limit, offset, n int, cut bool) map[string]any {
	m := map[string]any{"limit": limit, "offset": offset, "has_more": n == limit || (cut && n > 0)}
	if m["has_more"] == true {
		m["next_offset"] = offset + n
	}
	return m
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	e, err := s.Store.GetEvent(r.Context(), k.ProjectID, r.PathValue("id"))
	if err != nil {
		if isNotFound(err) {
			return notFound("event")
		}
		return err
	}
	ds, err := s.Store.ListDeliveries(r.Context(), store.DeliveryFilter{ProjectID: k.ProjectID, EventID: e.ID, Limit: 1000})
	if err != nil {
		return err
	}
	v := eventView(e)
	v.Deliveries = make([]deliveryJSON, len(ds))
	for i, d := range ds {
		v.Deliveries[i] = deliveryView(d)
	}
	ok(w, http.StatusOK, v)
	return nil
}

// paging reads limit (1-1000, default 100) and offset (>= 0) from the query.
func paging(r *http.Request) (limit, offset int, err error) {
	limit, offset = 100, 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 1000 {
			return 0, 0, invalid("limit", "must be an integer from 1 to 1000")
		}
		limit = n
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return 0, 0, invalid("offset", "must be a non-negative integer")
		}
		offset = n
	}
	return limit, offset, nil
}

// spoolPublish keeps a publish that failed because the store could not take it
// in the local spool, and returns the event id it will have. Only an
// unavailable store is spooled: an event the store rejects would be rejected
// again on replay, so that error (like validation errors, shutdown and
// cancelled requests) is answered as it is; so is a publish to a FIFO
// subscription (see Publisher.Ordered), with 503 and Retry-After.
func (s *Server) spoolPublish(w http.ResponseWriter, r *http.Request, in ingest.Input, cause error) (string, error) {
	var verr *ingest.ValidationError
	if s.Spool == nil || !store.IsUnavailable(cause) || errors.As(cause, &verr) || errors.Is(cause, ingest.ErrClosed) || r.Context().Err() != nil {
		return "", cause
	}
	if s.Publisher.Ordered(in) {
		// Spooled, it would be stored on replay after events of its key that
		// were acknowledged later: the publisher retries instead, in order.
		w.Header().Set("Retry-After", "1")
		return "", &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the store is unavailable and the event goes to a FIFO subscription, whose order a spooled publish would break; retry"}
	}
	in.EventID = newID()
	// Acknowledged now, so stored on replay whatever its fan-out by then.
	in.CapFanout = false
	if in.IdempotencyKey == "" {
		// Replays after a crash must not create the event twice.
		in.IdempotencyKey = "carrier-spool:" + in.EventID
	}
	if err := s.Spool.Publish(in); err != nil {
		s.log.Error("publish could not be committed nor spooled", "err", cause, "spool_err", err)
		return "", &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "event could not be recorded; try again"}
	}
	s.log.Warn("store unavailable: publish spooled", "event", in.EventID, "err", cause)
	return in.EventID, nil
}
