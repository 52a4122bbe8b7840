package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carrier/internal/ingest"
)

func TestUnknownRoutesAnswerInTheErrorShape(t *testing.T) {
	s := New(Deps{Log: slog.Default()})
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"PATCH", "/v1/webhooks/abc", http.StatusMethodNotAllowed, CodeMethodNotAllowed},
		{"GET", "/v1/nothing", http.StatusNotFound, CodeNotFound},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		var body struct {
			Success bool `json:"success"`
			Error   struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != tt.status || body.Error.Code != tt.code || body.Success {
			t.Errorf("%s %s: got %d %q, want %d %q", tt.method, tt.path, w.Code, body.Error.Code, tt.status, tt.code)
		}
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("PATCH", "/v1/webhooks/abc", nil))
	if w.Header().Get("Allow") == "" {
		t.Error("405 without an Allow header")
	}
}

// TestOverloadedPublishAnswer503: a publish refused because the store is
// behind answers 503 with Retry-After, in the error shape, naming the settings.
func TestOverloadedPublishAnswer503(t *testing.T) {
	s := New(Deps{Log: slog.Default()})
	rec := httptest.NewRecorder()
	s.fail(rec, httptest.NewRequest("POST", "/v1/events", nil), &ingest.OverloadedError{Waited: 2 * time.Second})
	var body struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || body.Error.Code != CodeUnavailable ||
		!strings.Contains(body.Error.Message, "CARRIER_PUBLISH_BACKLOG_WAIT") {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
