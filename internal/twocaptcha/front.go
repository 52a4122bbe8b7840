// Package twocaptcha is Carrier's 2captcha-compatible front: POST or GET
// /in.php and /res.php, so that existing 2captcha and CaptchaAI client
// libraries work unchanged when pointed at Carrier. The key parameter is a
// Carrier API key. Parameters come from the query, a form, a multipart form
// or a JSON body, as 2captcha takes them. Answers are 2captcha's, field for
// field (see answer), always with HTTP 200 as 2captcha answers.
//
// The front is a transport over the task service: it creates tasks, answers
// results from Carrier's store (never upstream, but for get2's price), and
// passes balance and reports on to the task service's provider.
package twocaptcha

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"carrier/internal/auth"
	"carrier/internal/dest/pingback"
	"carrier/internal/ingest"
	"carrier/internal/netguard"
	"carrier/internal/provider"
	"carrier/internal/store"
	"carrier/internal/task"
)

// Authenticator checks the key parameter as a Carrier API key: the key
// service the REST API authenticates with (*auth.Service), with its cache
// and its outage grace.
type Authenticator interface {
	// Authenticate returns the key's record: auth.ErrInvalidKey when there
	// is no such key or it was revoked; another error means the store could
	// not be asked.
	Authenticate(ctx context.Context, key string) (store.APIKey, error)
}

// TaskStore is what the front reads of tasks directly: results are
// answered from the store. Every change goes through the task service.
type TaskStore interface {
	GetTask(ctx context.Context, projectID, id string) (store.Task, error)
}

// Front serves /in.php and /res.php. Set its fields before serving.
type Front struct {
	Store TaskStore
	// Tasks runs async tasks; nil when no provider is configured, which
	// in.php, getbalance and reports then answer with CodeNoProvider.
	Tasks *task.Service
	// Auth authenticates the key parameter.
	Auth Authenticator
	// Guard checks that pingback addresses may be reached.
	Guard *netguard.Guard
	// Pingbacks keeps the pingback subscriptions; nil refuses pingback URLs.
	Pingbacks *pingback.Registry
	// Refusal tells an error Pingbacks.Ensure returns because the request
	// is refused (the subscription quota: subscription.Refusal) from a
	// failure, with the message to show the client; nil treats every error
	// as a failure.
	Refusal func(error) (message string, ok bool)
	Log     *slog.Logger

	balance balanceCache
}

// Routes are the patterns the front answers, for the API's mux to mount, so
// that other methods and paths get the API's own 404 and 405 answers.
func (f *Front) Routes() map[string]http.Handler {
	in, res := http.HandlerFunc(f.in), http.HandlerFunc(f.res)
	return map[string]http.Handler{"POST /in.php": in, "GET /in.php": in, "GET /res.php": res, "POST /res.php": res}
}

// params are in.php parameters that describe the request itself rather than the task.
var params = map[string]bool{"key": true, "json": true, "method": true, "pingback": true, "soft_id": true, "header_acao": true, "file": true, "debug_dump": true}

// authenticate checks the key parameter.
func (f *Front) authenticate(r *http.Request, key string) (store.APIKey, answer, bool) {
	if len(strings.TrimSpace(key)) < 16 {
		return store.APIKey{}, errorAnswer(provider.CodeWrongUserKey), false
	}
	k, err := f.Auth.Authenticate(r.Context(), key)
	switch {
	case errors.Is(err, auth.ErrInvalidKey):
		return k, errorAnswer(provider.CodeKeyDoesNotExist), false
	case err != nil:
		f.Log.Warn("2captcha front: authenticate", "err", err)
		return k, errorAnswer(provider.CodeNoSlotAvailable), false // the store is unreachable: worth retrying
	}
	return k, answer{}, true
}

