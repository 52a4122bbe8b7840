// Package simulator is a fake 2captcha-compatible provider for demos, tests and
// benchmarks. It speaks the classic in.php / res.php API (plain text, or JSON
// with json=1, exactly like 2captcha), "solves" every task after a configurable
// delay with a deterministic answer, charges a balance, and calls the task's
// pingback URL the way real providers do: GET ?id=…&code=… (CaptchaAI) or a
// POST form id=…&code=… (2captcha), sent once, never retried.
//
// Faults make it behave like a real provider on a bad day: lost, late and
// duplicated pingbacks, transient and permanent submit errors, unsolvable
// tasks, slow in.php answers, slow and failing res.php answers. Fault dice
// are seeded, and hooks (FailNextSubmits, DropNextPingbacks, SetNextOutcomes)
// force exact outcomes for tests. Every timer and pingback goroutine ends with Close.
package simulator

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultKey is the API key the simulator accepts when Config.Key is empty.
const DefaultKey = "sim-key-0123456789abcdef0123456789"

// DefaultPrice is the price of one task when Config.Price is zero.
const DefaultPrice = 0.003

// DefaultBalance is the starting balance when Config.Balance is zero.
const DefaultBalance = 100.0

// DefaultLateBy is how late a late pingback is when Faults.LateBy is zero.
const DefaultLateBy = 30 * time.Second

// PingbackTimeout bounds every pingback request unless Config.PingbackTimeout says otherwise.
const PingbackTimeout = 2 * time.Second

// FirstID is the id of the first accepted task; later ids count up from it.
const FirstID = 7000000001

// MaxBatch is the most ids one res.php?action=get&ids=… request may carry.
const MaxBatch = 100

const (
	maxRequestBytes = 10 << 20
	minImageBytes   = 100
	maxImageBytes   = 100 << 10
	micro           = 1_000_000 // balance and prices are kept in millionths
)

// Config configures a Simulator. Zero values take the defaults noted.
type Config struct {
	// Key is the only accepted API key (DefaultKey when empty). A missing key
	// or one of another length answers ERROR_WRONG_USER_KEY, any other wrong
	// key ERROR_KEY_DOES_NOT_EXIST.
	Key string
	// Balance is the starting balance (DefaultBalance when zero; a negative
	// value is an account that cannot pay). Each accepted submit charges
	// Price; a submit the balance cannot pay answers ERROR_ZERO_BALANCE; an
	// unsolvable task is refunded, as 2captcha does.
	Balance float64
	// Price is charged per task (DefaultPrice when zero).
	Price float64
	// MinDelay and MaxDelay bound the solve delay, drawn uniformly in
	// [MinDelay, MaxDelay]. Both zero: tasks are solved at once (still
	// asynchronously). MaxDelay below MinDelay counts as MinDelay.
	MinDelay, MaxDelay time.Duration
	// PingbackMethod is "GET" (CaptchaAI style: GET pingback?id=…&code=…) or
	// "POST" (2captcha style: a form body id=…&code=…); GET when empty.
	PingbackMethod string
	// Seed seeds the fault and delay dice.
	Seed int64
	// Faults are the initial fault probabilities (see SetFaults).
	Faults Faults
	// PingbackTimeout bounds each pingback request (PingbackTimeout when zero).
	PingbackTimeout time.Duration
}

// Faults are the probabilities (0 to 1) and delays of misbehaviour.
type Faults struct {
	LostPingbacks      float64       // a pingback is never sent
	LatePingbacks      float64       // a pingback is sent LateBy after the solve
	LateBy             time.Duration // DefaultLateBy when zero
	DuplicatePingbacks float64       // a pingback is sent twice, one right after the other
	SubmitTransient    float64       // a submit answers ERROR_NO_SLOT_AVAILABLE
	SubmitPermanent    float64       // a submit answers ERROR_BAD_PARAMETERS
	Unsolvable         float64       // a task ends ERROR_CAPTCHA_UNSOLVABLE (the pingback's code)
	ResDelay           time.Duration // every res.php answer is this late
	ResFailures        float64       // a res.php request answers HTTP 500
	// SubmitDelay holds back every accepted in.php answer: the task is taken
	// (and charged) at once, its id is answered this much later, as over a
	// slow link. A client that hangs up meanwhile has paid for a task whose id
	// it never learns, so a resubmission pays twice.
	SubmitDelay time.Duration
}

