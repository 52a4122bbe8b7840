package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// legacyCall sends one request to the 2captcha front and returns its body.
// enc is how params travel: "query" (GET), "form" (POST urlencoded),
// "multipart", "json" (POST application/json) or "json-text" (a JSON body
// sent as text/plain, as the 2captcha npm package sends its images).
func legacyCall(t *testing.T, base, path, enc string, params map[string]string) string {
	t.Helper()
	var req *http.Request
	var err error
	switch enc {
	case "query":
		q := url.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		req, err = http.NewRequest("GET", base+path+"?"+q.Encode(), nil)
	case "form":
		q := url.Values{}
		for k, v := range params {
			q.Set(k, v)
		}
		req, err = http.NewRequest("POST", base+path, strings.NewReader(q.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	case "multipart":
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for k, v := range params {
			mw.WriteField(k, v)
		}
		mw.Close()
		req, err = http.NewRequest("POST", base+path, &b)
		if req != nil {
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
	case "json", "json-text":
		body := map[string]any{}
		for k, v := range params {
			body[k] = v
		}
		if params["json"] == "1" {
			body["json"] = 1 // a number, as JSON clients send it
		}
		b, _ := json.Marshal(body)
		req, err = http.NewRequest("POST", base+path, bytes.NewReader(b))
		if req != nil {
			req.Header.Set("Content-Type", map[string]string{"json": "application/json", "json-text": "text/plain;charset=UTF-8"}[enc])
		}
	default:
		t.Fatalf("unknown encoding %q", enc)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%s %s: HTTP %d, want 200 as 2captcha answers", req.Method, path, resp.StatusCode)
	}
	return string(b)
}

func decodeLegacy(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("json=1 answer %q is not JSON: %v", body, err)
	}
	return m
}

// TestCompatAnswersAsDocumented checks every res.php action against 2captcha's
// API documentation (https://2captcha.com/2captcha-api), in each task state,
// in plain text and with json=1. The rule JSON clients depend on: status is 1
// for a result and 0 for everything else, CAPCHA_NOT_READY included.
func TestCompatAnswersAsDocumented(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{})
			pid, key := r.c.NewProject("answers")
			status := func(id string) string { return r.c.Do("GET", "/v1/tasks/"+id, key, nil).Data()["status"].(string) }
			// submit sends one task with the outcome the simulator gives it,
			// and waits until it is submitted upstream: outcomes go to tasks
			// in the order the simulator accepts them, so one at a time.
			submit := func(o simulator.Outcome) string {
				t.Helper()
				r.sim.SetNextOutcomes(o)
				got := legacyCall(t, r.c.URL, "/in.php", "form", map[string]string{"key": key, "method": "userrecaptcha", "googlekey": "6Le-k", "pageurl": "https://example.com/a"})
				id, ok := strings.CutPrefix(got, "OK|")
				if !ok {
					t.Fatalf("in.php: %q, want OK|<id>", got)
				}
				apptest.Eventually(t, 30*time.Second, "task submitted upstream", func() bool { return status(id) != "pending" })
				return id
			}
			solved := submit(simulator.Outcome{Answer: "TOKEN-SOLVED"})
			failed := submit(simulator.Outcome{Unsolvable: true})
			expired := submit(simulator.Outcome{Delay: time.Hour}) // never solved: expires
			// Expire it once submitted, so the submitter's own update cannot race ours.
			apptest.Eventually(t, 10*time.Second, "task submitted", func() bool { return status(expired) == "submitted" })
			expireNow(t, r.c, pid, expired)
			decided := func() bool {
				return status(solved) == "solved" && status(failed) == "failed" && status(expired) == "expired"
			}
			for end := time.Now().Add(30 * time.Second); !decided() && time.Now().Before(end); {
				time.Sleep(20 * time.Millisecond)
			}
			if !decided() {
				t.Fatalf("tasks not decided in 30 s: solved %s, failed %s, expired %s", status(solved), status(failed), status(expired))
			}
			pending := submit(simulator.Outcome{Delay: time.Hour})
			unknown := "0190aaaa-0000-7000-8000-000000000000"

			price := "0.003" // the simulator's price, asked upstream with get2 once
			type row struct {
				doc    string // what 2captcha's documentation says
				params map[string]string
				plain  string
				json   map[string]any
			}
			rows := []row{
				{"solved: OK|TEXT, or {\"status\":1,\"request\":\"TEXT\"}",
					map[string]string{"action": "get", "id": solved}, "OK|TOKEN-SOLVED", map[string]any{"status": 1.0, "request": "TOKEN-SOLVED"}},
				{"not solved yet: CAPCHA_NOT_READY, status 0 in JSON (status 1 means a result)",
					map[string]string{"action": "get", "id": pending}, "CAPCHA_NOT_READY", map[string]any{"status": 0.0, "request": "CAPCHA_NOT_READY"}},
				{"unsolvable: ERROR_CAPTCHA_UNSOLVABLE",
					map[string]string{"action": "get", "id": failed}, "ERROR_CAPTCHA_UNSOLVABLE", map[string]any{"status": 0.0, "request": "ERROR_CAPTCHA_UNSOLVABLE", "error_text": "*"}},
				{"no answer in time: ERROR_CAPTCHA_UNSOLVABLE (\"we didn't get an answer within 90 seconds\")",
					map[string]string{"action": "get", "id": expired}, "ERROR_CAPTCHA_UNSOLVABLE", map[string]any{"status": 0.0, "request": "ERROR_CAPTCHA_UNSOLVABLE", "error_text": "*"}},
				{"incorrect captcha ID: ERROR_WRONG_CAPTCHA_ID",
					map[string]string{"action": "get", "id": unknown}, "ERROR_WRONG_CAPTCHA_ID", map[string]any{"status": 0.0, "request": "ERROR_WRONG_CAPTCHA_ID", "error_text": "*"}},
				{"captcha ID in wrong format: ERROR_WRONG_ID_FORMAT",
					map[string]string{"action": "get", "id": "12345abc"}, "ERROR_WRONG_ID_FORMAT", map[string]any{"status": 0.0, "request": "ERROR_WRONG_ID_FORMAT", "error_text": "*"}},
				{"no id: ERROR_WRONG_ID_FORMAT",
					map[string]string{"action": "get"}, "ERROR_WRONG_ID_FORMAT", map[string]any{"status": 0.0, "request": "ERROR_WRONG_ID_FORMAT", "error_text": "*"}},
				{"get2 solved: OK|ABCDE|0.00085, or {\"status\":1,\"request\":\"ABCDE\",\"price\":\"0.00085\"}",
					map[string]string{"action": "get2", "id": solved}, "OK|TOKEN-SOLVED|" + price, map[string]any{"status": 1.0, "request": "TOKEN-SOLVED", "price": price}},
				{"get2 not ready: CAPCHA_NOT_READY, no price",
					map[string]string{"action": "get2", "id": pending}, "CAPCHA_NOT_READY", map[string]any{"status": 0.0, "request": "CAPCHA_NOT_READY"}},
				{"get2 unsolvable: ERROR_CAPTCHA_UNSOLVABLE",
					map[string]string{"action": "get2", "id": failed}, "ERROR_CAPTCHA_UNSOLVABLE", map[string]any{"status": 0.0, "request": "ERROR_CAPTCHA_UNSOLVABLE", "error_text": "*"}},
				{"get with ids: one item per id, '|'-separated; answers without OK|",
					map[string]string{"action": "get", "ids": solved + "," + pending + "," + failed + "," + unknown},
					"TOKEN-SOLVED|CAPCHA_NOT_READY|ERROR_CAPTCHA_UNSOLVABLE|ERROR_WRONG_CAPTCHA_ID",
					map[string]any{"status": 1.0, "request": "TOKEN-SOLVED|CAPCHA_NOT_READY|ERROR_CAPTCHA_UNSOLVABLE|ERROR_WRONG_CAPTCHA_ID"}},
				{"get with more than 100 ids: ERROR_BAD_PARAMETERS, as 2captcha caps a batch (each id costs a lookup)",
					map[string]string{"action": "get", "ids": strings.Repeat(unknown+",", 100) + unknown}, "ERROR_BAD_PARAMETERS",
					map[string]any{"status": 0.0, "request": "ERROR_BAD_PARAMETERS", "error_text": "*"}},
				{"getbalance: the balance alone in plain text, {\"status\":1,\"request\":\"<balance>\"}",
					map[string]string{"action": "getbalance"}, "*balance", map[string]any{"status": 1.0, "request": "*balance"}},
				{"reportbad of a task that is not solved: ERROR_REPORT_NOT_RECORDED",
					map[string]string{"action": "reportbad", "id": pending}, "ERROR_REPORT_NOT_RECORDED", map[string]any{"status": 0.0, "request": "ERROR_REPORT_NOT_RECORDED", "error_text": "*"}},
				{"reportgood of an unknown id: ERROR_WRONG_CAPTCHA_ID",
					map[string]string{"action": "reportgood", "id": unknown}, "ERROR_WRONG_CAPTCHA_ID", map[string]any{"status": 0.0, "request": "ERROR_WRONG_CAPTCHA_ID", "error_text": "*"}},
				{"action missing: ERROR_EMPTY_ACTION",
					map[string]string{}, "ERROR_EMPTY_ACTION", map[string]any{"status": 0.0, "request": "ERROR_EMPTY_ACTION", "error_text": "*"}},
				{"unsupported action: ERROR_EMPTY_ACTION",
					map[string]string{"action": "getrate"}, "ERROR_EMPTY_ACTION", map[string]any{"status": 0.0, "request": "ERROR_EMPTY_ACTION", "error_text": "*"}},
			}
			for _, enc := range []string{"query", "form", "json"} {
				for _, rw := range rows {
					for _, asJSON := range []bool{false, true} {
						p := map[string]string{"key": key}
						for k, v := range rw.params {
							p[k] = v
						}
						if asJSON {
							p["json"] = "1"
						}
						got := legacyCall(t, r.c.URL, "/res.php", enc, p)
						if !asJSON {
							if !legacyMatch(rw.plain, got) {
								t.Errorf("%s, %s, plain: got %q, want %q", rw.doc, enc, got, rw.plain)
							}
							continue
						}
						m := decodeLegacy(t, got)
						if !legacyJSONMatch(rw.json, m) {
							t.Errorf("%s, %s, json=1: got %v, want %v", rw.doc, enc, m, rw.json)
						}
					}
				}
			}

			// reportgood of a solved task is forwarded once: OK_REPORT_RECORDED;
			// the provider's ERROR_DUPLICATE_REPORT comes back for a second one.
			if got := legacyCall(t, r.c.URL, "/res.php", "query", map[string]string{"key": key, "action": "reportgood", "id": solved}); got != "OK_REPORT_RECORDED" {
				t.Errorf("reportgood: %q, want OK_REPORT_RECORDED", got)
			}
			m := decodeLegacy(t, legacyCall(t, r.c.URL, "/res.php", "query", map[string]string{"key": key, "action": "reportbad", "id": solved, "json": "1"}))
			if m["status"] != 0.0 || m["request"] != "ERROR_DUPLICATE_REPORT" {
				t.Errorf("second report: %v, want status 0 ERROR_DUPLICATE_REPORT", m)
			}

			// Key errors, both forms: a malformed key and one that does not exist.
			for _, c := range []struct{ key, code string }{{"", "ERROR_WRONG_USER_KEY"}, {"short", "ERROR_WRONG_USER_KEY"}, {"ck_not_a_real_key_000000000000", "ERROR_KEY_DOES_NOT_EXIST"}} {
				for _, path := range []string{"/res.php", "/in.php"} {
					if got := legacyCall(t, r.c.URL, path, "query", map[string]string{"key": c.key, "action": "get", "id": solved}); got != c.code {
						t.Errorf("%s with key %q: %q, want %s", path, c.key, got, c.code)
					}
					m := decodeLegacy(t, legacyCall(t, r.c.URL, path, "json", map[string]string{"key": c.key, "action": "get", "id": solved, "json": "1"}))
					if m["status"] != 0.0 || m["request"] != c.code || m["error_text"] == "" {
						t.Errorf("%s with key %q, json: %v", path, c.key, m)
					}
				}
			}
			m = decodeLegacy(t, legacyCall(t, r.c.URL, "/res.php", "query", map[string]string{"key": "short", "action": "get", "json": "1"}))
			if text, _ := m["error_text"].(string); !strings.Contains(text, "16 characters") {
				t.Errorf("short key error_text %q does not say keys have at least 16 characters", text)
			}

			// header_acao=1 adds the CORS header, as documented.
			resp, err := http.Get(r.c.URL + "/res.php?header_acao=1&action=get&key=" + url.QueryEscape(key) + "&id=" + solved)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("header_acao=1: Access-Control-Allow-Origin %q, want *", got)
			}
		})
	}
}

