package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"carrier/internal/dest/pingback"
	"carrier/internal/ingest"
	"carrier/internal/netguard"
	"carrier/internal/provider"
	"carrier/internal/store"
	"carrier/internal/task"
)

// The 2captcha-compatible front: POST or GET /in.php and /res.php on Carrier,
// so that existing 2captcha and CaptchaAI client libraries work unchanged
// when pointed at Carrier. The key parameter is a Carrier API key. Parameters
// come from the query, a form, a multipart form or a JSON body, as 2captcha
// takes them. Answers are 2captcha's, field for field (see compatAnswer),
// always with HTTP 200 as 2captcha answers.

// BalanceCacheTTL is how long getbalance answers from cache before asking upstream again.
const BalanceCacheTTL = 15 * time.Second

// CodeNoProvider answers requests that need an upstream provider when none is
// configured. Clients treat an unknown ERROR_ code as final, which it is
// until the operator configures one; ERROR_NO_SLOT_AVAILABLE, which this
// used to be, is retried by clients for ever.
const CodeNoProvider = "ERROR_NO_PROVIDER_CONFIGURED"

// compatParams are in.php parameters that describe the request itself rather than the task.
var compatParams = map[string]bool{"key": true, "json": true, "method": true, "pingback": true, "soft_id": true, "header_acao": true, "file": true, "debug_dump": true}

type balanceCache struct {
	mu      sync.Mutex
	value   string
	expires time.Time
	call    *balanceCall // the upstream request running now, if any
}

// balanceCall is one upstream balance request that callers wait for together.
type balanceCall struct {
	done  chan struct{} // closed when value and err are set
	value string
	err   error
}

// compatAnswer is one answer of the legacy API. 2captcha answers in two forms:
//
//	plain: "OK|<request>" for a result (Bare: just <request>, as getbalance,
//	       reportbad and ids= answer), or the code itself (CAPCHA_NOT_READY,
//	       ERROR_…)
//	json:  {"status": 1, "request": <request>} for a result, {"status": 0,
//	       "request": <code>} otherwise, with "error_text" for an error code
//
// JSON clients tell a result from everything else by status alone, so
// status is 1 for a result and nothing else.
type compatAnswer struct {
	OK      bool
	Request string
	// List, when set, is the JSON form's request instead of Request (get_pingback).
	List []string
	// Bare leaves "OK|" off the plain form of a result.
	Bare bool
	// Price is get2's price, appended as "|price" or sent as "price".
	Price *string
	// Text is the error_text of an error; "" uses the code's documented text.
	Text string
}

func compatResult(request string) compatAnswer { return compatAnswer{OK: true, Request: request} }

func compatError(code string) compatAnswer { return compatAnswer{Request: code} }

func compatErrorWith(code, text string) compatAnswer { return compatAnswer{Request: code, Text: text} }

// isErrorCode tells an error code from CAPCHA_NOT_READY and results.
func isErrorCode(s string) bool {
	return strings.HasPrefix(s, "ERROR") || s == "IP_BANNED" || s == "MAX_USER_TURN" || s == "TOO_MANY_BAD_IMAGES"
}

