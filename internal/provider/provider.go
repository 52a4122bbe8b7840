// Package provider is the client side of the classic 2captcha-compatible HTTP
// API spoken by 2captcha, CaptchaAI and their clones: in.php submits a task,
// res.php fetches results (one id or a batch), the balance, and reports.
//
// Every answer is accepted in both of the forms providers use: JSON
// ({"status":1,"request":"…"}, {"status":0,"request":"ERROR_…","error_text":"…"})
// and plain text ("OK|…", "ERROR_…", a bare number for the balance), because
// some providers ignore json=1. Failures are *Error values whose Code is the
// provider's code (ERROR_ZERO_BALANCE, …) or one of Carrier's own
// (network_error, timeout, http_5xx, http_429, http_4xx, bad_response), and
// whose Transient flag tells a caller whether trying again later can help.
//
// The API key travels in the in.php form body and in res.php query strings; it
// never appears in an error message: URLs in errors are redacted.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// MaxBatch is the most ids one res.php?action=get&ids=… request carries.
const MaxBatch = 100

// DefaultTimeout is the timeout of the HTTP client New uses when given none.
const DefaultTimeout = 30 * time.Second

// MaxAnswerBytes is the largest answer body the client reads; a larger one is
// a bad_response.
const MaxAnswerBytes = 4 << 20

// Codes Carrier assigns to failures that carry no provider code.
const (
	CodeNetwork     = "network_error" // the request could not be sent or its answer not read
	CodeTimeout     = "timeout"       // the request or its answer took too long (also HTTP 408)
	CodeHTTP5xx     = "http_5xx"      // the provider answered 5xx, whatever the body
	CodeHTTP429     = "http_429"      // the provider answered 429 Too Many Requests
	CodeHTTP4xx     = "http_4xx"      // any other 4xx without a provider error code (wrong base URL, …)
	CodeBadResponse = "bad_response"  // a 2xx answer that is neither a result nor an error code
	// CodeBatchMismatch: a batch answer whose item count differs from the ids
	// asked (an answer containing '|'); permanent for that batch: use Get.
	CodeBatchMismatch = "batch_mismatch"
)

// Provider answers callers commonly branch on.
const (
	CodeNotReady        = "CAPCHA_NOT_READY" // not an error: the task is still being solved
	CodeUnsolvable      = "ERROR_CAPTCHA_UNSOLVABLE"
	CodeWrongCaptchaID  = "ERROR_WRONG_CAPTCHA_ID"
	CodeNoSlotAvailable = "ERROR_NO_SLOT_AVAILABLE"
	CodeZeroBalance     = "ERROR_ZERO_BALANCE"
	CodeWrongUserKey    = "ERROR_WRONG_USER_KEY"
	CodeKeyDoesNotExist = "ERROR_KEY_DOES_NOT_EXIST"
	CodeReportRecorded  = "OK_REPORT_RECORDED" // the success answer of reportgood / reportbad
)

