package simulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pingback is one request a receiver saw.
type pingback struct {
	method, id, code, query string
	at                      time.Time
}

// receiver is a local pingback endpoint that records what reaches it.
type receiver struct {
	*httptest.Server
	ch chan pingback
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{ch: make(chan pingback, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := pingback{method: r.Method, query: r.URL.RawQuery, at: time.Now()}
		if r.Method == http.MethodPost {
			r.ParseForm()
			p.id, p.code = r.PostForm.Get("id"), r.PostForm.Get("code")
		} else {
			p.id, p.code = r.URL.Query().Get("id"), r.URL.Query().Get("code")
		}
		rc.ch <- p
		io.WriteString(w, "OK")
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits at most d for a pingback.
func (rc *receiver) next(t *testing.T, d time.Duration) pingback {
	t.Helper()
	select {
	case p := <-rc.ch:
		return p
	case <-time.After(d):
		t.Fatalf("no pingback within %v", d)
		return pingback{}
	}
}

// none asserts no pingback arrives within d.
func (rc *receiver) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case p := <-rc.ch:
		t.Fatalf("unexpected pingback %+v", p)
	case <-time.After(d):
	}
}

func start(t *testing.T, cfg Config) (*Simulator, string) {
	t.Helper()
	s := New(cfg)
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, u
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, base, path string, q url.Values) string {
	t.Helper()
	resp, err := client.Get(base + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func post(t *testing.T, base string, form url.Values) string {
	t.Helper()
	resp, err := client.PostForm(base+"/in.php", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func recaptchaForm(extra ...string) url.Values {
	v := url.Values{"key": {DefaultKey}, "method": {"userrecaptcha"}, "googlekey": {"6Le-x"}, "pageurl": {"https://example.com"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// waitFor polls cond every 5 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func solved(s *Simulator, id string) func() bool {
	return func() bool { t, _ := s.Task(id); return !t.SolvedAt.IsZero() }
}

func TestWireFormat(t *testing.T) {
	s, base := start(t, Config{MinDelay: time.Hour, MaxDelay: time.Hour, Balance: 1, Price: 0.25})
	res := func(extra ...string) string {
		q := url.Values{"key": {DefaultKey}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return get(t, base, "/res.php", q)
	}

	// in.php by GET, plain and JSON; by form POST; by multipart POST.
	if got := get(t, base, "/in.php", recaptchaForm()); got != "OK|7000000001" {
		t.Fatalf("GET in.php = %q", got)
	}
	if got := post(t, base, recaptchaForm("json", "1")); got != `{"status":1,"request":"7000000002"}` {
		t.Fatalf("POST in.php json = %q", got)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("key", DefaultKey)
	mw.WriteField("method", "post")
	fw, _ := mw.CreateFormFile("file", "captcha.png")
	fw.Write(bytes.Repeat([]byte{0x89}, 200))
	mw.Close()
	resp, err := client.Post(base+"/in.php", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "OK|7000000003" {
		t.Fatalf("multipart in.php = %q", b)
	}
	if got := post(t, base, recaptchaForm()); got != "OK|7000000004" {
		t.Fatalf("POST in.php = %q", got)
	}
	// The balance (1, price 0.25) is spent now.
	if got := post(t, base, recaptchaForm()); got != "ERROR_ZERO_BALANCE" {
		t.Fatalf("fifth task = %q", got)
	}

	// Submit errors.
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"method": {"userrecaptcha"}}, "ERROR_WRONG_USER_KEY"},
		{recaptchaForm("key", "short"), "ERROR_WRONG_USER_KEY"},
		{recaptchaForm("key", strings.Repeat("x", len(DefaultKey))), "ERROR_KEY_DOES_NOT_EXIST"},
		{recaptchaForm("googlekey", ""), "ERROR_GOOGLEKEY"},
		{recaptchaForm("pageurl", ""), "ERROR_PAGEURL"},
		{recaptchaForm("method", "nonsense"), "ERROR_BAD_PARAMETERS"},
		{recaptchaForm("pingback", "not a url"), "ERROR_BAD_PARAMETERS"},
		{url.Values{"key": {DefaultKey}, "method": {"base64"}}, "ERROR_ZERO_CAPTCHA_FILESIZE"},
		{url.Values{"key": {DefaultKey}, "method": {"base64"}, "body": {"!!!"}}, "ERROR_UPLOAD"},
		{url.Values{"key": {DefaultKey}, "method": {"base64"}, "body": {base64.StdEncoding.EncodeToString([]byte("tiny"))}}, "ERROR_ZERO_CAPTCHA_FILESIZE"},
		{url.Values{"key": {DefaultKey}, "method": {"base64"}, "body": {base64.StdEncoding.EncodeToString(make([]byte, 200<<10))}}, "ERROR_TOO_BIG_CAPTCHA_FILESIZE"},
		{url.Values{"key": {DefaultKey}, "method": {"post"}}, "ERROR_UPLOAD"},
		{url.Values{"key": {DefaultKey}, "method": {"hcaptcha"}, "pageurl": {"https://x"}}, "ERROR_BAD_PARAMETERS"},
	} {
		if got := post(t, base, tc.form); got != tc.want {
			t.Errorf("submit %v = %q, want %q", tc.form, got, tc.want)
		}
	}
	var je struct {
		Status    int    `json:"status"`
		Request   string `json:"request"`
		ErrorText string `json:"error_text"`
	}
	if err := json.Unmarshal([]byte(post(t, base, recaptchaForm("json", "1", "pageurl", ""))), &je); err != nil ||
		je.Status != 0 || je.Request != "ERROR_PAGEURL" || je.ErrorText == "" {
		t.Fatalf("JSON error = %+v, %v", je, err)
	}

	// res.php.
	if got := res("action", "get", "id", "7000000001"); got != "CAPCHA_NOT_READY" {
		t.Fatalf("not ready = %q", got)
	}
	if got := res("action", "get", "id", "7000000001", "json", "1"); got != `{"status":0,"request":"CAPCHA_NOT_READY"}` {
		t.Fatalf("not ready json = %q", got)
	}
	if got := res("action", "get", "id", "7999999999"); got != "ERROR_WRONG_CAPTCHA_ID" {
		t.Fatalf("unknown id = %q", got)
	}
	if got := res("action", "get", "id", "abc"); got != "ERROR_WRONG_ID_FORMAT" {
		t.Fatalf("bad id = %q", got)
	}
	if got := res("action", "getbalance"); got != "0" {
		t.Fatalf("balance = %q", got)
	}
	if got := res("action", "getbalance", "json", "1"); got != `{"status":1,"request":"0"}` {
		t.Fatalf("balance json = %q", got)
	}
	if got := res("action", "nope"); got != "ERROR_EMPTY_ACTION" {
		t.Fatalf("unknown action = %q", got)
	}
	if got := res("action", "reportbad", "id", "7000000001"); got != "ERROR_REPORT_NOT_RECORDED" {
		t.Fatalf("report of unsolved = %q", got)
	}
	if got := get(t, base, "/res.php", url.Values{"action": {"get"}, "id": {"7000000001"}}); got != "ERROR_WRONG_USER_KEY" {
		t.Fatalf("res.php without key = %q", got)
	}

	// Force a solve: tasks 5+ use queued outcomes.
	s.SetBalance(1)
	s.SetNextOutcomes(Outcome{}, Outcome{Unsolvable: true})
	id5 := strings.TrimPrefix(post(t, base, recaptchaForm()), "OK|")
	id6 := strings.TrimPrefix(post(t, base, recaptchaForm()), "OK|")
	waitFor(t, 2*time.Second, "solve", solved(s, id5))
	waitFor(t, 2*time.Second, "unsolvable", solved(s, id6))
	if got := res("action", "get", "id", id5); got != "OK|"+Answer(id5) {
		t.Fatalf("get = %q", got)
	}
	if got := res("action", "get2", "id", id5); got != "OK|"+Answer(id5)+"|0.25" {
		t.Fatalf("get2 = %q", got)
	}
	if got := res("action", "get2", "id", id5, "json", "1"); got != fmt.Sprintf(`{"status":1,"request":"%s","price":"0.25"}`, Answer(id5)) {
		t.Fatalf("get2 json = %q", got)
	}
	if got := res("action", "get", "id", id6); got != "ERROR_CAPTCHA_UNSOLVABLE" {
		t.Fatalf("unsolvable = %q", got)
	}
	// The unsolvable task was refunded: 1 - 2×0.25 + 0.25.
	if got := res("action", "getbalance"); got != "0.75" {
		t.Fatalf("balance after refund = %q", got)
	}
	ids := strings.Join([]string{id5, "7000000001", id6, "7999999999"}, ",")
	want := strings.Join([]string{Answer(id5), "CAPCHA_NOT_READY", "ERROR_CAPTCHA_UNSOLVABLE", "ERROR_WRONG_CAPTCHA_ID"}, "|")
	if got := res("action", "get", "ids", ids); got != "OK|"+want {
		t.Fatalf("batch = %q", got)
	}
	if got := res("action", "get", "ids", ids, "json", "1"); got != `{"status":1,"request":"`+want+`"}` {
		t.Fatalf("batch json = %q", got)
	}
	if got := res("action", "reportgood", "id", id5); got != "OK_REPORT_RECORDED" {
		t.Fatalf("report = %q", got)
	}
	if got := res("action", "reportbad", "id", id5, "json", "1"); got != `{"status":0,"request":"ERROR_DUPLICATE_REPORT","error_text":"You have already reported this captcha"}` {
		t.Fatalf("duplicate report = %q", got)
	}

	st := s.Stats()
	if st.Submits != 21 || st.SubmitsAccepted != 6 || st.GetRequests != 10 || st.BalanceRequests != 3 ||
		st.Reports != 3 || st.ResRequests != 18 || st.Solved != 1 || st.Unsolvable != 1 {
		t.Fatalf("stats %+v", st)
	}
	if task, ok := s.Task(id5); !ok || !task.ReportedGood || task.Answer != Answer(id5) || task.Method != "userrecaptcha" {
		t.Fatalf("task %+v", task)
	}
	if _, ok := s.Task("1"); ok {
		t.Fatal("unknown task found")
	}
}

func TestPingbackGETAndPOST(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			rc := newReceiver(t)
			s, base := start(t, Config{PingbackMethod: method})
			var mu sync.Mutex
			var solvedAt time.Time
			s.OnSolved = func(id, answer string, at time.Time) {
				mu.Lock()
				solvedAt = at
				mu.Unlock()
			}
			s.SetNextOutcomes(Outcome{Delay: 20 * time.Millisecond}, Outcome{Unsolvable: true})
			id := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL+"/cb?tenant=7")), "OK|")
			p := rc.next(t, 2*time.Second)
			if p.method != method || p.id != id || p.code != Answer(id) {
				t.Fatalf("pingback %+v, want %s id=%s code=%s", p, method, id, Answer(id))
			}
			if method == "GET" && !strings.HasPrefix(p.query, "tenant=7&") {
				t.Fatalf("GET pingback lost the URL's own query: %q", p.query)
			}
			if method == "POST" && p.query != "tenant=7" {
				t.Fatalf("POST pingback query = %q, want the URL's own", p.query)
			}
			mu.Lock()
			if solvedAt.IsZero() {
				t.Error("OnSolved not called")
			}
			mu.Unlock()

			id2 := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL+"/cb")), "OK|")
			p = rc.next(t, 2*time.Second)
			if p.id != id2 || p.code != "ERROR_CAPTCHA_UNSOLVABLE" {
				t.Fatalf("unsolvable pingback %+v", p)
			}
			waitFor(t, time.Second, "stats", func() bool { return s.Stats().PingbacksSent == 2 })
			task, _ := s.Task(id)
			if task.Pingbacks != 1 || task.PingbackAt.Before(task.SolvedAt) || task.Pingback != rc.URL+"/cb?tenant=7" {
				t.Fatalf("task %+v", task)
			}
		})
	}
}