func writeCompat(w http.ResponseWriter, asJSON bool, a compatAnswer) {
	if asJSON {
		body := map[string]any{"status": 0, "request": a.Request}
		if a.OK {
			body["status"] = 1
			if a.List != nil {
				body["request"] = a.List
			}
			if a.Price != nil {
				body["price"] = *a.Price
			}
		} else if isErrorCode(a.Request) {
			text := a.Text
			if text == "" {
				text = compatErrorText(a.Request)
			}
			body["error_text"] = text
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	text := a.Request
	if a.OK && a.List != nil {
		text = strings.Join(append([]string{"OK"}, a.List...), "|")
	} else if a.OK && !a.Bare {
		text = "OK|" + text
		if a.Price != nil {
			text += "|" + *a.Price
		}
	}
	io.WriteString(w, text)
}

// compatErrorText is the error_text of a code: what it means and what to do.
func compatErrorText(code string) string {
	switch code {
	case "ERROR_WRONG_USER_KEY":
		return "The key parameter is missing or malformed: it must be a Carrier API key (at least 16 characters)."
	case "ERROR_KEY_DOES_NOT_EXIST":
		return "The key you provided is not a Carrier API key, or it was revoked."
	case "ERROR_WRONG_ID_FORMAT":
		return "The id parameter is missing or is not a task id that in.php answered."
	case "ERROR_WRONG_CAPTCHA_ID":
		return "No task of this key's project has this id."
	case "ERROR_BAD_PARAMETERS":
		return "Required parameters are missing or malformed."
	case "ERROR_EMPTY_ACTION":
		return "The action parameter is missing or not supported (get, get2, getbalance, reportbad, reportgood, add_pingback, get_pingback, del_pingback)."
	case "ERROR_GOOGLEKEY":
		return "The googlekey parameter is missing."
	case "ERROR_PAGEURL":
		return "The pageurl parameter is missing."
	case "ERROR_ZERO_CAPTCHA_FILESIZE":
		return "The captcha image is empty."
	case "ERROR_TOO_BIG_CAPTCHA_FILESIZE":
		return "The request is larger than Carrier accepts (1 MiB)."
	case "ERROR_CAPTCHA_UNSOLVABLE":
		return "The task was not solved: the provider could not solve it, or it expired without a result."
	case "ERROR_REPORT_NOT_RECORDED":
		return "Only a task that was solved can be reported."
	case "ERROR_NO_SLOT_AVAILABLE":
		return "Carrier cannot reach its database right now; try again in a few seconds."
	case CodeNoProvider:
		return "Carrier has no CAPTCHA provider configured: set CARRIER_PROVIDER_URL and CARRIER_PROVIDER_KEY (or start Carrier with --simulate)."
	}
	return code
}

// compatForm reads a legacy request's parameters: the query, then the body
// as a form, a multipart form (whose files stay in r.MultipartForm) or a JSON
// object, which 2captcha's current API takes too. A JSON body is recognised
// by its content type or, since some clients send it as text/plain, by its
// first byte. JSON numbers keep their text, booleans become 1 and 0, and
// objects and arrays (such as json_cookies) their compact JSON.
func compatForm(w http.ResponseWriter, r *http.Request) (url.Values, compatAnswer, bool) {
	form := r.URL.Query()
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	ct := r.Header.Get("Content-Type")
	var tooBig *http.MaxBytesError
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		if err := r.ParseMultipartForm(MaxBody); err != nil {
			if errors.As(err, &tooBig) {
				return nil, compatError("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, compatError("ERROR_BAD_PARAMETERS"), false
		}
		mergeValues(form, r.MultipartForm.Value)
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.As(err, &tooBig) {
				return nil, compatError("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, compatError("ERROR_BAD_PARAMETERS"), false
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, compatErrorWith("ERROR_BAD_PARAMETERS", "The form body is malformed: "+err.Error()), false
		}
		mergeValues(form, vals)
	default:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.As(err, &tooBig) {
				return nil, compatError("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, compatError("ERROR_BAD_PARAMETERS"), false
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			break
		}
		if strings.HasPrefix(ct, "application/json") || trimmed[0] == '{' {
			vals, err := jsonValues(trimmed)
			if err != nil {
				return nil, compatErrorWith("ERROR_BAD_PARAMETERS", "The JSON body is malformed: "+err.Error()), false
			}
			mergeValues(form, vals)
		}
	}
	return form, compatAnswer{}, true
}

// mergeValues lets the body's parameters win over the query's.
func mergeValues(dst url.Values, src map[string][]string) {
	for k, v := range src {
		if len(v) > 0 {
			dst[k] = v
		}
	}
}

// jsonValues flattens a JSON object of parameters into string values.
func jsonValues(body []byte) (url.Values, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	vals := url.Values{}
	for k, v := range obj {
		switch v := v.(type) {
		case nil:
		case string:
			vals.Set(k, v)
		case json.Number:
			vals.Set(k, v.String())
		case bool:
			if v {
				vals.Set(k, "1")
			} else {
				vals.Set(k, "0")
			}
		default:
			b, _ := json.Marshal(v)
			vals.Set(k, string(b))
		}
	}
	return vals, nil
}

// compatKey authenticates the key parameter as a Carrier API key.
func (s *Server) compatKey(r *http.Request, key string) (store.APIKey, compatAnswer, bool) {
	if len(strings.TrimSpace(key)) < 16 {
		return store.APIKey{}, compatError("ERROR_WRONG_USER_KEY"), false
	}
	req := r.Clone(r.Context())
	req.Header = http.Header{"Authorization": {"Bearer " + key}}
	k, err := s.authenticate(req)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			return k, compatError("ERROR_KEY_DOES_NOT_EXIST"), false
		}
		s.log.Warn("2captcha front: authenticate", "err", err)
		return k, compatError("ERROR_NO_SLOT_AVAILABLE"), false // the store is unreachable: worth retrying
	}
	return k, compatAnswer{}, true
}

// compatStart reads a legacy request and authenticates it. It answers the
// request itself and returns false when it cannot go on.
func (s *Server) compatStart(w http.ResponseWriter, r *http.Request) (url.Values, store.APIKey, bool) {
	form, bad, ok := compatForm(w, r)
	asJSON := ok && form.Get("json") == "1"
	if ok && form.Get("header_acao") == "1" {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	if !ok {
		writeCompat(w, asJSON, bad)
		return nil, store.APIKey{}, false
	}
	k, bad, ok := s.compatKey(r, form.Get("key"))
	if !ok {
		writeCompat(w, asJSON, bad)
		return nil, k, false
	}
	return form, k, true
}

func (s *Server) compatIn(w http.ResponseWriter, r *http.Request) {
	form, k, ok := s.compatStart(w, r)
	if !ok {
		return
	}
	writeCompat(w, form.Get("json") == "1", s.compatSubmit(r, form, k))
}

func (s *Server) compatSubmit(r *http.Request, form url.Values, k store.APIKey) compatAnswer {
	if s.Tasks == nil {
		return compatError(CodeNoProvider)
	}
	method := form.Get("method")
	params := map[string]string{}
	for name, vals := range form {
		if !compatParams[name] && len(vals) > 0 {
			params[name] = vals[0]
		}
	}
	// method=post uploads an image file; the provider gets it as base64.
	if method == "post" {
		var fh []*multipart.FileHeader
		if r.MultipartForm != nil {
			fh = r.MultipartForm.File["file"]
		}
		if len(fh) == 0 {
			return compatErrorWith("ERROR_ZERO_CAPTCHA_FILESIZE", "method=post needs the image as the multipart file field \"file\".")
		}
		f, err := fh[0].Open()
		if err != nil {
			return compatError("ERROR_UPLOAD")
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return compatError("ERROR_UPLOAD")
		}
		if len(b) == 0 {
			return compatError("ERROR_ZERO_CAPTCHA_FILESIZE")
		}
		method, params["body"] = "base64", base64.StdEncoding.EncodeToString(b)
	}
	if method == "base64" && strings.TrimSpace(params["body"]) == "" {
		return compatErrorWith("ERROR_ZERO_CAPTCHA_FILESIZE", "method=base64 needs the image, base64-encoded, in the body parameter.")
	}
	in := task.NewTask{Method: method, Params: params, Metadata: json.RawMessage(`{"source":"in.php"}`)}
	if pb := form.Get("pingback"); pb != "" {
		if bad, ok := s.compatPingback(r, k, pb, "pingback"); !ok {
			return bad
		}
		in.PingbackURL = pb
	}
	t, err := s.Tasks.Create(r.Context(), k.ProjectID, in)
	if err != nil {
		var verr *ingest.ValidationError
		switch {
		case errors.As(err, &verr) && verr.Field == "params.googlekey":
			return compatError("ERROR_GOOGLEKEY")
		case errors.As(err, &verr) && verr.Field == "params.pageurl":
			return compatError("ERROR_PAGEURL")
		case errors.As(err, &verr):
			field := strings.TrimPrefix(verr.Field, "params.")
			return compatErrorWith("ERROR_BAD_PARAMETERS", field+" "+verr.Message+".")
		}
		s.log.Error("in.php: create task", "err", err)
		return compatError("ERROR_NO_SLOT_AVAILABLE")
	}
	return compatResult(t.ID)
}

// compatPingback checks a pingback address (in.php's pingback, add_pingback's
// addr) and makes the pingback subscription of its host, so the address is
// known to be reachable before any task relies on it.
func (s *Server) compatPingback(r *http.Request, k store.APIKey, raw, param string) (compatAnswer, bool) {
	u, err := pingback.ParseURL(raw)
	if err != nil {
		return compatErrorWith("ERROR_BAD_PARAMETERS", param+" "+err.Error()+"."), false
	}
	if err := s.Guard.CheckURL(r.Context(), raw); err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return compatErrorWith("ERROR_BAD_PARAMETERS", param+" is not allowed: "+err.Error()+
				" (loopback and private addresses need CARRIER_ALLOW_PRIVATE_NETWORKS=true, or carrier serve --dev)."), false
		}
		return compatErrorWith("ERROR_BAD_PARAMETERS", param+" cannot be reached: "+err.Error()+"."), false
	}
	if s.Pingbacks == nil {
		return compatErrorWith("ERROR_BAD_PARAMETERS", "pingbacks are not configured in this Carrier."), false
	}
	if _, err := s.Pingbacks.Ensure(r.Context(), k.ProjectID, pingback.HostOf(u)); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return compatErrorWith("ERROR_BAD_PARAMETERS", param+": "+apiErr.Message+"."), false
		}
		s.log.Error("2captcha front: pingback subscription", "err", err)
		return compatError("ERROR_NO_SLOT_AVAILABLE"), false
	}
	return compatAnswer{}, true
}