// codes maps every documented 2captcha / CaptchaAI in.php and res.php error
// code to whether it is transient. Codes not listed here are permanent, except
// the "ERROR: 1001"-style temporary blocks that Classify recognises by shape.
var codes = map[string]bool{
	// Transient: the provider is busy, rate-limiting or blocking for a while.
	"ERROR_NO_SLOT_AVAILABLE":     true, // queue too long or bid too low; retry in a few seconds
	"ERROR_TOO_MUCH_REQUESTS":     true, // rate limited
	"ERROR_TOO_MANY_REQUESTS":     true,
	"IP_BANNED":                   true, // lifted after a few minutes
	"ERROR_IP_BANNED":             true,
	"ERROR_IP_BLOCKED":            true,
	"MAX_USER_TURN":               true, // more than 60 in.php requests in 3 s; blocked for 10 s
	"ERROR_503":                   true,
	"ERROR_SERVER_ERROR":          true,
	"ERROR_INTERNAL_SERVER_ERROR": true,
	CodeNetwork:                   true,
	CodeTimeout:                   true,
	CodeHTTP5xx:                   true,
	CodeHTTP429:                   true,
	CodeBadResponse:               true, // providers say: wait and retry on anything unrecognisable

	// Permanent: fix the key, the account, the request or give the task up.
	// ERROR_ZERO_BALANCE is out of funds on 2captcha and "no free threads" on
	// CaptchaAI; Carrier treats it as permanent either way (a human must act).
	"ERROR_WRONG_USER_KEY":            false,
	"ERROR_KEY_DOES_NOT_EXIST":        false,
	"ERROR_ZERO_BALANCE":              false,
	"ERROR_PAGEURL":                   false,
	"ERROR_GOOGLEKEY":                 false,
	"ERROR_WRONG_GOOGLEKEY":           false,
	"ERROR_SITEKEY":                   false,
	"ERROR_CAPTCHA_UNSOLVABLE":        false,
	"ERROR_WRONG_CAPTCHA_ID":          false,
	"ERROR_NO_SUCH_CAPCHA_ID":         false,
	"ERROR_WRONG_ID_FORMAT":           false,
	"ERROR_BAD_PARAMETERS":            false,
	"ERROR_ZERO_CAPTCHA_FILESIZE":     false,
	"ERROR_TOO_BIG_CAPTCHA_FILESIZE":  false,
	"ERROR_WRONG_FILE_EXTENSION":      false,
	"ERROR_IMAGE_TYPE_NOT_SUPPORTED":  false,
	"ERROR_UPLOAD":                    false,
	"ERROR_IP_NOT_ALLOWED":            false,
	"ERROR_IP_ADDRES":                 false,
	"ERROR_BAD_TOKEN_OR_PAGEURL":      false,
	"ERROR_CAPTCHAIMAGE_BLOCKED":      false,
	"TOO_MANY_BAD_IMAGES":             false,
	"ERROR_EMPTY_ACTION":              false,
	"ERROR_NO_SUCH_METHOD":            false,
	"ERROR_BAD_DUPLICATES":            false,
	"ERROR_TOKEN_EXPIRED":             false,
	"ERROR_ACCOUNT_SUSPENDED":         false,
	"ERROR_RECAPTCHA_INVALID_SITEKEY": false,
	"ERROR_PROXY_FORMAT":              false,
	"ERROR_BAD_PROXY":                 false,
	"ERROR_PROXY_CONNECTION_FAILED":   false,
	"ERROR_REPORT_NOT_RECORDED":       false,
	"REPORT_NOT_RECORDED":             false,
	"ERROR_DUPLICATE_REPORT":          false,
	"ERROR_TASK_ABSENT":               false,
	"ERROR_TASK_NOT_SUPPORTED":        false,
	CodeHTTP4xx:                       false,
}

// taskCodes are the res.php error codes that concern one task rather than the
// request: Get and GetMany put them in Result.Err instead of failing.
var taskCodes = map[string]bool{
	"ERROR_CAPTCHA_UNSOLVABLE": true,
	"ERROR_WRONG_CAPTCHA_ID":   true,
	"ERROR_NO_SUCH_CAPCHA_ID":  true,
	"ERROR_WRONG_ID_FORMAT":    true,
	"ERROR_BAD_DUPLICATES":     true,
	"ERROR_TOKEN_EXPIRED":      true,
	"ERROR_BAD_PROXY":          true,
}

// unsupportedAction are the answers of a provider that does not know
// action=get2; Get then falls back to action=get for good.
var unsupportedAction = map[string]bool{
	"ERROR_EMPTY_ACTION":   true,
	"ERROR_WRONG_ACTION":   true,
	"ERROR_NO_SUCH_METHOD": true,
	"ERROR_NO_SUCH_ACTION": true,
	"ERROR_BAD_PARAMETERS": true,
}

// Classify reports whether a provider error code (or one of Carrier's own
// Code… values) is transient, that is whether the same request may succeed
// later. The "ERROR: 1001" … "ERROR: 1005" family (temporary blocks for
// request floods) is transient; unknown codes are permanent.
func Classify(code string) bool {
	code = strings.TrimSpace(code)
	if t, ok := codes[code]; ok {
		return t
	}
	return isNumberedBlock(code)
}