// start reads a legacy request and authenticates it. It answers the
// request itself and returns false when it cannot go on.
func (f *Front) start(w http.ResponseWriter, r *http.Request) (url.Values, store.APIKey, bool) {
	form, bad, ok := readForm(w, r)
	asJSON := ok && form.Get("json") == "1"
	if ok && form.Get("header_acao") == "1" {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	if !ok {
		write(w, asJSON, bad)
		return nil, store.APIKey{}, false
	}
	k, bad, ok := f.authenticate(r, form.Get("key"))
	if !ok {
		write(w, asJSON, bad)
		return nil, k, false
	}
	return form, k, true
}

func (f *Front) in(w http.ResponseWriter, r *http.Request) {
	form, k, ok := f.start(w, r)
	if !ok {
		return
	}
	write(w, form.Get("json") == "1", f.submit(r, form, k))
}

func (f *Front) submit(r *http.Request, form url.Values, k store.APIKey) answer {
	if f.Tasks == nil {
		return errorAnswer(CodeNoProvider)
	}
	method := form.Get("method")
	ps := map[string]string{}
	for name, vals := range form {
		if !params[name] && len(vals) > 0 {
			ps[name] = vals[0]
		}
	}
	// method=post uploads an image file; the provider gets it as base64.
	if method == "post" {
		var fh []*multipart.FileHeader
		if r.MultipartForm != nil {
			fh = r.MultipartForm.File["file"]
		}
		if len(fh) == 0 {
			return errorWith("ERROR_ZERO_CAPTCHA_FILESIZE", "method=post needs the image as the multipart file field \"file\".")
		}
		file, err := fh[0].Open()
		if err != nil {
			return errorAnswer("ERROR_UPLOAD")
		}
		b, err := io.ReadAll(file)
		file.Close()
		if err != nil {
			return errorAnswer("ERROR_UPLOAD")
		}
		if len(b) == 0 {
			return errorAnswer("ERROR_ZERO_CAPTCHA_FILESIZE")
		}
		method, ps["body"] = "base64", base64.StdEncoding.EncodeToString(b)
	}
	if method == "base64" && strings.TrimSpace(ps["body"]) == "" {
		return errorWith("ERROR_ZERO_CAPTCHA_FILESIZE", "method=base64 needs the image, base64-encoded, in the body parameter.")
	}
	in := task.NewTask{Method: method, Params: ps, Metadata: json.RawMessage(`{"source":"in.php"}`)}
	if pb := form.Get("pingback"); pb != "" {
		if bad, ok := f.pingback(r, k, pb, "pingback"); !ok {
			return bad
		}
		in.PingbackURL = pb
	}
	t, err := f.Tasks.Create(r.Context(), k.ProjectID, in)
	if err != nil {
		var verr *ingest.ValidationError
		switch {
		case errors.As(err, &verr) && verr.Field == "params.googlekey":
			return errorAnswer("ERROR_GOOGLEKEY")
		case errors.As(err, &verr) && verr.Field == "params.pageurl":
			return errorAnswer("ERROR_PAGEURL")
		case errors.As(err, &verr):
			field := strings.TrimPrefix(verr.Field, "params.")
			return errorWith("ERROR_BAD_PARAMETERS", field+" "+verr.Message+".")
		}
		f.Log.Error("in.php: create task", "err", err)
		return errorAnswer(provider.CodeNoSlotAvailable)
	}
	return resultAnswer(t.ID)
}

// pingback checks a pingback address (in.php's pingback, add_pingback's
// addr) and makes the pingback subscription of its host, so the address is
// known to be reachable before any task relies on it.
func (f *Front) pingback(r *http.Request, k store.APIKey, raw, param string) (answer, bool) {
	u, err := pingback.ParseURL(raw)
	if err != nil {
		return errorWith("ERROR_BAD_PARAMETERS", param+" "+err.Error()+"."), false
	}
	if err := f.Guard.CheckURL(r.Context(), raw); err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return errorWith("ERROR_BAD_PARAMETERS", param+" is not allowed: "+err.Error()+
				" (loopback and private addresses need CARRIER_ALLOW_PRIVATE_NETWORKS=true, or carrier serve --dev)."), false
		}
		return errorWith("ERROR_BAD_PARAMETERS", param+" cannot be reached: "+err.Error()+"."), false
	}
	if f.Pingbacks == nil {
		return errorWith("ERROR_BAD_PARAMETERS", "pingbacks are not configured in this Carrier."), false
	}
	if _, err := f.Pingbacks.Ensure(r.Context(), k.ProjectID, pingback.HostOf(u)); err != nil {
		if f.Refusal != nil {
			if msg, ok := f.Refusal(err); ok {
				return errorWith("ERROR_BAD_PARAMETERS", param+": "+msg+"."), false
			}
		}
		f.Log.Error("2captcha front: pingback subscription", "err", err)
		return errorAnswer(provider.CodeNoSlotAvailable), false
	}
	return answer{}, true
}

func (f *Front) res(w http.ResponseWriter, r *http.Request) {
	form, k, ok := f.start(w, r)
	if !ok {
		return
	}
	write(w, form.Get("json") == "1", f.action(r, form, k))
}

