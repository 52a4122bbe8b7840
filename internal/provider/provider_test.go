package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carrier/internal/provider/simulator"
)

// testKey is a key distinct from everything else in the answers, so a test can
// assert it never shows up in an error message.
const testKey = "k3y-7f1c9e2ab4d8-SECRET-55aa0c1e"

func startSim(t *testing.T, cfg simulator.Config) (*simulator.Simulator, *Client) {
	t.Helper()
	if cfg.Key == "" {
		cfg.Key = testKey
	}
	sim := simulator.New(cfg)
	u, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return sim, New(u+"/", cfg.Key, hc)
}

func recaptcha() Submission {
	return Submission{Method: "userrecaptcha", Params: map[string]string{
		"googlekey": "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-", "pageurl": "https://example.com/login",
	}}
}

// noKey fails the test when err's message names the API key.
func noKey(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testKey) {
		t.Fatalf("error message contains the API key: %v", err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitDone polls Get until the task is done, for at most 3 s.
func waitDone(t *testing.T, c *Client, id string) Result {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, err := c.Get(ctxT(t), id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if r.Done() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not done after 3s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSubmitGetSolved(t *testing.T) {
	sim, c := startSim(t, simulator.Config{MinDelay: 150 * time.Millisecond, MaxDelay: 150 * time.Millisecond})
	ctx := ctxT(t)
	s := recaptcha()
	s.Params["invisible"] = "1"
	id, err := c.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if id != fmt.Sprint(simulator.FirstID) {
		t.Fatalf("id = %q, want %d", id, simulator.FirstID)
	}
	st, ok := sim.Task(id)
	if !ok || st.Method != "userrecaptcha" || st.Params["googlekey"] == "" || st.Params["invisible"] != "1" {
		t.Fatalf("simulator task = %+v", st)
	}
	if _, leaked := st.Params["key"]; leaked {
		t.Fatal("simulator kept the key among the params")
	}

	r, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready || r.Err != nil || r.Done() || r.ID != id {
		t.Fatalf("right after submit: %+v, want pending", r)
	}
	r = waitDone(t, c, id)
	if !r.Ready || r.Solution != simulator.Answer(id) || r.Cost != "0.003" || r.Err != nil {
		t.Fatalf("solved: %+v", r)
	}
	if got := sim.Stats(); got.Solved != 1 || got.SubmitsAccepted != 1 {
		t.Fatalf("stats %+v", got)
	}
}

func TestGetManyOneRequest(t *testing.T) {
	sim, c := startSim(t, simulator.Config{})
	ctx := ctxT(t)
	sim.SetNextOutcomes(
		simulator.Outcome{},                             // solved at once
		simulator.Outcome{Delay: time.Hour},             // still pending
		simulator.Outcome{Unsolvable: true},             // fails
		simulator.Outcome{Answer: "answer with spaces"}, // solved, custom answer
	)
	var ids []string
	for range 4 {
		id, err := c.Submit(ctx, recaptcha())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, i := range []int{0, 2, 3} {
		waitDone(t, c, ids[i])
	}
	ids = append(ids, "7999999999") // unknown to the provider

	before := sim.Stats().GetRequests
	rs, err := c.GetMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().GetRequests - before; n != 1 {
		t.Fatalf("GetMany made %d get requests, want 1", n)
	}
	if len(rs) != len(ids) {
		t.Fatalf("%d results for %d ids", len(rs), len(ids))
	}
	for i, r := range rs {
		if r.ID != ids[i] {
			t.Fatalf("result %d has id %s, want %s", i, r.ID, ids[i])
		}
	}
	if !rs[0].Ready || rs[0].Solution != simulator.Answer(ids[0]) {
		t.Errorf("solved: %+v", rs[0])
	}
	if rs[1].Done() {
		t.Errorf("pending: %+v", rs[1])
	}
	if rs[2].Ready || ErrorCode(rs[2].Err) != CodeUnsolvable || IsTransient(rs[2].Err) {
		t.Errorf("unsolvable: %+v", rs[2])
	}
	if !rs[3].Ready || rs[3].Solution != "answer with spaces" {
		t.Errorf("custom answer: %+v", rs[3])
	}
	if ErrorCode(rs[4].Err) != CodeWrongCaptchaID {
		t.Errorf("unknown id: %+v", rs[4])
	}

	// Get maps the same task errors into Result.Err, not into err.
	r, err := c.Get(ctx, ids[2])
	if err != nil || ErrorCode(r.Err) != CodeUnsolvable || !r.Done() {
		t.Fatalf("Get unsolvable = %+v, %v", r, err)
	}

	// Limits are checked before anything is sent.
	many := make([]string, MaxBatch+1)
	for i := range many {
		many[i] = fmt.Sprint(7000000001 + i)
	}
	before = sim.Stats().ResRequests
	if _, err := c.GetMany(ctx, many); err == nil {
		t.Fatal("GetMany accepted more than MaxBatch ids")
	}
	if rs, err := c.GetMany(ctx, many[:MaxBatch]); err != nil || len(rs) != MaxBatch {
		t.Fatalf("GetMany(MaxBatch) = %d results, %v", len(rs), err)
	}
	if rs, err := c.GetMany(ctx, nil); err != nil || rs != nil {
		t.Fatalf("GetMany(nil) = %v, %v", rs, err)
	}
	if _, err := c.GetMany(ctx, []string{"1,2"}); err == nil {
		t.Fatal("GetMany accepted an id with a comma")
	}
	if n := sim.Stats().ResRequests - before; n != 1 {
		t.Fatalf("%d res.php requests, want 1", n)
	}
}

func TestBalanceAndReport(t *testing.T) {
	sim, c := startSim(t, simulator.Config{Balance: 1, Price: 0.003})
	ctx := ctxT(t)
	b, err := c.Balance(ctx)
	if err != nil || b != "1" {
		t.Fatalf("balance = %q, %v", b, err)
	}
	id, err := c.Submit(ctx, recaptcha())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, recaptcha()); err != nil {
		t.Fatal(err)
	}
	if b, err = c.Balance(ctx); err != nil || b != "0.994" {
		t.Fatalf("balance after two tasks = %q, %v", b, err)
	}
	if sim.Stats().BalanceRequests != 2 {
		t.Fatalf("stats %+v", sim.Stats())
	}

	waitDone(t, c, id)
	if err := c.Report(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if st, _ := sim.Task(id); !st.ReportedGood || st.ReportedBad {
		t.Fatalf("task after reportgood: %+v", st)
	}
	err = c.Report(ctx, id, false)
	if ErrorCode(err) != "ERROR_DUPLICATE_REPORT" || IsTransient(err) {
		t.Fatalf("second report: %v", err)
	}
	err = c.Report(ctx, "7999999999", false)
	if ErrorCode(err) != CodeWrongCaptchaID {
		t.Fatalf("report of unknown id: %v", err)
	}
	if n := sim.Stats().Reports; n != 3 {
		t.Fatalf("reports = %d, want 3", n)
	}

	// An account that cannot pay for a task.
	sim.SetBalance(0.001)
	_, err = c.Submit(ctx, recaptcha())
	if ErrorCode(err) != CodeZeroBalance || IsTransient(err) {
		t.Fatalf("submit with no funds: %v", err)
	}
	noKey(t, err)
}

func TestErrorPaths(t *testing.T) {
	sim, c := startSim(t, simulator.Config{})
	ctx := ctxT(t)

	for _, tc := range []struct {
		code      string
		transient bool
	}{
		{"ERROR_NO_SLOT_AVAILABLE", true},
		{"ERROR_TOO_MUCH_REQUESTS", true},
		{"MAX_USER_TURN", true},
		{"IP_BANNED", true},
		{"ERROR: 1001", true},
		{"ERROR_ZERO_BALANCE", false},
		{"ERROR_BAD_PARAMETERS", false},
		{"ERROR_IP_NOT_ALLOWED", false},
		{"ERROR_SOMETHING_NEW", false},
	} {
		sim.FailNextSubmits(1, tc.code)
		_, err := c.Submit(ctx, recaptcha())
		if ErrorCode(err) != tc.code || IsTransient(err) != tc.transient {
			t.Errorf("submit failing with %s: code %q transient %v (%v)", tc.code, ErrorCode(err), IsTransient(err), err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusOK {
			t.Errorf("%s: %#v", tc.code, e)
		}
		noKey(t, err)
	}
	if _, err := c.Submit(ctx, recaptcha()); err != nil {
		t.Fatalf("submit after the forced failures: %v", err)
	}

	// Parameter checks of the provider.
	_, err := c.Submit(ctx, Submission{Method: "userrecaptcha", Params: map[string]string{"pageurl": "https://x"}})
	if ErrorCode(err) != "ERROR_GOOGLEKEY" || IsTransient(err) {
		t.Errorf("missing googlekey: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Text == "" {
		t.Errorf("missing googlekey: error_text not kept: %#v", e)
	}
	_, err = c.Submit(ctx, Submission{Method: "base64"})
	if ErrorCode(err) != "ERROR_ZERO_CAPTCHA_FILESIZE" {
		t.Errorf("empty base64: %v", err)
	}
	if _, err = c.Submit(ctx, Submission{}); err == nil || IsTransient(err) {
		t.Errorf("no method: %v", err)
	}

	// Wrong keys.
	wrong := New(c.BaseURL, strings.Repeat("x", len(testKey)), c.HTTP)
	_, err = wrong.Submit(ctx, recaptcha())
	if ErrorCode(err) != CodeKeyDoesNotExist || IsTransient(err) {
		t.Errorf("unknown key: %v", err)
	}
	_, err = New(c.BaseURL, "short", c.HTTP).Balance(ctx)
	if ErrorCode(err) != CodeWrongUserKey || IsTransient(err) {
		t.Errorf("malformed key: %v", err)
	}
	_, err = wrong.GetMany(ctx, []string{"7000000001", "7000000002"})
	if ErrorCode(err) != CodeKeyDoesNotExist {
		t.Errorf("GetMany with unknown key: %v", err)
	}

	// res.php answering 500 is transient, whatever the call.
	sim.SetFaults(simulator.Faults{ResFailures: 1})
	_, err = c.Get(ctx, "7000000001")
	if ErrorCode(err) != CodeHTTP5xx || !IsTransient(err) {
		t.Errorf("get on a failing res.php: %v", err)
	}
	_, err = c.Balance(ctx)
	if ErrorCode(err) != CodeHTTP5xx || !IsTransient(err) {
		t.Errorf("balance on a failing res.php: %v", err)
	}
	noKey(t, err)
	if sim.Stats().ResFailures != 2 {
		t.Errorf("stats %+v", sim.Stats())
	}

	// A slow res.php runs into the caller's deadline: transient timeout.
	sim.SetFaults(simulator.Faults{ResDelay: 2 * time.Second})
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = c.Get(short, "7000000001")
	if ErrorCode(err) != CodeTimeout || !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow res.php: %v", err)
	}
	noKey(t, err)
	sim.SetFaults(simulator.Faults{})

	// A cancelled context is transient.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_, err = c.Balance(cctx)
	if !IsTransient(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	noKey(t, err)
}

func TestNetworkErrorsRedactKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := New("http://"+addr, testKey, &http.Client{Timeout: 2 * time.Second})
	ctx := ctxT(t)
	_, err = c.Get(ctx, "7000000001")
	if ErrorCode(err) != CodeNetwork || !IsTransient(err) {
		t.Fatalf("connection refused: %v", err)
	}
	if !strings.Contains(err.Error(), "key=REDACTED") {
		t.Errorf("redacted URL missing from %q", err)
	}
	noKey(t, err)
	_, err = c.Submit(ctx, recaptcha())
	if ErrorCode(err) != CodeNetwork {
		t.Fatalf("submit, connection refused: %v", err)
	}
	noKey(t, err)

	// A base URL that does not parse: the key must not leak through url.Parse.
	bad := New("http://bad host\x7f", testKey, nil)
	_, err = bad.Balance(ctx)
	if err == nil {
		t.Fatal("no error for an unparseable base URL")
	}
	noKey(t, err)
}

// TestPlainTextProvider runs the client against a provider that ignores
// json=1, does not know get2, and answers 4xx/5xx/HTML at times.
func TestPlainTextProvider(t *testing.T) {
	var get2Calls, getCalls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("key") != testKey {
			fmt.Fprint(w, "ERROR_KEY_DOES_NOT_EXIST")
			return
		}
		switch r.URL.Path + " " + r.Form.Get("action") {
		case "/in.php ":
			if r.Method != http.MethodPost || r.Form.Get("json") != "1" || r.Form.Get("pingback") != "https://cb.example/x" {
				http.Error(w, "bad submit", http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, "OK|2122988149")
		case "/res.php get2":
			get2Calls++
			fmt.Fprint(w, "ERROR_EMPTY_ACTION")
		case "/res.php get":
			getCalls++
			switch r.Form.Get("ids") {
			case "":
				fmt.Fprint(w, "OK|answer|with|pipes")
			case "1,2,3":
				fmt.Fprint(w, "OK|a1|CAPCHA_NOT_READY|ERROR_CAPTCHA_UNSOLVABLE")
			case "4,5,6":
				fmt.Fprint(w, "OK|CAPCHA_NOT_READY|a6") // no "OK|" prefix, first answer "OK"
			case "7,8":
				fmt.Fprint(w, "CAPCHA_NOT_READY")
			case "9,10":
				fmt.Fprint(w, "ERROR: 1005")
			default:
				fmt.Fprint(w, "OK|only-one")
			}
		case "/res.php getbalance":
			fmt.Fprint(w, "12.3456\n")
		case "/res.php reportgood":
			fmt.Fprint(w, "OK_REPORT_RECORDED")
		case "/res.php reportbad":
			fmt.Fprint(w, "ERROR_REPORT_NOT_RECORDED")
		case "/res.php html":
			fmt.Fprint(w, "<html><body>502 Bad Gateway</body></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, testKey, srv.Client())
	ctx := ctxT(t)

	id, err := c.Submit(ctx, Submission{Method: "userrecaptcha", Params: map[string]string{"key": "overridden?", "json": "0"}, Pingback: "https://cb.example/x"})
	if err != nil || id != "2122988149" {
		t.Fatalf("submit = %q, %v", id, err)
	}
	r, err := c.Get(ctx, id)
	if err != nil || !r.Ready || r.Solution != "answer|with|pipes" || r.Cost != "" {
		t.Fatalf("get (fallback to action=get) = %+v, %v", r, err)
	}
	if _, err := c.Get(ctx, id); err != nil || get2Calls != 1 || getCalls != 2 {
		t.Fatalf("get2 asked %d times, get %d times (%v); want get2 once", get2Calls, getCalls, err)
	}

	rs, err := c.GetMany(ctx, []string{"1", "2", "3"})
	if err != nil || !rs[0].Ready || rs[0].Solution != "a1" || rs[1].Done() || ErrorCode(rs[2].Err) != CodeUnsolvable {
		t.Fatalf("batch = %+v, %v", rs, err)
	}
	rs, err = c.GetMany(ctx, []string{"4", "5", "6"})
	if err != nil || rs[0].Solution != "OK" || rs[1].Done() || rs[2].Solution != "a6" {
		t.Fatalf("batch without OK prefix = %+v, %v", rs, err)
	}
	rs, err = c.GetMany(ctx, []string{"7", "8"})
	if err != nil || rs[0].Done() || rs[1].Done() {
		t.Fatalf("batch all not ready = %+v, %v", rs, err)
	}
	_, err = c.GetMany(ctx, []string{"9", "10"})
	if ErrorCode(err) != "ERROR: 1005" || !IsTransient(err) {
		t.Fatalf("batch rate limited: %v", err)
	}
	_, err = c.GetMany(ctx, []string{"11", "12", "13"})
	if ErrorCode(err) != CodeBatchMismatch || IsTransient(err) {
		t.Fatalf("batch with too few items: %v", err)
	}

	if b, err := c.Balance(ctx); err != nil || b != "12.3456" {
		t.Fatalf("balance = %q, %v", b, err)
	}
	if err := c.Report(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Report(ctx, id, false); ErrorCode(err) != "ERROR_REPORT_NOT_RECORDED" || IsTransient(err) {
		t.Fatalf("reportbad: %v", err)
	}
	_, err = New(srv.URL, "wrong", srv.Client()).Balance(ctx)
	if ErrorCode(err) != CodeKeyDoesNotExist {
		t.Fatalf("plain key error: %v", err)
	}
	// HTML from a proxy in front of the provider.
	a, err := c.res(ctx, map[string][]string{"action": {"html"}})
	_ = a
	if err != nil {
		t.Fatalf("res(html): %v", err)
	}
	if e := c.notOK(a); e.Code != CodeBadResponse || !e.Transient {
		t.Fatalf("html answer: %v", e)
	}
	// 404 from a wrong base URL is permanent.
	_, err = New(srv.URL+"/nope", testKey, srv.Client()).Balance(ctx)
	if ErrorCode(err) != CodeHTTP4xx || IsTransient(err) {
		t.Fatalf("wrong base URL: %v", err)
	}
}

func TestHTTPStatuses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		code      string
		transient bool
	}{
		{500, "ERROR_ZERO_BALANCE", CodeHTTP5xx, true},
		{502, "<html>Bad Gateway</html>", CodeHTTP5xx, true},
		{503, "", CodeHTTP5xx, true},
		{429, "slow down", CodeHTTP429, true},
		{408, "", CodeTimeout, true},
		{403, "ERROR_IP_NOT_ALLOWED", "ERROR_IP_NOT_ALLOWED", false},
		{400, `{"status":0,"request":"ERROR_NO_SLOT_AVAILABLE"}`, "ERROR_NO_SLOT_AVAILABLE", true},
		{404, "not found", CodeHTTP4xx, false},
		{200, "", CodeBadResponse, true},
		{200, "{broken json", CodeBadResponse, true},
		{200, `{"request":"1"}`, CodeBadResponse, true},
		{200, "<html>maintenance</html>", CodeBadResponse, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
		}))
		c := New(srv.URL, testKey, srv.Client())
		_, err := c.Balance(ctxT(t))
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || e.Transient != tc.transient || e.Status != tc.status {
			t.Errorf("HTTP %d %q: %#v (%v)", tc.status, tc.body, e, err)
		}
		noKey(t, err)
		srv.Close()
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		body string
		want answer
		err  bool
	}{
		{`OK|7000000001`, answer{ok: true, text: "7000000001"}, false},
		{"OK|03AGdBq2|x\r\n", answer{ok: true, text: "03AGdBq2|x"}, false},
		{`OK`, answer{ok: true}, false},
		{"\xef\xbb\xbfOK|1", answer{ok: true, text: "1"}, false},
		{`CAPCHA_NOT_READY`, answer{text: "CAPCHA_NOT_READY"}, false},
		{`ERROR_ZERO_BALANCE`, answer{text: "ERROR_ZERO_BALANCE"}, false},
		{`12.3456`, answer{text: "12.3456"}, false},
		{`{"status":1,"request":"7000000001"}`, answer{ok: true, json: true, text: "7000000001"}, false},
		{`{"status":"1","request":"abc","price":"0.0029"}`, answer{ok: true, json: true, text: "abc", price: "0.0029"}, false},
		{`{"status":1,"request":"abc","price":0.0029}`, answer{ok: true, json: true, text: "abc", price: "0.0029"}, false},
		{`{"status":1,"request":12.5}`, answer{ok: true, json: true, text: "12.5"}, false},
		{`{"status":1,"request":[{"x":1,"y":2}]}`, answer{ok: true, json: true, text: `[{"x":1,"y":2}]`}, false},
		{`{"status":0,"request":"CAPCHA_NOT_READY"}`, answer{json: true, text: "CAPCHA_NOT_READY"}, false},
		{`{"status":0,"request":"ERROR_WRONG_USER_KEY","error_text":"bad key"}`, answer{json: true, text: "ERROR_WRONG_USER_KEY", errText: "bad key"}, false},
		{`{"status":0,"request":null}`, answer{json: true}, false},
		{``, answer{}, true},
		{"  \n", answer{}, true},
		{`{"status":1`, answer{}, true},
		{`{"request":"x"}`, answer{}, true},
		{`{"status":7,"request":"x"}`, answer{}, true},
	} {
		got, err := parseAnswer([]byte(tc.body))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseAnswer(%q) = %+v, %v; want %+v, error %v", tc.body, got, err, tc.want, tc.err)
		}
	}
}

func TestSplitPrice(t *testing.T) {
	for _, tc := range []struct{ in, answer, price string }{
		{"abc|0.0029", "abc", "0.0029"},
		{"a|b|0.003", "a|b", "0.003"},
		{"abc", "abc", ""},
		{"abc|def", "abc|def", ""},
		{"abc|", "abc|", ""},
		{"abc|.", "abc|.", ""},
		{"abc|1", "abc", "1"},
	} {
		a, p := splitPrice(tc.in)
		if a != tc.answer || p != tc.price {
			t.Errorf("splitPrice(%q) = %q, %q; want %q, %q", tc.in, a, p, tc.answer, tc.price)
		}
	}
}

func TestClassify(t *testing.T) {
	transient := []string{
		"ERROR_NO_SLOT_AVAILABLE", "ERROR_TOO_MUCH_REQUESTS", "ERROR_TOO_MANY_REQUESTS", "IP_BANNED",
		"ERROR_IP_BANNED", "ERROR_IP_BLOCKED", "MAX_USER_TURN", "ERROR_503", "ERROR_SERVER_ERROR",
		"ERROR_INTERNAL_SERVER_ERROR", "ERROR: 1001", "ERROR: 1002", "ERROR: 1003", "ERROR: 1004",
		"ERROR: 1005", "ERROR:1001", " ERROR_NO_SLOT_AVAILABLE ",
		CodeNetwork, CodeTimeout, CodeHTTP5xx, CodeHTTP429, CodeBadResponse,
	}
	permanent := []string{
		"ERROR_WRONG_USER_KEY", "ERROR_KEY_DOES_NOT_EXIST", "ERROR_ZERO_BALANCE", "ERROR_PAGEURL",
		"ERROR_GOOGLEKEY", "ERROR_WRONG_GOOGLEKEY", "ERROR_SITEKEY", "ERROR_CAPTCHA_UNSOLVABLE",
		"ERROR_WRONG_CAPTCHA_ID", "ERROR_NO_SUCH_CAPCHA_ID", "ERROR_WRONG_ID_FORMAT", "ERROR_BAD_PARAMETERS",
		"ERROR_ZERO_CAPTCHA_FILESIZE", "ERROR_TOO_BIG_CAPTCHA_FILESIZE", "ERROR_WRONG_FILE_EXTENSION",
		"ERROR_IMAGE_TYPE_NOT_SUPPORTED", "ERROR_UPLOAD", "ERROR_IP_NOT_ALLOWED", "ERROR_IP_ADDRES",
		"ERROR_BAD_TOKEN_OR_PAGEURL", "ERROR_CAPTCHAIMAGE_BLOCKED", "TOO_MANY_BAD_IMAGES",
		"ERROR_EMPTY_ACTION", "ERROR_NO_SUCH_METHOD", "ERROR_BAD_DUPLICATES", "ERROR_TOKEN_EXPIRED",
		"ERROR_ACCOUNT_SUSPENDED", "ERROR_RECAPTCHA_INVALID_SITEKEY", "ERROR_TASK_ABSENT",
		"ERROR_TASK_NOT_SUPPORTED", "ERROR_PROXY_FORMAT", "ERROR_BAD_PROXY", "ERROR_PROXY_CONNECTION_FAILED",
		"ERROR_PROXY_ANYTHING_ELSE", "ERROR_REPORT_NOT_RECORDED", "REPORT_NOT_RECORDED",
		"ERROR_DUPLICATE_REPORT", "ERROR_UNKNOWN_NEW_CODE", "ERROR", "ERROR: ", "ERROR: 10x1", CodeHTTP4xx, CodeBatchMismatch, "",
	}
	for _, c := range transient {
		if !Classify(c) {
			t.Errorf("Classify(%q) = permanent, want transient", c)
		}
	}
	for _, c := range permanent {
		if Classify(c) {
			t.Errorf("Classify(%q) = transient, want permanent", c)
		}
	}
	// Every code in the table is covered by this test.
	listed := map[string]bool{}
	for _, c := range append(transient, permanent...) {
		listed[c] = true
	}
	for c := range codes {
		if !listed[c] {
			t.Errorf("code %s is in the table but not in this test", c)
		}
	}
}

func TestIsErrorCodeAndTaskError(t *testing.T) {
	for s, want := range map[string]bool{
		"ERROR_ZERO_BALANCE": true, "ERROR: 1001": true, "IP_BANNED": true, "MAX_USER_TURN": true,
		"REPORT_NOT_RECORDED": true, "TOO_MANY_BAD_IMAGES": true, "ERROR": true,
		"CAPCHA_NOT_READY": false, "OK_REPORT_RECORDED": false, "03AGdBq2-SIM-1": false, "ERRORS": false,
		"": false, "network_error": false,
	} {
		if IsErrorCode(s) != want {
			t.Errorf("IsErrorCode(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{
		"ERROR_CAPTCHA_UNSOLVABLE": true, "ERROR_WRONG_CAPTCHA_ID": true, "ERROR_PROXY_CONNECTION_FAILED": true,
		"ERROR_BAD_DUPLICATES": true, "ERROR_KEY_DOES_NOT_EXIST": false, "ERROR_NO_SLOT_AVAILABLE": false,
	} {
		if IsTaskError(s) != want {
			t.Errorf("IsTaskError(%q) = %v", s, !want)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	e := &Error{Code: "ERROR_ZERO_BALANCE", Status: 200, Text: "no funds"}
	wrapped := fmt.Errorf("submit: %w", e)
	if ErrorCode(wrapped) != "ERROR_ZERO_BALANCE" || IsTransient(wrapped) {
		t.Fatal(wrapped)
	}
	if got := e.Error(); got != "ERROR_ZERO_BALANCE (no funds)" {
		t.Fatalf("Error() = %q", got)
	}
	net := &Error{Code: CodeHTTP5xx, Transient: true, Status: 502}
	if got := net.Error(); got != "http_5xx [HTTP 502]" {
		t.Fatalf("Error() = %q", got)
	}
	if !IsTransient(fmt.Errorf("x: %w", context.DeadlineExceeded)) || IsTransient(errors.New("x")) || IsTransient(nil) {
		t.Fatal("IsTransient of plain errors")
	}
	if ErrorCode(errors.New("x")) != "" || ErrorCode(nil) != "" {
		t.Fatal("ErrorCode of plain errors")
	}
	cause := errors.New("cause")
	if !errors.Is(&Error{Code: CodeNetwork, Err: cause}, cause) {
		t.Fatal("Unwrap")
	}
}