// isNumberedBlock matches "ERROR: 1001" and "ERROR:1001": 2captcha's temporary
// blocks after floods of bad requests (1001–1005), lifted after minutes.
func isNumberedBlock(code string) bool {
	rest, ok := strings.CutPrefix(code, "ERROR:")
	if !ok {
		return false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// IsErrorCode reports whether s, a string a provider sent where an answer was
// expected (a res.php "request", a pingback's code), is an error code rather
// than a solution. CAPCHA_NOT_READY is not an error code.
func IsErrorCode(s string) bool {
	s = strings.TrimSpace(s)
	if s == "ERROR" || strings.HasPrefix(s, "ERROR_") || strings.HasPrefix(s, "ERROR:") {
		return true
	}
	switch s {
	case "IP_BANNED", "MAX_USER_TURN", "REPORT_NOT_RECORDED", "TOO_MANY_BAD_IMAGES":
		return true
	}
	return false
}

// IsTaskError reports whether an error code concerns a single task (for
// example ERROR_CAPTCHA_UNSOLVABLE or ERROR_WRONG_CAPTCHA_ID) rather than the
// account or the request.
func IsTaskError(code string) bool {
	code = strings.TrimSpace(code)
	return taskCodes[code] || strings.HasPrefix(code, "ERROR_PROXY_")
}

// Error is a failed provider call or a failed task. Code is the provider's
// code (ERROR_ZERO_BALANCE, …) or one of Carrier's Code… values; Transient
// tells whether the same request may succeed later; Status is the HTTP status
// when an answer arrived; Text is the provider's error_text, if any; Err the
// underlying cause (a network error, a parse error), with URLs redacted.
type Error struct {
	Code      string
	Transient bool
	Status    int
	Text      string
	Err       error
}

// Error describes the failure without the API key.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Text != "" {
		b.WriteString(" (")
		b.WriteString(e.Text)
		b.WriteString(")")
	}
	if e.Status != 0 && e.Status != http.StatusOK {
		fmt.Fprintf(&b, " [HTTP %d]", e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth retrying later: an *Error marked
// Transient, or a context cancellation or deadline.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Transient
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ErrorCode returns the Code of the *Error in err's chain, or "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Client talks to one 2captcha-compatible provider. BaseURL is the provider's
// root (https://2captcha.com, https://ocr.captchaai.com); requests go to
// BaseURL+"/in.php" and BaseURL+"/res.php". A Client is safe for concurrent use.
type Client struct {
	BaseURL string
	Key     string
	HTTP    *http.Client

	noGet2 atomic.Bool // the provider answered get2 as an unknown action
}

var defaultHTTP = &http.Client{Timeout: DefaultTimeout}

// New returns a client for the provider at baseURL with the API key. A nil hc
// means an HTTP client with a DefaultTimeout timeout.
func New(baseURL, key string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key, HTTP: hc}
}

// Submission is one task to submit: the provider's method (userrecaptcha,
// base64, hcaptcha, turnstile, …), its parameters (googlekey, pageurl, body, …)
// and, optionally, the pingback URL the provider calls with the result.
type Submission struct {
	Method   string
	Params   map[string]string
	Pingback string
}

// Result is the state of one task. Ready means Solution holds the answer
// (and Cost its price, when the provider reported one). Err, an *Error, means
// the task ended without an answer (ERROR_CAPTCHA_UNSOLVABLE,
// ERROR_WRONG_CAPTCHA_ID, …). Neither means it is still being solved.
type Result struct {
	ID       string
	Ready    bool
	Solution string
	Cost     string
	Err      error
}

// Done reports whether the task has ended, solved or failed.
func (r Result) Done() bool { return r.Ready || r.Err != nil }

// Submit posts the task to in.php (form-encoded, with key, method, the
// parameters, pingback when set, and json=1) and returns the provider's task id.
func (c *Client) Submit(ctx context.Context, s Submission) (string, error) {
	if strings.TrimSpace(s.Method) == "" {
		return "", errors.New("provider: submit: method is required")
	}
	form := url.Values{}
	for k, v := range s.Params {
		form.Set(k, v)
	}
	form.Set("key", c.Key)
	form.Set("method", s.Method)
	form.Set("json", "1")
	if s.Pingback != "" {
		form.Set("pingback", s.Pingback)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/in.php", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("provider: submit %s: %w", s.Method, c.redact(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a, err := c.do(req)
	if err != nil {
		return "", fmt.Errorf("provider: submit %s: %w", s.Method, err)
	}
	if !a.ok {
		return "", fmt.Errorf("provider: submit %s: %w", s.Method, c.notOK(a))
	}
	id := strings.TrimSpace(a.text)
	if id == "" || strings.ContainsAny(id, "|, \t\r\n") {
		return "", fmt.Errorf("provider: submit %s: %w", s.Method, c.badResponse(a, "answer is not a task id"))
	}
	return id, nil
}

// Get asks res.php for one task with action=get2, which also reports the price
// ("OK|answer|0.0029" or {"status":1,"request":"answer","price":"0.0029"}).
// A provider that does not know get2 is asked with action=get from then on
// (no Cost). A task-level failure is returned in Result.Err with a nil error.
func (c *Client) Get(ctx context.Context, id string) (Result, error) {
	if err := checkID(id); err != nil {
		return Result{}, fmt.Errorf("provider: get: %w", err)
	}
	if !c.noGet2.Load() {
		r, err := c.get(ctx, id, "get2")
		if err == nil || !unsupportedAction[ErrorCode(err)] {
			return r, err
		}
		c.noGet2.Store(true)
	}
	return c.get(ctx, id, "get")
}

func (c *Client) get(ctx context.Context, id, action string) (Result, error) {
	a, err := c.res(ctx, url.Values{"action": {action}, "id": {id}})
	if err != nil {
		return Result{}, fmt.Errorf("provider: get %s: %w", id, err)
	}
	r := Result{ID: id}
	if a.ok {
		r.Ready, r.Solution, r.Cost = true, a.text, a.price
		if action == "get2" && !a.json {
			r.Solution, r.Cost = splitPrice(a.text)
		}
		return r, nil
	}
	if strings.TrimSpace(a.text) == CodeNotReady {
		return r, nil
	}
	e := c.notOK(a)
	if IsTaskError(e.Code) {
		r.Err = e
		return r, nil
	}
	return Result{}, fmt.Errorf("provider: get %s: %w", id, e)
}

// GetMany asks res.php?action=get&ids=a,b,c in one request (at most MaxBatch
// ids) and returns one Result per id, in order. The answer's request is a
// '|'-separated list with one item per id: an answer, CAPCHA_NOT_READY or an
// error code; plain-text answers may or may not start with "OK|". Known
// limitation of this batch form: an answer that itself contains '|' cannot be
// told apart; the batch then fails with the permanent code batch_mismatch
// (CodeBatchMismatch) and the caller should ask for those ids one by one with Get.
// An item with a request-level error (a wrong key, a rate limit) fails the call.
func (c *Client) GetMany(ctx context.Context, ids []string) ([]Result, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MaxBatch {
		return nil, fmt.Errorf("provider: get %d tasks: at most %d ids per request", len(ids), MaxBatch)
	}
	for _, id := range ids {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("provider: get %d tasks: %w", len(ids), err)
		}
	}
	a, err := c.res(ctx, url.Values{"action": {"get"}, "ids": {strings.Join(ids, ",")}})
	if err != nil {
		return nil, fmt.Errorf("provider: get %d tasks: %w", len(ids), err)
	}
	items := strings.Split(a.text, "|")
	if len(items) != len(ids) && a.ok && !a.json {
		// Plain answer without the "OK|" prefix whose first answer is "OK".
		items = strings.Split("OK|"+a.text, "|")
	}
	if len(items) != len(ids) {
		one := strings.TrimSpace(a.text)
		switch {
		case len(items) == 1 && one == CodeNotReady:
			items = make([]string, len(ids))
			for i := range items {
				items[i] = CodeNotReady
			}
		case len(items) == 1 && (IsErrorCode(one) || (a.json && !a.ok)):
			return nil, fmt.Errorf("provider: get %d tasks: %w", len(ids), c.notOK(a))
		default:
			e := c.badResponse(a, fmt.Sprintf("%d items for %d ids", len(items), len(ids)))
			e.Code, e.Transient = CodeBatchMismatch, false
			return nil, fmt.Errorf("provider: get %d tasks: %w", len(ids), e)
		}
	}
	out := make([]Result, len(ids))
	for i, item := range items {
		r := Result{ID: ids[i]}
		code := strings.TrimSpace(item)
		switch {
		case code == CodeNotReady:
		case IsErrorCode(code):
			e := c.codeError(answer{text: code, json: a.json, status: a.status})
			if !IsTaskError(code) {
				return nil, fmt.Errorf("provider: get %d tasks: %s: %w", len(ids), ids[i], e)
			}
			r.Err = e
		default:
			r.Ready, r.Solution = true, item
		}
		out[i] = r
	}
	return out, nil
}

// Balance asks res.php?action=getbalance and returns the balance as the
// provider wrote it, a decimal string like "12.3456".
func (c *Client) Balance(ctx context.Context) (string, error) {
	a, err := c.res(ctx, url.Values{"action": {"getbalance"}})
	if err != nil {
		return "", fmt.Errorf("provider: balance: %w", err)
	}
	text := strings.TrimSpace(a.text)
	if !a.ok && (a.json || IsErrorCode(text)) {
		return "", fmt.Errorf("provider: balance: %w", c.notOK(a))
	}
	if _, err := strconv.ParseFloat(text, 64); err != nil {
		return "", fmt.Errorf("provider: balance: %w", c.badResponse(a, "balance is not a number"))
	}
	return text, nil
}

// Report tells the provider whether the answer of task id was right
// (reportgood) or wrong (reportbad). Errors such as ERROR_DUPLICATE_REPORT or
// ERROR_REPORT_NOT_RECORDED are returned as permanent *Error values.
func (c *Client) Report(ctx context.Context, id string, good bool) error {
	action := "reportbad"
	if good {
		action = "reportgood"
	}
	if err := checkID(id); err != nil {
		return fmt.Errorf("provider: %s: %w", action, err)
	}
	a, err := c.res(ctx, url.Values{"action": {action}, "id": {id}})
	if err != nil {
		return fmt.Errorf("provider: %s %s: %w", action, id, err)
	}
	text := strings.TrimSpace(a.text)
	if a.ok || text == CodeReportRecorded {
		return nil
	}
	return fmt.Errorf("provider: %s %s: %w", action, id, c.notOK(a))
}

// res sends a GET to res.php with the key, json=1 and q.
func (c *Client) res(ctx context.Context, q url.Values) (answer, error) {
	q.Set("key", c.Key)
	q.Set("json", "1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/res.php?"+q.Encode(), nil)
	if err != nil {
		return answer{}, c.redact(err)
	}
	return c.do(req)
}

// do sends req and turns the HTTP outcome into an answer or an *Error.
func (c *Client) do(req *http.Request) (answer, error) {
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.1")
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, c.transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return answer{}, c.transportError(err)
	}
	st := resp.StatusCode
	switch {
	case st >= 500:
		return answer{}, &Error{Code: CodeHTTP5xx, Transient: true, Status: st}
	case st == http.StatusTooManyRequests:
		return answer{}, &Error{Code: CodeHTTP429, Transient: true, Status: st}
	case st == http.StatusRequestTimeout:
		return answer{}, &Error{Code: CodeTimeout, Transient: true, Status: st}
	}
	if len(body) > MaxAnswerBytes {
		return answer{}, &Error{Code: CodeBadResponse, Transient: true, Status: st,
			Err: fmt.Errorf("answer larger than %d bytes", MaxAnswerBytes)}
	}
	a, perr := parseAnswer(body)
	a.status = st
	if st >= 400 {
		// Some providers send their error codes with a 4xx status.
		if perr == nil && !a.ok && IsErrorCode(a.text) {
			return answer{}, c.codeError(a)
		}
		return answer{}, &Error{Code: CodeHTTP4xx, Status: st}
	}
	if st < 200 || st > 299 {
		return answer{}, &Error{Code: CodeBadResponse, Transient: true, Status: st,
			Err: fmt.Errorf("unexpected HTTP status %d", st)}
	}
	if perr != nil {
		return answer{}, &Error{Code: CodeBadResponse, Transient: true, Status: st, Err: perr}
	}
	return a, nil
}

// transportError wraps a failure to send a request or read its answer.
func (c *Client) transportError(err error) error {
	err = c.redact(err)
	code := CodeNetwork
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		code = CodeTimeout
	}
	return &Error{Code: code, Transient: true, Err: err}
}