// Validate reports the first setting out of range, naming it.
func (c Config) Validate() error {
	if c.Price < 0 {
		return fmt.Errorf("price must not be negative, got %v", c.Price)
	}
	if c.MinDelay < 0 || c.MaxDelay < 0 {
		return errors.New("min-delay and max-delay must not be negative")
	}
	if c.MaxDelay != 0 && c.MaxDelay < c.MinDelay {
		return fmt.Errorf("max-delay %v is below min-delay %v", c.MaxDelay, c.MinDelay)
	}
	switch strings.ToUpper(c.PingbackMethod) {
	case "", http.MethodGet, http.MethodPost:
	default:
		return fmt.Errorf("pingback-method must be GET or POST, got %q", c.PingbackMethod)
	}
	return c.Faults.Validate()
}

// Validate reports the first probability outside [0, 1] or negative duration.
func (f Faults) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"lost-pingbacks", f.LostPingbacks}, {"late-pingbacks", f.LatePingbacks},
		{"duplicate-pingbacks", f.DuplicatePingbacks}, {"submit-transient", f.SubmitTransient},
		{"submit-permanent", f.SubmitPermanent}, {"unsolvable", f.Unsolvable},
		{"res-failures", f.ResFailures},
	} {
		if p.v < 0 || p.v > 1 || math.IsNaN(p.v) {
			return fmt.Errorf("%s must be a probability between 0 and 1, got %v", p.name, p.v)
		}
	}
	if f.LateBy < 0 || f.ResDelay < 0 || f.SubmitDelay < 0 {
		return errors.New("late-by, res-delay and submit-delay must not be negative")
	}
	return nil
}

// Outcome forces how one upcoming accepted task ends (see SetNextOutcomes).
type Outcome struct {
	Delay      time.Duration // solve delay; zero solves at once
	Unsolvable bool          // end ERROR_CAPTCHA_UNSOLVABLE
	Answer     string        // the solution; Answer(id) when empty
}

// Stats are counters since New.
type Stats struct {
	Submits         int64 // in.php requests
	SubmitsAccepted int64 // of which accepted (a task id answered)
	ResRequests     int64 // every res.php request, failed ones included
	// ResGetRequests are the res.php requests whose query asks for results
	// (action=get or get2), failed ones included.
	ResGetRequests      int64
	ResFailures         int64 // res.php requests answered HTTP 500 by the ResFailures fault
	GetRequests         int64 // res.php action=get (single or batch) and get2
	BalanceRequests     int64 // res.php action=getbalance
	Reports             int64 // res.php action=reportgood / reportbad
	PingbacksSent       int64 // pingback requests sent (a duplicate counts twice)
	PingbacksFailed     int64 // of which the receiver was unreachable or answered non-2xx
	PingbacksLost       int64 // pingbacks deliberately never sent
	PingbacksLate       int64 // pingbacks delayed by LateBy
	PingbacksDuplicated int64 // pingbacks sent twice
	Solved              int64 // tasks solved
	Unsolvable          int64 // tasks ended ERROR_CAPTCHA_UNSOLVABLE
}

// SimTask is what the simulator knows about one task.
type SimTask struct {
	ID           string
	Method       string
	Params       map[string]string // the method parameters, without key, json, pingback and image bodies
	Pingback     string
	Answer       string // the solution, once solved
	Err          string // ERROR_CAPTCHA_UNSOLVABLE, once failed
	SubmittedAt  time.Time
	SolvedAt     time.Time // solved or failed
	PingbackAt   time.Time // the first pingback was sent
	Pingbacks    int       // pingback requests sent
	ReportedGood bool
	ReportedBad  bool
}