func (s *Server) compatRes(w http.ResponseWriter, r *http.Request) {
	form, k, ok := s.compatStart(w, r)
	if !ok {
		return
	}
	writeCompat(w, form.Get("json") == "1", s.compatAction(r, form, k))
}

func (s *Server) compatAction(r *http.Request, form url.Values, k store.APIKey) compatAnswer {
	switch action := form.Get("action"); action {
	case "get":
		if ids := form.Get("ids"); ids != "" {
			return s.compatResults(r, k, ids)
		}
		a, _ := s.compatTask(r, k, form.Get("id"))
		return a
	case "get2":
		a, t := s.compatTask(r, k, form.Get("id"))
		if a.OK {
			price := s.compatPrice(r, t)
			a.Price = &price
		}
		return a
	case "getbalance":
		bal, err := s.cachedBalance(r)
		if err != nil {
			return compatError(upstreamCode(err))
		}
		return compatAnswer{OK: true, Request: bal, Bare: true}
	case "reportbad", "reportgood":
		return s.compatReport(r, k, form.Get("id"), action == "reportgood")
	case "add_pingback":
		addr := form.Get("addr")
		if addr == "" {
			return compatErrorWith("ERROR_BAD_PARAMETERS", "addr is required: the pingback URL or host to register.")
		}
		if bad, ok := s.compatPingback(r, k, pingbackAddrURL(addr), "addr"); !ok {
			return bad
		}
		return compatAnswer{OK: true, Request: "OK", Bare: true}
	case "get_pingback":
		hosts, err := s.pingbackHosts(r, k)
		if err != nil {
			return compatError("ERROR_NO_SLOT_AVAILABLE")
		}
		return compatAnswer{OK: true, List: hosts}
	case "del_pingback":
		addr := form.Get("addr")
		if addr == "" {
			return compatErrorWith("ERROR_BAD_PARAMETERS", "addr is required: the pingback URL or host to delete, or all.")
		}
		host := "all"
		if addr != "all" {
			u, err := pingback.ParseURL(pingbackAddrURL(addr))
			if err != nil {
				return compatErrorWith("ERROR_BAD_PARAMETERS", "addr "+err.Error()+".")
			}
			host = pingback.HostOf(u)
		}
		if s.Pingbacks != nil {
			if _, err := s.Pingbacks.Delete(r.Context(), k.ProjectID, host); err != nil {
				s.log.Error("2captcha front: delete pingback", "err", err)
				return compatError("ERROR_NO_SLOT_AVAILABLE")
			}
		}
		return compatAnswer{OK: true, Request: "OK", Bare: true}
	default:
		return compatError("ERROR_EMPTY_ACTION")
	}
}