// notOK turns an answer that is not a success into an *Error: the provider's
// code when it is one, else a bad_response.
func (c *Client) notOK(a answer) *Error {
	text := strings.TrimSpace(a.text)
	if IsErrorCode(text) || (a.json && looksLikeCode(text)) {
		return c.codeError(a)
	}
	return c.badResponse(a, "unexpected answer")
}

func (c *Client) codeError(a answer) *Error {
	code := c.scrub(strings.TrimSpace(a.text))
	return &Error{Code: code, Transient: Classify(code), Status: a.status, Text: c.scrub(a.errText)}
}

func (c *Client) badResponse(a answer, why string) *Error {
	text := a.text
	if len(text) > 80 {
		text = text[:80] + "…"
	}
	return &Error{Code: CodeBadResponse, Transient: true, Status: a.status,
		Err: fmt.Errorf("%s: %q", why, c.scrub(text))}
}

// looksLikeCode reports whether s has the shape of an error code: upper-case
// letters, digits, '_', ':' and spaces, such as a JSON status 0 would carry.
func looksLikeCode(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == ' ') {
			return false
		}
	}
	return true
}

// redact removes the API key from err's message: the URL of a *url.Error is
// rewritten with key=REDACTED; any other mention is replaced as well.
func (c *Client) redact(err error) error {
	if ue, ok := err.(*url.Error); ok {
		cp := *ue
		cp.URL = redactURL(ue.URL)
		err = &cp
	}
	if c.Key != "" && strings.Contains(err.Error(), c.Key) {
		var cause error
		switch {
		case errors.Is(err, context.Canceled):
			cause = context.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			cause = context.DeadlineExceeded
		}
		return &scrubbed{msg: c.scrub(err.Error()), cause: cause}
	}
	return err
}