type task struct {
	SimTask
	outcome Outcome
	done    bool
}

// Simulator is a fake 2captcha-compatible provider; it is an http.Handler for
// /in.php and /res.php. Create it with New, serve it with Start (or any HTTP
// server), and end it with Close.
type Simulator struct {
	// OnSolved, if set before the first submit, is called (outside any lock)
	// when a task is solved, with its answer and the solve time. It is not
	// called for unsolvable tasks.
	OnSolved func(id, answer string, at time.Time)

	key     string
	price   int64 // millionths
	method  string
	minD    time.Duration
	maxD    time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	pinger  *http.Client
	pingTr  *http.Transport
	wg      sync.WaitGroup
	closeMu sync.Mutex // serialises Start and Close

	mu          sync.Mutex
	faults      Faults
	rng         *rand.Rand
	balance     int64 // millionths
	next        int64
	tasks       map[string]*task
	failSubmits int
	failCode    string
	dropPings   int
	outcomes    []Outcome
	stats       Stats
	closed      bool
	timers      map[uint64]*time.Timer
	timerSeq    uint64
	srv         *http.Server
	url         string
}

// New returns a simulator with cfg; invalid values are clamped (use
// Config.Validate to reject them instead).
func New(cfg Config) *Simulator {
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.Price <= 0 {
		cfg.Price = DefaultPrice
	}
	if cfg.Balance == 0 {
		cfg.Balance = DefaultBalance
	}
	cfg.MinDelay = max(cfg.MinDelay, 0)
	cfg.MaxDelay = max(cfg.MaxDelay, cfg.MinDelay)
	method := strings.ToUpper(cfg.PingbackMethod)
	if method != http.MethodPost {
		method = http.MethodGet
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	ctx, cancel := context.WithCancel(context.Background())
	seed := uint64(cfg.Seed)
	return &Simulator{
		key:     cfg.Key,
		price:   toMicro(cfg.Price),
		method:  method,
		minD:    cfg.MinDelay,
		maxD:    cfg.MaxDelay,
		ctx:     ctx,
		cancel:  cancel,
		pingTr:  tr,
		pinger:  &http.Client{Timeout: cmp.Or(cfg.PingbackTimeout, PingbackTimeout), Transport: tr, CheckRedirect: noRedirects},
		faults:  cfg.Faults,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		balance: toMicro(cfg.Balance),
		next:    FirstID,
		tasks:   make(map[string]*task),
		timers:  make(map[uint64]*time.Timer),
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Start listens on addr (for example 127.0.0.1:0) and serves in the
// background until Close. It returns the base URL, http://host:port.
func (s *Simulator) Start(addr string) (string, error) {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.mu.Lock()
	closed, started := s.closed, s.srv != nil
	s.mu.Unlock()
	if closed {
		return "", errors.New("simulator: start: already closed")
	}
	if started {
		return "", errors.New("simulator: start: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	u := "http://" + ln.Addr().String()
	s.mu.Lock()
	s.srv, s.url = srv, u
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return u, nil
}

// URL returns the base URL Start listens on, or "" before Start.
func (s *Simulator) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops the server (if started), every pending solve timer and every
// late or in-flight pingback, and waits for their goroutines. Tasks still
// pending are never solved. Close is idempotent.
func (s *Simulator) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for id, tm := range s.timers {
		if tm.Stop() {
			s.wg.Done() // its function will never run
		}
		delete(s.timers, id)
	}
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		if cerr := srv.Close(); cerr != nil {
			err = fmt.Errorf("simulator: close server: %w", cerr)
		}
	}
	s.wg.Wait()
	s.pingTr.CloseIdleConnections()
	return err
}

// SetFaults replaces the fault probabilities from now on.
func (s *Simulator) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// FailNextSubmits makes the next n submits with a valid key answer code (for
// example ERROR_NO_SLOT_AVAILABLE or ERROR_ZERO_BALANCE).
func (s *Simulator) FailNextSubmits(n int, code string) {
	s.mu.Lock()
	s.failSubmits, s.failCode = max(n, 0), code
	s.mu.Unlock()
}

// DropNextPingbacks makes the next n pingbacks (in the order tasks end) lost.
func (s *Simulator) DropNextPingbacks(n int) {
	s.mu.Lock()
	s.dropPings = max(n, 0)
	s.mu.Unlock()
}

// SetNextOutcomes queues the outcomes of the next accepted tasks, in order;
// tasks beyond them follow the configured delays and fault dice.
func (s *Simulator) SetNextOutcomes(o ...Outcome) {
	s.mu.Lock()
	s.outcomes = append(s.outcomes, o...)
	s.mu.Unlock()
}

// SetBalance sets the account balance.
func (s *Simulator) SetBalance(b float64) {
	s.mu.Lock()
	s.balance = toMicro(b)
	s.mu.Unlock()
}

// Balance returns the account balance.
func (s *Simulator) Balance() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.balance) / micro
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Task returns what the simulator knows about task id.
func (s *Simulator) Task(id string) (SimTask, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return SimTask{}, false
	}
	cp := t.SimTask
	cp.Params = make(map[string]string, len(t.Params))
	for k, v := range t.Params {
		cp.Params[k] = v
	}
	return cp, true
}

// Answer is the deterministic solution the simulator gives task id.
func Answer(id string) string { return "03AGdBq2-SIM-" + id }

// ServeHTTP answers /in.php and /res.php; anything else is 404.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "simulator closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	switch r.URL.Path {
	case "/in.php":
		s.serveIn(w, r)
	case "/res.php":
		s.serveRes(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveIn handles in.php: GET, form POST or multipart POST.
func (s *Simulator) serveIn(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.Submits++ })
	form, files, err := parseRequest(w, r)
	asJSON := form.Get("json") == "1"
	if err != nil {
		writeErr(w, asJSON, "ERROR_UPLOAD")
		return
	}
	if code := s.checkKey(form.Get("key")); code != "" {
		writeErr(w, asJSON, code)
		return
	}

	s.mu.Lock()
	code := ""
	switch {
	case s.failSubmits > 0:
		s.failSubmits--
		code = s.failCode
	case s.roll(s.faults.SubmitTransient):
		code = "ERROR_NO_SLOT_AVAILABLE"
	case s.roll(s.faults.SubmitPermanent):
		code = "ERROR_BAD_PARAMETERS"
	}
	s.mu.Unlock()
	if code != "" {
		writeErr(w, asJSON, code)
		return
	}

	method := form.Get("method")
	if code := validateMethod(method, form, files); code != "" {
		writeErr(w, asJSON, code)
		return
	}
	pingback := form.Get("pingback")
	if pingback != "" {
		u, err := url.Parse(pingback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			writeErr(w, asJSON, "ERROR_BAD_PARAMETERS")
			return
		}
	}
	params := make(map[string]string)
	for k, v := range form {
		switch k {
		case "key", "json", "method", "pingback", "body", "file":
			continue
		}
		if len(v) > 0 {
			params[k] = v[0]
		}
	}

	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "simulator closed", http.StatusServiceUnavailable)
		return
	}
	if s.balance < s.price {
		s.mu.Unlock()
		writeErr(w, asJSON, "ERROR_ZERO_BALANCE")
		return
	}
	s.balance -= s.price
	id := strconv.FormatInt(s.next, 10)
	s.next++
	var out Outcome
	if len(s.outcomes) > 0 {
		out = s.outcomes[0]
		s.outcomes = s.outcomes[1:]
	} else {
		out = Outcome{Delay: s.delay(), Unsolvable: s.roll(s.faults.Unsolvable)}
	}
	if out.Answer == "" {
		out.Answer = Answer(id)
	}
	s.tasks[id] = &task{
		SimTask: SimTask{ID: id, Method: method, Params: params, Pingback: pingback, SubmittedAt: now},
		outcome: out,
	}
	s.stats.SubmitsAccepted++
	s.afterLocked(out.Delay, func() { s.finish(id) })
	hold := s.faults.SubmitDelay
	s.mu.Unlock()
	if hold > 0 {
		tm := time.NewTimer(hold)
		select {
		case <-tm.C:
		case <-r.Context().Done():
			tm.Stop()
			return // the client hung up: the task stays taken and charged
		case <-s.ctx.Done():
			tm.Stop()
		}
	}
	writeOK(w, asJSON, id, "")
}