// expireNow makes a task's maximum age run out now, so the expirer takes it.
func expireNow(t *testing.T, c *apptest.Carrier, projectID, id string) {
	t.Helper()
	ctx := context.Background()
	for range 50 {
		tk, err := c.App.Store.GetTask(ctx, projectID, id)
		if err != nil {
			t.Fatal(err)
		}
		tk.ExpiresAt = time.Now().Add(-time.Second)
		if _, err := c.App.Store.UpdateTask(ctx, tk, tk.Version, nil); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // the submitter changed it meanwhile
	}
	t.Fatalf("could not expire task %s", id)
}

// legacyMatch compares a plain answer; "*balance" wants a decimal number.
func legacyMatch(want, got string) bool {
	if want == "*balance" {
		if got == "" || strings.Trim(got, "0123456789.") != "" {
			return false
		}
		return true
	}
	return got == want
}

// legacyJSONMatch compares a JSON answer field for field; "*" wants any
// non-empty string and "*balance" a decimal number.
func legacyJSONMatch(want, got map[string]any) bool {
	if len(want) != len(got) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		switch w {
		case "*":
			if s, _ := g.(string); s == "" {
				return false
			}
		case "*balance":
			if s, _ := g.(string); !legacyMatch("*balance", s) {
				return false
			}
		default:
			if !reflect.DeepEqual(w, g) {
				return false
			}
		}
	}
	return true
}