func (c *Client) scrub(s string) string {
	if c.Key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Key, "REDACTED")
}

// scrubbed is an error whose message had the key removed; it keeps only a
// context cause in its chain, never the original (which names the key).
type scrubbed struct {
	msg   string
	cause error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.cause }

// redactURL replaces the value of the key query parameter with REDACTED.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	if q.Has("key") {
		q.Set("key", "REDACTED")
		u.RawQuery = q.Encode()
	}
	u.User = nil
	return u.String()
}

// checkID rejects ids that cannot travel in a res.php query or batch.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty task id")
	}
	if strings.ContainsAny(id, ",| \t\r\n") {
		return fmt.Errorf("malformed task id %q", id)
	}
	return nil
}

// splitPrice splits a plain get2 answer "answer|0.0029" into answer and price.
// When the part after the last '|' is not a decimal number the whole text is
// the answer.
func splitPrice(s string) (answer, price string) {
	i := strings.LastIndexByte(s, '|')
	if i < 0 {
		return s, ""
	}
	p := strings.TrimSpace(s[i+1:])
	if !isDecimal(p) {
		return s, ""
	}
	return s[:i], p
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// answer is a parsed in.php or res.php answer.
type answer struct {
	ok      bool   // JSON status 1, or plain text starting "OK|" (or exactly "OK")
	json    bool   // the answer was JSON
	text    string // JSON request; plain: the text after "OK|", or the whole body
	price   string // JSON price (get2)
	errText string // JSON error_text
	status  int    // HTTP status
}

var utf8BOM = []byte("\xef\xbb\xbf")

// parseAnswer reads both answer forms: JSON {"status":…,"request":…} and plain
// text. A JSON request that is not a string (some methods answer objects or
// arrays) is kept as its JSON text.
func parseAnswer(body []byte) (answer, error) {
	b := bytes.TrimSpace(bytes.TrimPrefix(body, utf8BOM))
	if len(b) == 0 {
		return answer{}, errors.New("empty answer")
	}
	if b[0] == '{' {
		var raw struct {
			Status    json.RawMessage `json:"status"`
			Request   json.RawMessage `json:"request"`
			Price     json.RawMessage `json:"price"`
			ErrorText json.RawMessage `json:"error_text"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return answer{}, fmt.Errorf("decode JSON answer: %w", err)
		}
		if len(raw.Status) == 0 {
			return answer{}, errors.New("JSON answer without status")
		}
		status := jsonText(raw.Status)
		if status != "0" && status != "1" {
			return answer{}, fmt.Errorf("JSON answer with status %s", raw.Status)
		}
		return answer{
			ok:      status == "1",
			json:    true,
			text:    jsonText(raw.Request),
			price:   jsonText(raw.Price),
			errText: jsonText(raw.ErrorText),
		}, nil
	}
	s := string(b)
	if s == "OK" {
		return answer{ok: true}, nil
	}
	if rest, ok := strings.CutPrefix(s, "OK|"); ok {
		return answer{ok: true, text: rest}, nil
	}
	return answer{text: s}, nil
}

// jsonText returns a JSON string's value, "" for null or absent, and any other
// value's JSON text (numbers, booleans, objects, arrays).
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
	}
	return string(raw)
}