// knownMethods are the in.php methods the simulator accepts; the ones with
// required parameters are checked in validateMethod.
var knownMethods = map[string]bool{
	"userrecaptcha": true, "hcaptcha": true, "turnstile": true, "base64": true, "post": true,
	"textcaptcha": true, "geetest": true, "geetest_v4": true, "funcaptcha": true, "keycaptcha": true,
	"capy": true, "amazon_waf": true, "lemin": true, "yandex": true, "mt_captcha": true,
	"cutcaptcha": true, "friendly_captcha": true, "datadome": true, "tencent": true,
	"atb_captcha": true, "cybersiara": true, "audio": true, "rotatecaptcha": true,
}

// validateMethod returns the 2captcha error code for a submit whose method or
// parameters are wrong, or "".
func validateMethod(method string, form url.Values, files map[string][]byte) string {
	if !knownMethods[method] {
		return "ERROR_BAD_PARAMETERS"
	}
	switch method {
	case "userrecaptcha":
		if form.Get("googlekey") == "" {
			return "ERROR_GOOGLEKEY"
		}
		if form.Get("pageurl") == "" {
			return "ERROR_PAGEURL"
		}
	case "hcaptcha", "turnstile":
		if form.Get("sitekey") == "" {
			return "ERROR_BAD_PARAMETERS"
		}
		if form.Get("pageurl") == "" {
			return "ERROR_PAGEURL"
		}
	case "textcaptcha":
		if form.Get("textcaptcha") == "" {
			return "ERROR_BAD_PARAMETERS"
		}
	case "base64":
		body := strings.TrimSpace(form.Get("body"))
		if body == "" {
			return "ERROR_ZERO_CAPTCHA_FILESIZE"
		}
		img, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return "ERROR_UPLOAD"
		}
		return imageSize(len(img))
	case "post":
		img, ok := files["file"]
		if !ok {
			return "ERROR_UPLOAD"
		}
		return imageSize(len(img))
	}
	return ""
}