// pingbackAddrURL makes a URL of an add_pingback or del_pingback address,
// which 2captcha takes as a URL or as a bare host ("mysite.com",
// "123.123.123.123/pingback/url/").
func pingbackAddrURL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "http://" + addr
}

func (s *Server) pingbackHosts(r *http.Request, k store.APIKey) ([]string, error) {
	if s.Pingbacks == nil {
		return []string{}, nil
	}
	return s.Pingbacks.Hosts(r.Context(), k.ProjectID)
}

// taskIDPattern is the shape of the ids in.php answers (UUIDs).
var taskIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// compatTask answers one task from Carrier's store, never asking upstream.
func (s *Server) compatTask(r *http.Request, k store.APIKey, id string) (compatAnswer, store.Task) {
	id = strings.TrimSpace(id)
	if !taskIDPattern.MatchString(id) {
		return compatError("ERROR_WRONG_ID_FORMAT"), store.Task{}
	}
	t, err := s.Store.GetTask(r.Context(), k.ProjectID, id)
	if err != nil {
		if isNotFound(err) {
			return compatError("ERROR_WRONG_CAPTCHA_ID"), t
		}
		s.log.Warn("res.php: get task", "err", err)
		return compatError("ERROR_NO_SLOT_AVAILABLE"), t
	}
	answer, solved := pingback.LegacyAnswer(t.Status, t.Solution, t.ErrorCode)
	if solved {
		return compatResult(answer), t
	}
	if answer == "" {
		answer = "CAPCHA_NOT_READY"
	}
	return compatError(answer), t
}

