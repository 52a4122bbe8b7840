package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"carrier/internal/ingest"
	"carrier/internal/provider"
	"carrier/internal/store"
	"carrier/internal/task"
)

// The 2captcha-compatible front: POST /in.php and GET /res.php on Carrier, so
// that existing 2captcha and CaptchaAI client libraries work unchanged when
// pointed at Carrier. The key parameter is a Carrier API key. Answers use the
// legacy formats: "OK|…" or "ERROR_…" as plain text, or {"status", "request"}
// with json=1, always with HTTP 200 as the legacy API does.

// BalanceCacheTTL is how long getbalance answers from cache before asking upstream again.
const BalanceCacheTTL = 15 * time.Second

// compatParams are in.php parameters that describe the request itself rather than the task.
var compatParams = map[string]bool{"key": true, "json": true, "method": true, "pingback": true, "soft_id": true, "header_acao": true, "file": true}

type balanceCache struct {
	mu      sync.Mutex
	value   string
	expires time.Time
}

// compatAnswer writes a legacy answer: ok with its payload, or an error code.
func compatAnswer(w http.ResponseWriter, asJSON, success bool, request string, extra map[string]any) {
	if asJSON {
		body := map[string]any{"status": 0, "request": request}
		if success {
			body["status"] = 1
		} else {
			body["error_text"] = compatErrorText(request)
		}
		for k, v := range extra {
			body[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if success && !strings.HasPrefix(request, "CAPCHA_NOT_READY") && !strings.HasPrefix(request, "OK_") {
		request = "OK|" + request
		if p, ok := extra["price"].(string); ok {
			request += "|" + p
		}
	}
	io.WriteString(w, request)
}

func compatErrorText(code string) string {
	switch code {
	case "ERROR_WRONG_USER_KEY":
		return "The key parameter is missing or malformed."
	case "ERROR_KEY_DOES_NOT_EXIST":
		return "The key you provided does not exist."
	case "ERROR_WRONG_CAPTCHA_ID":
		return "The captcha id is wrong or does not belong to this key."
	case "ERROR_BAD_PARAMETERS":
		return "Required parameters are missing or malformed."
	case "ERROR_EMPTY_ACTION":
		return "The action parameter is missing or not supported."
	case "ERROR_GOOGLEKEY":
		return "The googlekey parameter is missing."
	case "ERROR_PAGEURL":
		return "The pageurl parameter is missing."
	case "ERROR_ZERO_CAPTCHA_FILESIZE":
		return "The captcha image is empty."
	case "ERROR_NO_SLOT_AVAILABLE":
		return "Temporarily unable to answer; try again in a few seconds."
	}
	return code
}

// compatKey authenticates the key parameter as a Carrier API key.
func (s *Server) compatKey(r *http.Request, key string) (store.APIKey, string) {
	if len(key) < 16 {
		return store.APIKey{}, "ERROR_WRONG_USER_KEY"
	}
	req := r.Clone(r.Context())
	req.Header = http.Header{"Authorization": {"Bearer " + key}}
	k, err := s.authenticate(req)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			return k, "ERROR_KEY_DOES_NOT_EXIST"
		}
		return k, "ERROR_NO_SLOT_AVAILABLE"
	}
	return k, ""
}

func (s *Server) compatIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if err := r.ParseMultipartForm(MaxBody); err != nil {
			compatAnswer(w, false, false, "ERROR_TOO_BIG_CAPTCHA_FILESIZE", nil)
			return
		}
	} else if err := r.ParseForm(); err != nil {
		compatAnswer(w, false, false, "ERROR_BAD_PARAMETERS", nil)
		return
	}
	asJSON := r.FormValue("json") == "1"
	k, code := s.compatKey(r, r.FormValue("key"))
	if code != "" {
		compatAnswer(w, asJSON, false, code, nil)
		return
	}
	if s.Tasks == nil {
		compatAnswer(w, asJSON, false, "ERROR_NO_SLOT_AVAILABLE", nil)
		return
	}
	method := r.FormValue("method")
	params := map[string]string{}
	for name, vals := range r.Form {
		if !compatParams[name] && len(vals) > 0 {
			params[name] = vals[0]
		}
	}
	// method=post uploads an image file; the provider gets it as base64.
	if method == "post" && r.MultipartForm != nil {
		if fh := r.MultipartForm.File["file"]; len(fh) > 0 {
			f, err := fh[0].Open()
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				method, params["body"] = "base64", base64.StdEncoding.EncodeToString(b)
			}
		}
	}
	var meta json.RawMessage
	if pb := r.FormValue("pingback"); pb != "" {
		meta, _ = json.Marshal(map[string]string{"pingback": pb, "source": "in.php"})
	}
	t, err := s.Tasks.Create(r.Context(), k.ProjectID, task.NewTask{Method: method, Params: params, Metadata: meta})
	if err != nil {
		var verr *ingest.ValidationError
		switch {
		case errors.As(err, &verr) && verr.Field == "params.googlekey":
			code = "ERROR_GOOGLEKEY"
		case errors.As(err, &verr) && verr.Field == "params.pageurl":
			code = "ERROR_PAGEURL"
		case errors.As(err, &verr):
			code = "ERROR_BAD_PARAMETERS"
		default:
			s.log.Error("in.php: create task", "err", err)
			code = "ERROR_NO_SLOT_AVAILABLE"
		}
		compatAnswer(w, asJSON, false, code, nil)
		return
	}
	compatAnswer(w, asJSON, true, t.ID, nil)
}