func imageSize(n int) string {
	switch {
	case n < minImageBytes:
		return "ERROR_ZERO_CAPTCHA_FILESIZE"
	case n > maxImageBytes:
		return "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
	}
	return ""
}

// serveRes handles res.php.
func (s *Simulator) serveRes(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.ResRequests++
	if a := r.URL.Query().Get("action"); a == "get" || a == "get2" {
		s.stats.ResGetRequests++
	}
	delay := s.faults.ResDelay
	fail := s.roll(s.faults.ResFailures)
	if fail {
		s.stats.ResFailures++
	}
	s.mu.Unlock()
	if delay > 0 {
		tm := time.NewTimer(delay)
		select {
		case <-tm.C:
		case <-r.Context().Done():
			tm.Stop()
			return
		case <-s.ctx.Done():
			tm.Stop()
			http.Error(w, "simulator closed", http.StatusServiceUnavailable)
			return
		}
	}
	if fail {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	form, _, err := parseRequest(w, r)
	asJSON := form.Get("json") == "1"
	if err != nil {
		writeErr(w, asJSON, "ERROR_BAD_PARAMETERS")
		return
	}
	if code := s.checkKey(form.Get("key")); code != "" {
		writeErr(w, asJSON, code)
		return
	}
	switch action := form.Get("action"); action {
	case "get", "get2":
		s.count(func(st *Stats) { st.GetRequests++ })
		if ids := form.Get("ids"); ids != "" && action == "get" {
			s.getMany(w, asJSON, strings.Split(ids, ","))
			return
		}
		s.getOne(w, asJSON, form.Get("id"), action == "get2")
	case "getbalance":
		s.mu.Lock()
		s.stats.BalanceRequests++
		b := s.balance
		s.mu.Unlock()
		writeOKPlain(w, asJSON, formatMicro(b))
	case "reportgood", "reportbad":
		s.report(w, asJSON, form.Get("id"), action == "reportgood")
	default:
		writeErr(w, asJSON, "ERROR_EMPTY_ACTION")
	}
}

// state returns the answer item for task id: the answer, CAPCHA_NOT_READY or
// an error code; ok is true for an answer. It must be called with s.mu held.
func (s *Simulator) state(id string) (item string, ok bool) {
	if !validID(id) {
		return "ERROR_WRONG_ID_FORMAT", false
	}
	t, found := s.tasks[id]
	switch {
	case !found:
		return "ERROR_WRONG_CAPTCHA_ID", false
	case !t.done:
		return "CAPCHA_NOT_READY", false
	case t.Err != "":
		return t.Err, false
	}
	return t.Answer, true
}

func (s *Simulator) getOne(w http.ResponseWriter, asJSON bool, id string, withPrice bool) {
	s.mu.Lock()
	item, ok := s.state(id)
	s.mu.Unlock()
	if !ok {
		writeErr(w, asJSON, item)
		return
	}
	price := ""
	if withPrice {
		price = formatMicro(s.price)
	}
	writeOK(w, asJSON, item, price)
}

func (s *Simulator) getMany(w http.ResponseWriter, asJSON bool, ids []string) {
	if len(ids) > MaxBatch {
		writeErr(w, asJSON, "ERROR_BAD_PARAMETERS")
		return
	}
	items := make([]string, len(ids))
	s.mu.Lock()
	for i, id := range ids {
		items[i], _ = s.state(strings.TrimSpace(id))
	}
	s.mu.Unlock()
	writeOK(w, asJSON, strings.Join(items, "|"), "")
}

func (s *Simulator) report(w http.ResponseWriter, asJSON bool, id string, good bool) {
	s.mu.Lock()
	s.stats.Reports++
	code := ""
	t, found := s.tasks[id]
	switch {
	case !validID(id):
		code = "ERROR_WRONG_ID_FORMAT"
	case !found:
		code = "ERROR_WRONG_CAPTCHA_ID"
	case !t.done || t.Err != "":
		code = "ERROR_REPORT_NOT_RECORDED"
	case t.ReportedGood || t.ReportedBad:
		code = "ERROR_DUPLICATE_REPORT"
	case good:
		t.ReportedGood = true
	default:
		t.ReportedBad = true
	}
	s.mu.Unlock()
	if code != "" {
		writeErr(w, asJSON, code)
		return
	}
	writeOKPlain(w, asJSON, "OK_REPORT_RECORDED")
}

// finish ends task id (solved or unsolvable) and sends or schedules its
// pingback. It runs on a timer goroutine.
func (s *Simulator) finish(id string) {
	now := time.Now()
	s.mu.Lock()
	t, ok := s.tasks[id]
	if !ok || t.done || s.closed {
		s.mu.Unlock()
		return
	}
	t.done = true
	t.SolvedAt = now
	code := t.outcome.Answer
	if t.outcome.Unsolvable {
		code = "ERROR_CAPTCHA_UNSOLVABLE"
		t.Err = code
		s.balance += s.price // 2captcha returns the price of unsolvable tasks
		s.stats.Unsolvable++
	} else {
		t.Answer = code
		s.stats.Solved++
	}
	sendNow, times := false, 1
	if t.Pingback != "" {
		switch {
		case s.dropPings > 0:
			s.dropPings--
			s.stats.PingbacksLost++
		case s.roll(s.faults.LostPingbacks):
			s.stats.PingbacksLost++
		default:
			if s.roll(s.faults.DuplicatePingbacks) {
				times = 2
				s.stats.PingbacksDuplicated++
			}
			if s.roll(s.faults.LatePingbacks) {
				s.stats.PingbacksLate++
				lateBy := s.faults.LateBy
				if lateBy <= 0 {
					lateBy = DefaultLateBy
				}
				s.afterLocked(lateBy, func() { s.pingback(id, code, times) })
			} else {
				sendNow = true
			}
		}
	}
	onSolved := s.OnSolved
	s.mu.Unlock()
	if onSolved != nil && !t.outcome.Unsolvable {
		onSolved(id, code, now)
	}
	if sendNow {
		s.pingback(id, code, times)
	}
}

// pingback sends the result of task id to its pingback URL, times times, once
// each: never retried.
func (s *Simulator) pingback(id, code string, times int) {
	s.mu.Lock()
	target := s.tasks[id].Pingback
	s.mu.Unlock()
	for range times {
		if s.ctx.Err() != nil {
			return
		}
		req, err := s.pingbackRequest(target, id, code)
		s.mu.Lock()
		s.stats.PingbacksSent++
		if t := s.tasks[id]; t != nil {
			t.Pingbacks++
			if t.PingbackAt.IsZero() {
				t.PingbackAt = time.Now()
			}
		}
		s.mu.Unlock()
		failed := err != nil
		if err == nil {
			resp, derr := s.pinger.Do(req)
			if derr != nil {
				failed = true
			} else {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				failed = resp.StatusCode < 200 || resp.StatusCode > 299
			}
		}
		if failed {
			s.count(func(st *Stats) { st.PingbacksFailed++ })
		}
	}
}

// pingbackRequest builds one pingback: GET with id and code appended to the
// URL's query, or POST with a form body id=…&code=….
func (s *Simulator) pingbackRequest(target, id, code string) (*http.Request, error) {
	v := url.Values{"id": {id}, "code": {code}}.Encode()
	ctx := s.ctx
	if s.method == http.MethodPost {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(v))
		if err != nil {
			return nil, fmt.Errorf("pingback request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("pingback URL: %w", err)
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + v
	} else {
		u.RawQuery = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("pingback request: %w", err)
	}
	return req, nil
}

// afterLocked runs f after d on its own goroutine, unless Close comes first.
// It must be called with s.mu held.
func (s *Simulator) afterLocked(d time.Duration, f func()) {
	if s.closed {
		return
	}
	s.timerSeq++
	id := s.timerSeq
	s.wg.Add(1)
	s.timers[id] = time.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		_, pending := s.timers[id]
		delete(s.timers, id)
		s.mu.Unlock()
		if pending {
			f()
		}
	})
}