// compatResults answers action=get with ids=a,b,c: one item per id, in order,
// separated by '|' (an answer, CAPCHA_NOT_READY or an error code), as a
// result whatever the items are, and without "OK|" in plain text.
func (s *Server) compatResults(r *http.Request, k store.APIKey, ids string) compatAnswer {
	list := strings.Split(ids, ",")
	if len(list) > provider.MaxBatch {
		return compatErrorWith("ERROR_BAD_PARAMETERS", "ids may name at most 100 tasks.")
	}
	items := make([]string, len(list))
	for i, id := range list {
		a, _ := s.compatTask(r, k, id)
		items[i] = a.Request
		if a.Request == "ERROR_NO_SLOT_AVAILABLE" {
			return a
		}
	}
	return compatAnswer{OK: true, Request: strings.Join(items, "|"), Bare: true}
}

// compatPrice is a solved task's price: what the provider reported, else
// asked of it once with get2 and recorded. "" when it cannot be known.
func (s *Server) compatPrice(r *http.Request, t store.Task) string {
	if t.Cost != "" || s.Tasks == nil || t.ProviderID == "" {
		return t.Cost
	}
	res, err := s.Tasks.Provider().Get(r.Context(), t.ProviderID)
	if err != nil || res.Cost == "" {
		return ""
	}
	t.Cost = res.Cost
	if _, err := s.Store.UpdateTask(r.Context(), t, t.Version, nil); err != nil {
		s.log.Info("res.php: record the price get2 asked for", "task", t.ID, "err", err)
	}
	return res.Cost
}

func (s *Server) compatReport(r *http.Request, k store.APIKey, id string, good bool) compatAnswer {
	a, t := s.compatTask(r, k, id)
	switch {
	case !a.OK && (a.Request == "ERROR_WRONG_ID_FORMAT" || a.Request == "ERROR_WRONG_CAPTCHA_ID" || a.Request == "ERROR_NO_SLOT_AVAILABLE"):
		return a
	case s.Tasks == nil:
		return compatError(CodeNoProvider)
	case t.Status != store.TaskSolved || t.ProviderID == "":
		return compatError("ERROR_REPORT_NOT_RECORDED")
	}
	if err := s.Tasks.Provider().Report(r.Context(), t.ProviderID, good); err != nil {
		return compatError(upstreamCode(err))
	}
	return compatAnswer{OK: true, Request: "OK_REPORT_RECORDED", Bare: true}
}

// upstreamCode is the legacy code to pass on for a provider error: its own
// code when it has one, ERROR_NO_SLOT_AVAILABLE (retry later) when the
// provider could not be asked.
func upstreamCode(err error) string {
	if errors.Is(err, errNoProvider) {
		return CodeNoProvider
	}
	if code := provider.ErrorCode(err); isErrorCode(code) {
		return code
	}
	return "ERROR_NO_SLOT_AVAILABLE"
}

var errNoProvider = errors.New("no provider configured")

// cachedBalance answers the provider's balance, asking upstream at most once
// per BalanceCacheTTL. Concurrent callers share one upstream request, and no
// lock is held while it runs, so a slow provider holds up only the callers
// waiting for its answer (each until its own request ends).
func (s *Server) cachedBalance(r *http.Request) (string, error) {
	if s.Tasks == nil {
		return "", errNoProvider
	}
	c := &s.balance
	c.mu.Lock()
	if time.Now().Before(c.expires) {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	call := c.call
	if call == nil {
		call = &balanceCall{done: make(chan struct{})}
		c.call = call
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			v, err := s.Tasks.Provider().Balance(ctx)
			c.mu.Lock()
			call.value, call.err = v, err
			if err == nil {
				c.value, c.expires = v, time.Now().Add(BalanceCacheTTL)
			}
			c.call = nil
			c.mu.Unlock()
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.value, call.err
	case <-r.Context().Done():
		return "", r.Context().Err()
	}
}
