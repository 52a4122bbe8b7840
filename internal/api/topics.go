package api

import (
	"errors"
	"net/http"

	"carrier/internal/store"
	"carrier/internal/topic"
)

// Topics under /v1/topics: the SNS topics of a project (internal/topic), the
// same ones the SNS protocol creates. Publishing to a topic is publishing an
// event of type "sns.<name>" (POST /v1/events, or SNS Publish); subscribing
// is a subscription to that type (POST /v1/subscriptions, or SNS Subscribe).
// Errors name the SNS attribute at fault ("Name", "Attributes.DisplayName").

type topicJSON struct {
	ID                        string            `json:"id"`
	Name                      string            `json:"name"`
	EventType                 string            `json:"event_type"`
	FIFO                      bool              `json:"fifo"`
	ContentBasedDeduplication bool              `json:"content_based_deduplication"`
	Attributes                map[string]string `json:"attributes"`
	Tags                      map[string]string `json:"tags"`
	CreatedAt                 string            `json:"created_at"`
}

func topicView(t store.Topic) topicJSON {
	attrs, tags := t.Attributes, t.Tags
	if attrs == nil {
		attrs = map[string]string{}
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return topicJSON{ID: t.ID, Name: t.Name, EventType: topic.EventType(t.Name), FIFO: t.FIFO, ContentBasedDeduplication: t.ContentDedup,
		Attributes: attrs, Tags: tags, CreatedAt: formatTime(t.CreatedAt)}
}

func (s *Server) topicsEnabled() error {
	if s.Topics == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "topics are not configured"}
	}
	return nil
}

func topicError(err error) error {
	var nf *topic.NotFoundError
	if errors.As(err, &nf) {
		return notFound("topic")
	}
	return err
}

// topicRequest is the body of POST /v1/topics.
type topicRequest struct {
	Name                      *string           `json:"name"`
	FIFO                      bool              `json:"fifo"`
	ContentBasedDeduplication bool              `json:"content_based_deduplication"`
	Attributes                map[string]string `json:"attributes"`
	Tags                      map[string]string `json:"tags"`
}

func (s *Server) createTopic(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.topicsEnabled(); err != nil {
		return err
	}
	var req topicRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return invalid("name", "is required")
	}
	attrs := map[string]string{}
	for k, v := range req.Attributes {
		attrs[k] = v
	}
	if req.FIFO {
		attrs["FifoTopic"] = "true"
	}
	if req.ContentBasedDeduplication {
		attrs["ContentBasedDeduplication"] = "true"
	}
	t, err := s.Topics.Create(r.Context(), k.ProjectID, *req.Name, attrs, req.Tags)
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, topicView(t))
	return nil
}

func (s *Server) listTopics(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.topicsEnabled(); err != nil {
		return err
	}
	ts, err := s.Topics.List(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	out := make([]topicJSON, len(ts))
	for i, t := range ts {
		out[i] = topicView(t)
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.topicsEnabled(); err != nil {
		return err
	}
	t, err := s.Topics.Get(r.Context(), k.ProjectID, r.PathValue("name"))
	if err != nil {
		return topicError(err)
	}
	ok(w, http.StatusOK, topicView(t))
	return nil
}

func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.topicsEnabled(); err != nil {
		return err
	}
	if _, err := s.Topics.Get(r.Context(), k.ProjectID, r.PathValue("name")); err != nil {
		return topicError(err)
	}
	if err := s.Topics.Delete(r.Context(), k.ProjectID, r.PathValue("name")); err != nil {
		return topicError(err)
	}
	ok(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "deleted": true})
	return nil
}