func (f *Front) action(r *http.Request, form url.Values, k store.APIKey) answer {
	switch action := form.Get("action"); action {
	case "get":
		if ids := form.Get("ids"); ids != "" {
			return f.results(r, k, ids)
		}
		a, _ := f.task(r, k, form.Get("id"))
		return a
	case "get2":
		a, t := f.task(r, k, form.Get("id"))
		if a.OK {
			price := f.price(r, t)
			a.Price = &price
		}
		return a
	case "getbalance":
		if f.Tasks == nil {
			return errorAnswer(CodeNoProvider)
		}
		bal, err := f.balance.get(r.Context(), f.Tasks.Provider())
		if err != nil {
			return errorAnswer(f.upstreamCode(err))
		}
		return answer{OK: true, Request: bal, Bare: true}
	case "reportbad", "reportgood":
		return f.report(r, k, form.Get("id"), action == "reportgood")
	case "add_pingback":
		addr := form.Get("addr")
		if addr == "" {
			return errorWith("ERROR_BAD_PARAMETERS", "addr is required: the pingback URL or host to register.")
		}
		if bad, ok := f.pingback(r, k, pingbackAddrURL(addr), "addr"); !ok {
			return bad
		}
		return answer{OK: true, Request: "OK", Bare: true}
	case "get_pingback":
		hosts, err := f.pingbackHosts(r, k)
		if err != nil {
			return errorAnswer(provider.CodeNoSlotAvailable)
		}
		return answer{OK: true, List: hosts}
	case "del_pingback":
		addr := form.Get("addr")
		if addr == "" {
			return errorWith("ERROR_BAD_PARAMETERS", "addr is required: the pingback URL or host to delete, or all.")
		}
		host := "all"
		if addr != "all" {
			u, err := pingback.ParseURL(pingbackAddrURL(addr))
			if err != nil {
				return errorWith("ERROR_BAD_PARAMETERS", "addr "+err.Error()+".")
			}
			host = pingback.HostOf(u)
		}
		if f.Pingbacks != nil {
			if _, err := f.Pingbacks.Delete(r.Context(), k.ProjectID, host); err != nil {
				f.Log.Error("2captcha front: delete pingback", "err", err)
				return errorAnswer(provider.CodeNoSlotAvailable)
			}
		}
		return answer{OK: true, Request: "OK", Bare: true}
	default:
		return errorAnswer("ERROR_EMPTY_ACTION")
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

func (f *Front) pingbackHosts(r *http.Request, k store.APIKey) ([]string, error) {
	if f.Pingbacks == nil {
		return []string{}, nil
	}
	return f.Pingbacks.Hosts(r.Context(), k.ProjectID)
}

// taskIDPattern is the shape of the ids in.php answers (UUIDs).
var taskIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// task answers one task from Carrier's store, never asking upstream.
func (f *Front) task(r *http.Request, k store.APIKey, id string) (answer, store.Task) {
	id = strings.TrimSpace(id)
	if !taskIDPattern.MatchString(id) {
		return errorAnswer("ERROR_WRONG_ID_FORMAT"), store.Task{}
	}
	t, err := f.Store.GetTask(r.Context(), k.ProjectID, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorAnswer(provider.CodeWrongCaptchaID), t
		}
		f.Log.Warn("res.php: get task", "err", err)
		return errorAnswer(provider.CodeNoSlotAvailable), t
	}
	a, solved := pingback.LegacyAnswer(t.Status, t.Solution, t.ErrorCode)
	if solved {
		return resultAnswer(a), t
	}
	if a == "" {
		a = provider.CodeNotReady
	}
	return errorAnswer(a), t
}

// results answers action=get with ids=a,b,c: one item per id, in order,
// separated by '|' (an answer, CAPCHA_NOT_READY or an error code), as a
// result whatever the items are, and without "OK|" in plain text. The limit
// is 2captcha's, whatever the provider behind Carrier takes.
func (f *Front) results(r *http.Request, k store.APIKey, ids string) answer {
	list := strings.Split(ids, ",")
	if len(list) > provider.MaxBatch {
		return errorWith("ERROR_BAD_PARAMETERS", "ids may name at most 100 tasks.")
	}
	items := make([]string, len(list))
	for i, id := range list {
		a, _ := f.task(r, k, id)
		items[i] = a.Request
		if a.Request == provider.CodeNoSlotAvailable {
			return a
		}
	}
	return answer{OK: true, Request: strings.Join(items, "|"), Bare: true}
}

// price is a solved task's price, from the task service ("" when it cannot
// be known).
func (f *Front) price(r *http.Request, t store.Task) string {
	if f.Tasks == nil {
		return t.Cost
	}
	cost, err := f.Tasks.Price(r.Context(), t)
	if err != nil {
		f.Log.Info("res.php: price of a solved task", "task", t.ID, "err", err)
	}
	return cost
}

func (f *Front) report(r *http.Request, k store.APIKey, id string, good bool) answer {
	a, t := f.task(r, k, id)
	switch {
	case !a.OK && (a.Request == "ERROR_WRONG_ID_FORMAT" || a.Request == provider.CodeWrongCaptchaID || a.Request == provider.CodeNoSlotAvailable):
		return a
	case f.Tasks == nil:
		return errorAnswer(CodeNoProvider)
	}
	err := f.Tasks.Report(r.Context(), t, good)
	switch {
	case errors.Is(err, task.ErrNotSolved):
		return errorAnswer("ERROR_REPORT_NOT_RECORDED")
	case err != nil:
		return errorAnswer(f.upstreamCode(err))
	}
	return answer{OK: true, Request: provider.CodeReportRecorded, Bare: true}
}

// upstreamCode is the legacy code to pass on for a provider error: its own
// code when it has one, ERROR_NO_SLOT_AVAILABLE (retry later) when the
// provider could not be asked.
func (f *Front) upstreamCode(err error) string {
	if code := f.Tasks.Provider().ErrorCode(err); provider.IsErrorCode(code) {
		return code
	}
	return provider.CodeNoSlotAvailable
}