// checkKey returns the error code for a wrong key, or "".
func (s *Simulator) checkKey(key string) string {
	switch {
	case key == "" || len(key) != len(s.key):
		return "ERROR_WRONG_USER_KEY"
	case key != s.key:
		return "ERROR_KEY_DOES_NOT_EXIST"
	}
	return ""
}

// roll reports true with probability p. It must be called with s.mu held.
func (s *Simulator) roll(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return s.rng.Float64() < p
}

// delay draws a solve delay. It must be called with s.mu held.
func (s *Simulator) delay() time.Duration {
	if s.maxD <= s.minD {
		return s.minD
	}
	return s.minD + time.Duration(s.rng.Int64N(int64(s.maxD-s.minD)+1))
}

func (s *Simulator) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// parseRequest reads the parameters of a GET, a form POST or a multipart POST
// (whose files it returns by field name).
func parseRequest(w http.ResponseWriter, r *http.Request) (url.Values, map[string][]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && ct == "multipart/form-data" {
		if err := r.ParseMultipartForm(maxRequestBytes); err != nil {
			return r.URL.Query(), nil, fmt.Errorf("parse multipart form: %w", err)
		}
		files := make(map[string][]byte)
		for name, fhs := range r.MultipartForm.File {
			if len(fhs) == 0 {
				continue
			}
			f, err := fhs[0].Open()
			if err != nil {
				return r.Form, nil, fmt.Errorf("open %s: %w", name, err)
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return r.Form, nil, fmt.Errorf("read %s: %w", name, err)
			}
			files[name] = b
		}
		_ = r.MultipartForm.RemoveAll()
		return r.Form, files, nil
	}
	if err := r.ParseForm(); err != nil {
		return r.URL.Query(), nil, fmt.Errorf("parse form: %w", err)
	}
	return r.Form, nil, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 20 {
		return false
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// errorTexts are the error_text of JSON error answers.
var errorTexts = map[string]string{
	"ERROR_WRONG_USER_KEY":           "You've provided key parameter value in incorrect format",
	"ERROR_KEY_DOES_NOT_EXIST":       "The key you've provided does not exist",
	"ERROR_ZERO_BALANCE":             "You don't have funds on your account",
	"ERROR_NO_SLOT_AVAILABLE":        "No slot available, try again in a few seconds",
	"ERROR_BAD_PARAMETERS":           "Required parameters are missing or have a wrong format",
	"ERROR_GOOGLEKEY":                "The googlekey parameter is missing or malformed",
	"ERROR_PAGEURL":                  "The pageurl parameter is missing",
	"ERROR_ZERO_CAPTCHA_FILESIZE":    "Image size is less than 100 bytes",
	"ERROR_TOO_BIG_CAPTCHA_FILESIZE": "Image size is more than 100 kB",
	"ERROR_UPLOAD":                   "Can't read the file data from your request",
	"ERROR_CAPTCHA_UNSOLVABLE":       "We are unable to solve your captcha",
	"ERROR_WRONG_CAPTCHA_ID":         "You've provided an unknown captcha id",
	"ERROR_WRONG_ID_FORMAT":          "The captcha id can contain numbers only",
	"ERROR_EMPTY_ACTION":             "The action parameter is missing or unknown",
	"ERROR_REPORT_NOT_RECORDED":      "The report was not recorded",
	"ERROR_DUPLICATE_REPORT":         "You have already reported this captcha",
}

type jsonAnswer struct {
	Status    int    `json:"status"`
	Request   string `json:"request"`
	Price     string `json:"price,omitempty"`
	ErrorText string `json:"error_text,omitempty"`
}

func writeJSON(w http.ResponseWriter, a jsonAnswer) {
	b, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func writePlain(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, s)
}

// writeOK answers "OK|request[|price]" or {"status":1,"request":…,"price":…}.
func writeOK(w http.ResponseWriter, asJSON bool, request, price string) {
	if asJSON {
		writeJSON(w, jsonAnswer{Status: 1, Request: request, Price: price})
		return
	}
	s := "OK|" + request
	if price != "" {
		s += "|" + price
	}
	writePlain(w, s)
}

// writeOKPlain answers a success that has no "OK|" prefix in plain text (the
// balance, OK_REPORT_RECORDED).
func writeOKPlain(w http.ResponseWriter, asJSON bool, request string) {
	if asJSON {
		writeJSON(w, jsonAnswer{Status: 1, Request: request})
		return
	}
	writePlain(w, request)
}

// writeErr answers an error code, or CAPCHA_NOT_READY: plain, or JSON status 0.
func writeErr(w http.ResponseWriter, asJSON bool, code string) {
	if asJSON {
		writeJSON(w, jsonAnswer{Status: 0, Request: code, ErrorText: errorTexts[code]})
		return
	}
	writePlain(w, code)
}

func toMicro(v float64) int64 { return int64(math.Round(v * micro)) }

// formatMicro writes millionths as a decimal without trailing zeros: 99.997.
func formatMicro(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	s := fmt.Sprintf("%s%d.%06d", sign, m/micro, m%micro)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