func (s *Server) compatRes(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	r.ParseForm()
	asJSON := r.FormValue("json") == "1"
	k, code := s.compatKey(r, r.FormValue("key"))
	if code != "" {
		compatAnswer(w, asJSON, false, code, nil)
		return
	}
	switch action := r.FormValue("action"); action {
	case "get", "get2":
		ids := r.FormValue("ids")
		if ids != "" && action == "get" {
			var parts []string
			for _, id := range strings.Split(ids, ",") {
				ans, _, _ := s.compatResult(r, k, strings.TrimSpace(id))
				parts = append(parts, ans)
			}
			compatAnswer(w, asJSON, true, strings.Join(parts, "|"), nil)
			return
		}
		ans, success, t := s.compatResult(r, k, r.FormValue("id"))
		var extra map[string]any
		if action == "get2" && success && t.Cost != "" {
			extra = map[string]any{"price": t.Cost}
		}
		compatAnswer(w, asJSON, success, ans, extra)
	case "getbalance":
		bal, err := s.cachedBalance(r)
		if err != nil {
			code := provider.ErrorCode(err)
			if code == "" || !strings.HasPrefix(code, "ERROR") {
				code = "ERROR_NO_SLOT_AVAILABLE"
			}
			compatAnswer(w, asJSON, false, code, nil)
			return
		}
		if asJSON {
			compatAnswer(w, true, true, bal, nil)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, bal)
	case "reportbad", "reportgood":
		t, err := s.Store.GetTask(r.Context(), k.ProjectID, r.FormValue("id"))
		if err != nil || t.ProviderID == "" || s.Tasks == nil {
			compatAnswer(w, asJSON, false, "ERROR_WRONG_CAPTCHA_ID", nil)
			return
		}
		if err := s.Tasks.Provider().Report(r.Context(), t.ProviderID, action == "reportgood"); err != nil {
			code := provider.ErrorCode(err)
			if !strings.HasPrefix(code, "ERROR") {
				code = "ERROR_NO_SLOT_AVAILABLE"
			}
			compatAnswer(w, asJSON, false, code, nil)
			return
		}
		compatAnswer(w, asJSON, true, "OK_REPORT_RECORDED", nil)
	default:
		compatAnswer(w, asJSON, false, "ERROR_EMPTY_ACTION", nil)
	}
}

// compatResult answers one task's result from Carrier's own store.
func (s *Server) compatResult(r *http.Request, k store.APIKey, id string) (string, bool, store.Task) {
	if id == "" {
		return "ERROR_WRONG_CAPTCHA_ID", false, store.Task{}
	}
	t, err := s.Store.GetTask(r.Context(), k.ProjectID, id)
	if err != nil {
		if isNotFound(err) {
			return "ERROR_WRONG_CAPTCHA_ID", false, t
		}
		return "ERROR_NO_SLOT_AVAILABLE", false, t
	}
	switch t.Status {
	case store.TaskSolved:
		return t.Solution, true, t
	case store.TaskFailed:
		if strings.HasPrefix(t.ErrorCode, "ERROR") {
			return t.ErrorCode, false, t
		}
		return "ERROR_CAPTCHA_UNSOLVABLE", false, t
	case store.TaskExpired:
		return "ERROR_CAPTCHA_UNSOLVABLE", false, t
	}
	return "CAPCHA_NOT_READY", true, t
}

// cachedBalance answers the provider's balance, asking upstream at most once per BalanceCacheTTL.
func (s *Server) cachedBalance(r *http.Request) (string, error) {
	if s.Tasks == nil {
		return "", errors.New("no provider configured")
	}
	s.balance.mu.Lock()
	defer s.balance.mu.Unlock()
	if time.Now().Before(s.balance.expires) {
		return s.balance.value, nil
	}
	v, err := s.Tasks.Provider().Balance(r.Context())
	if err != nil {
		return "", err
	}
	s.balance.value, s.balance.expires = v, time.Now().Add(BalanceCacheTTL)
	return v, nil
}
