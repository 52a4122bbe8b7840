package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
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