func TestPingbackFaults(t *testing.T) {
	t.Run("dropped", func(t *testing.T) {
		rc := newReceiver(t)
		s, base := start(t, Config{})
		s.DropNextPingbacks(1)
		s.SetNextOutcomes(Outcome{}, Outcome{Delay: 50 * time.Millisecond})
		id1 := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL)), "OK|")
		id2 := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL)), "OK|")
		if p := rc.next(t, 2*time.Second); p.id != id2 {
			t.Fatalf("got pingback for %s, want only %s's (%s's dropped)", p.id, id2, id1)
		}
		rc.none(t, 100*time.Millisecond)
		if st := s.Stats(); st.PingbacksLost != 1 || st.PingbacksSent != 1 || st.Solved != 2 {
			t.Fatalf("stats %+v", st)
		}
		if task, _ := s.Task(id1); !task.PingbackAt.IsZero() || task.Pingbacks != 0 {
			t.Fatalf("lost task %+v", task)
		}
	})
	t.Run("lost", func(t *testing.T) {
		rc := newReceiver(t)
		s, base := start(t, Config{Faults: Faults{LostPingbacks: 1}})
		id := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL)), "OK|")
		waitFor(t, 2*time.Second, "solve", solved(s, id))
		rc.none(t, 100*time.Millisecond)
		if st := s.Stats(); st.PingbacksLost != 1 || st.PingbacksSent != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		rc := newReceiver(t)
		s, base := start(t, Config{PingbackMethod: "POST", Faults: Faults{DuplicatePingbacks: 1}})
		id := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL)), "OK|")
		a, b := rc.next(t, 2*time.Second), rc.next(t, 2*time.Second)
		if a.id != id || b.id != id || a.code != b.code {
			t.Fatalf("duplicates %+v %+v", a, b)
		}
		rc.none(t, 50*time.Millisecond)
		if st := s.Stats(); st.PingbacksSent != 2 || st.PingbacksDuplicated != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("late", func(t *testing.T) {
		rc := newReceiver(t)
		const lateBy = 300 * time.Millisecond
		s, base := start(t, Config{Faults: Faults{LatePingbacks: 1, LateBy: lateBy}})
		id := strings.TrimPrefix(post(t, base, recaptchaForm("pingback", rc.URL)), "OK|")
		p := rc.next(t, 2*time.Second)
		task, _ := s.Task(id)
		if p.id != id || p.at.Sub(task.SolvedAt) < lateBy {
			t.Fatalf("pingback %v after the solve, want at least %v", p.at.Sub(task.SolvedAt), lateBy)
		}
		if st := s.Stats(); st.PingbacksLate != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("unreachable receiver is not retried", func(t *testing.T) {
		rc := newReceiver(t)
		url := rc.URL
		rc.Close()
		s, base := start(t, Config{})
		post(t, base, recaptchaForm("pingback", url))
		waitFor(t, 3*time.Second, "failed pingback", func() bool { return s.Stats().PingbacksFailed == 1 })
		time.Sleep(50 * time.Millisecond)
		if st := s.Stats(); st.PingbacksSent != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestSubmitAndResFaults(t *testing.T) {
	s, base := start(t, Config{Faults: Faults{SubmitTransient: 1}})
	if got := post(t, base, recaptchaForm()); got != "ERROR_NO_SLOT_AVAILABLE" {
		t.Fatalf("transient = %q", got)
	}
	s.SetFaults(Faults{SubmitPermanent: 1})
	if got := post(t, base, recaptchaForm()); got != "ERROR_BAD_PARAMETERS" {
		t.Fatalf("permanent = %q", got)
	}
	s.SetFaults(Faults{})
	s.FailNextSubmits(2, "ERROR: 1001")
	for range 2 {
		if got := post(t, base, recaptchaForm()); got != "ERROR: 1001" {
			t.Fatalf("forced = %q", got)
		}
	}
	if got := post(t, base, recaptchaForm()); !strings.HasPrefix(got, "OK|") {
		t.Fatalf("after forced failures = %q", got)
	}

	s.SetFaults(Faults{ResFailures: 1})
	resp, err := client.Get(base + "/res.php?action=getbalance&key=" + DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("res failure: HTTP %d", resp.StatusCode)
	}
	s.SetFaults(Faults{ResDelay: 150 * time.Millisecond})
	t0 := time.Now()
	get(t, base, "/res.php", url.Values{"key": {DefaultKey}, "action": {"getbalance"}})
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("res.php answered after %v, want ≥150ms", d)
	}
	if st := s.Stats(); st.ResRequests != 2 || st.ResFailures != 1 || st.BalanceRequests != 1 {
		t.Fatalf("stats %+v", st)
	}
	resp, err = client.Get(base + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: HTTP %d", resp.StatusCode)
	}
}

// TestSubmitDelay checks the slow in.php fault: the id is answered late, and
// a client that gives up before then has still been charged for the task.
func TestSubmitDelay(t *testing.T) {
	s, base := start(t, Config{Balance: 1, Price: 0.25, MinDelay: time.Hour, Faults: Faults{SubmitDelay: 300 * time.Millisecond}})
	t0 := time.Now()
	if got := post(t, base, recaptchaForm()); got != "OK|"+strconv.Itoa(FirstID) {
		t.Fatalf("slow submit = %q", got)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("in.php answered after %v, want ≥300ms", d)
	}
	impatient := &http.Client{Timeout: 50 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := impatient.PostForm(base+"/in.php", recaptchaForm()); err == nil {
		resp.Body.Close()
		t.Fatalf("an impatient client got an answer: HTTP %d", resp.StatusCode)
	}
	waitFor(t, 2*time.Second, "the abandoned submit to be accepted", func() bool { return s.Stats().SubmitsAccepted == 2 })
	if _, ok := s.Task(strconv.Itoa(FirstID + 1)); !ok {
		t.Errorf("the abandoned submit's task is unknown")
	}
	if b := s.Balance(); b != 0.5 {
		t.Errorf("balance %v after two charged submits, want 0.5", b)
	}
}

func TestDelaysAreSeededAndBounded(t *testing.T) {
	draw := func() []time.Duration {
		s := New(Config{MinDelay: time.Second, MaxDelay: 2 * time.Second, Seed: 42})
		defer s.Close()
		var out []time.Duration
		for range 50 {
			s.mu.Lock()
			out = append(out, s.delay())
			s.mu.Unlock()
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different delays: %v vs %v", a[i], b[i])
		}
		if a[i] < time.Second || a[i] > 2*time.Second {
			t.Fatalf("delay %v out of [1s, 2s]", a[i])
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{PingbackMethod: "PUT"},
		{MinDelay: 2 * time.Second, MaxDelay: time.Second},
		{Price: -1},
		{Faults: Faults{LostPingbacks: 1.5}},
		{Faults: Faults{ResFailures: -0.1}},
		{Faults: Faults{LateBy: -time.Second}},
		{Faults: Faults{SubmitDelay: -time.Second}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
}

func TestFormatMicro(t *testing.T) {
	for m, want := range map[int64]string{0: "0", 1_000_000: "1", 994_000: "0.994", 99_997_000: "99.997", 3_000: "0.003", -250_000: "-0.25"} {
		if got := formatMicro(m); got != want {
			t.Errorf("formatMicro(%d) = %q, want %q", m, got, want)
		}
	}
}

// TestCloseStopsEverything leaves pending solves, a late pingback, a pingback
// to a hanging receiver and a slow res.php request in flight, and checks that
// Close ends every goroutine the simulator started.
func TestCloseStopsEverything(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	rc := newReceiver(t)
	tr := &http.Transport{DisableKeepAlives: true}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	runtime.GC()
	baseline := runtime.NumGoroutine()

	s := New(Config{})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.SetNextOutcomes(Outcome{Delay: time.Hour}, Outcome{}, Outcome{}, Outcome{})
	submit := func(pingback string) {
		form := recaptchaForm()
		if pingback != "" {
			form.Set("pingback", pingback)
		}
		resp, err := hc.PostForm(base+"/in.php", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	submit("")     // pending for an hour
	submit(rc.URL) // solved at once, pingback delivered (a keep-alive connection stays)
	rc.next(t, 2*time.Second)
	submit(slow.URL) // solved at once; its pingback hangs
	// The solve runs on a timer goroutine: wait for its pingback before
	// changing the faults, or the change can reach it too.
	waitFor(t, 2*time.Second, "hanging pingback sent", func() bool { return s.Stats().PingbacksSent == 2 })
	s.SetFaults(Faults{LatePingbacks: 1, LateBy: time.Hour})
	submit(rc.URL) // solved at once; its pingback waits an hour
	waitFor(t, 2*time.Second, "pingbacks in flight", func() bool {
		st := s.Stats()
		return st.PingbacksSent == 2 && st.PingbacksLate == 1
	})
	s.SetFaults(Faults{ResDelay: time.Hour})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := hc.Get(base + "/res.php?action=getbalance&key=" + DefaultKey)
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, 2*time.Second, "res.php in flight", func() bool { return s.Stats().ResRequests == 1 })

	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return within 3s")
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the slow res.php request did not end with Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.Solved != 3 {
		t.Fatalf("stats %+v", st)
	}
}