// TestCompatInAcceptsEveryEncoding submits through in.php with the key and
// json=1 in the query, a form, a multipart form and a JSON body (as
// application/json and as text/plain): each is read, and json=1 in the body
// gets a JSON answer.
func TestCompatInAcceptsEveryEncoding(t *testing.T) {
	e := storetest.Engines(t)[0]
	r := startTaskRig(t, e, rigOptions{})
	_, key := r.c.NewProject("encodings")
	for _, enc := range []string{"query", "form", "multipart", "json", "json-text"} {
		got := legacyCall(t, r.c.URL, "/in.php", enc, map[string]string{"key": key, "method": "userrecaptcha", "googlekey": "6Le-k", "pageurl": "https://example.com/a", "json": "1"})
		m := decodeLegacy(t, got)
		id, _ := m["request"].(string)
		if m["status"] != 1.0 || id == "" {
			t.Errorf("in.php with %s: %v, want status 1 and the task id", enc, m)
			continue
		}
		task := r.c.Do("GET", "/v1/tasks/"+id, key, nil)
		if task.Status != http.StatusOK || task.Data()["method"] != "userrecaptcha" {
			t.Errorf("task of in.php with %s: %d %s", enc, task.Status, task.Body)
		}
		params, _ := task.Data()["params"].(map[string]any)
		if params["googlekey"] != "6Le-k" || params["json"] != nil || params["key"] != nil {
			t.Errorf("in.php with %s stored params %v", enc, params)
		}
	}
	// A JSON body's own errors are legacy errors, in JSON when the body asked for it.
	m := decodeLegacy(t, legacyCall(t, r.c.URL, "/in.php", "json", map[string]string{"key": key, "method": "userrecaptcha", "pageurl": "https://example.com/a", "json": "1"}))
	if m["status"] != 0.0 || m["request"] != "ERROR_GOOGLEKEY" {
		t.Errorf("in.php JSON without googlekey: %v", m)
	}
	// The image upload of the 2captcha npm package: the key in the query, the
	// image in a JSON body sent as text/plain.
	resp, err := http.Post(r.c.URL+"/in.php?method=base64&json=1&key="+url.QueryEscape(key), "text/plain;charset=UTF-8",
		strings.NewReader(`{"body":"`+strings.Repeat("QUJD", 40)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := decodeLegacy(t, string(b)); m["status"] != 1.0 {
		t.Errorf("base64 image in a text/plain JSON body: %v", m)
	}
	// base64 without an image, multipart post without a file.
	if got := legacyCall(t, r.c.URL, "/in.php", "form", map[string]string{"key": key, "method": "base64"}); got != "ERROR_ZERO_CAPTCHA_FILESIZE" {
		t.Errorf("base64 without body: %q", got)
	}
	if got := legacyCall(t, r.c.URL, "/in.php", "multipart", map[string]string{"key": key, "method": "post"}); got != "ERROR_ZERO_CAPTCHA_FILESIZE" {
		t.Errorf("post without file: %q", got)
	}
	// Malformed JSON is refused with a legacy error, not ignored.
	resp, err = http.Post(r.c.URL+"/in.php", "application/json", strings.NewReader(`{"key": "`+key+`", "json": 1,`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ERROR_BAD_PARAMETERS" {
		t.Errorf("malformed JSON body: %q", b)
	}
}

// TestCompatWithoutProviderIsPermanent: without a provider, in.php and the
// actions that need one answer an error clients do not retry, whose text says
// what to configure (it used to be ERROR_NO_SLOT_AVAILABLE, retried for ever).
func TestCompatWithoutProviderIsPermanent(t *testing.T) {
	e := storetest.Engines(t)[0]
	c := apptest.Start(t, e, apptest.Options{})
	cases := []struct {
		path   string
		params map[string]string
	}{
		{"/in.php", map[string]string{"method": "userrecaptcha", "googlekey": "k", "pageurl": "https://example.com"}},
		{"/res.php", map[string]string{"action": "getbalance"}},
	}
	for _, tc := range cases {
		p := map[string]string{"key": apptest.AdminKey}
		for k, v := range tc.params {
			p[k] = v
		}
		if got := legacyCall(t, c.URL, tc.path, "query", p); got != "ERROR_NO_PROVIDER_CONFIGURED" {
			t.Errorf("%s %v: %q, want ERROR_NO_PROVIDER_CONFIGURED", tc.path, tc.params, got)
		}
		p["json"] = "1"
		m := decodeLegacy(t, legacyCall(t, c.URL, tc.path, "query", p))
		text, _ := m["error_text"].(string)
		if m["status"] != 0.0 || m["request"] != "ERROR_NO_PROVIDER_CONFIGURED" || !strings.Contains(text, "CARRIER_PROVIDER_URL") || !strings.Contains(text, "--simulate") {
			t.Errorf("%s json: %v, want the code and a text naming CARRIER_PROVIDER_URL and --simulate", tc.path, m)
		}
	}
}

// TestCompatFrontWithJSClients runs two published Node.js 2captcha clients in
// JSON mode, installed from the npm registry at the versions
// testdata/js2captcha pins and unmodified but for their endpoint: the
// official @2captcha/captcha-solver solves a reCAPTCHA with a pingback URL
// (and must get the real token, not CAPCHA_NOT_READY, and the pingback) and
// reads the balance; the 2captcha package POSTs an image as a JSON body.
func TestCompatFrontWithJSClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for this test (Node.js 20 and npm; see the README's prerequisites)")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "solve.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "js2captcha", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci (the npm registry must be reachable, or the packages in npm's cache): %v\n%s", err, out)
	}

	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 300 * time.Millisecond, MaxDelay: 600 * time.Millisecond}})
			_, key := r.c.NewProject("js")
			run := exec.CommandContext(ctx, node, "solve.js")
			run.Dir = dir
			run.Env = append(os.Environ(), "CARRIER_URL="+r.c.URL, "CARRIER_KEY="+key)
			var stderr bytes.Buffer
			run.Stderr = &stderr
			out, err := run.Output()
			if err != nil {
				t.Fatalf("solve.js: %v\n%s", err, stderr.String())
			}
			var got struct {
				Recaptcha struct{ Data, ID string }
				Image     struct{ Data, ID string }
				Balance   float64
				Pingbacks []struct{ Method, URL, Type, Body string }
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("solve.js printed %q: %v", out, err)
			}
			for name, res := range map[string]struct{ Data, ID string }{"recaptcha": got.Recaptcha, "image": got.Image} {
				task := r.c.Do("GET", "/v1/tasks/"+res.ID, key, nil)
				if task.Status != http.StatusOK {
					t.Fatalf("%s task %q: %d %s", name, res.ID, task.Status, task.Body)
				}
				sim, ok := r.sim.Task(task.Data()["provider_id"].(string))
				if !ok || res.Data != sim.Answer || res.Data == "" {
					t.Errorf("%s: the client got %q, want the provider's answer %q", name, res.Data, sim.Answer)
				}
			}
			if len(got.Pingbacks) != 1 {
				t.Fatalf("the client's pingback server got %d requests, want 1: %+v", len(got.Pingbacks), got.Pingbacks)
			}
			pb := got.Pingbacks[0]
			form, _ := url.ParseQuery(pb.Body)
			if pb.Method != "POST" || pb.URL != "/pingback" || pb.Type != "application/x-www-form-urlencoded" ||
				form.Get("id") != got.Recaptcha.ID || form.Get("code") != got.Recaptcha.Data {
				t.Errorf("pingback %+v, want a form POST of id=%s and code=%s", pb, got.Recaptcha.ID, got.Recaptcha.Data)
			}
			if got.Balance <= 0 {
				t.Errorf("balance %v", got.Balance)
			}
		})
	}
}
