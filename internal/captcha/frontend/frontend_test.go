package frontend

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestScript(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, body := get(t, srv, ScriptPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	// The scheme as Tencent's document writes it: the handler defined
	// before the script loads, the ticket and randstr made exactly so, and
	// the callback deciding on ticket and errorCode.
	for _, want := range []string{
		"function loadErrorCallback()",
		"'terror_1001_' + appid + '_' + Math.floor(new Date().getTime() / 1000)",
		"randstr: '@' + Math.random().toString(36).substr(2)",
		"errorCode: 1001",
		"errorMessage: 'jsload_error'",
		"ret: 0,",
		"script.onerror = function () { settle(false); };",
		"timer = setTimeout(loadErrorCallback, timeoutMs);",
		"new window.TencentCaptcha(appid, callback, opts.captchaOptions || {});",
		"captcha.show();",
		"if (res.ticket) {",
		"if (res.errorCode) {",
		"onResult({ closed: true, ret: res.ret });",
		"'" + TencentScript + "'",
		"window.CarrierCaptcha = api;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dr.js lacks %s", want)
		}
	}
	// Handlers first, then src: an error cannot fire before onerror is set.
	if i, j := strings.Index(body, "script.onerror ="), strings.Index(body, "script.src = url"); i < 0 || j < 0 || i > j {
		t.Error("dr.js sets src before onerror")
	}
	// The timeout is armed before the load starts (a cached script calls
	// show at once, which must be able to clear it).
	if i, j := strings.Index(body, "timer = setTimeout("), strings.Index(body, "load(opts.scriptUrl"); i < 0 || j < 0 || i > j {
		t.Error("dr.js starts loading before arming the timeout")
	}
	// ES5: no ES2015 syntax an old browser would choke on.
	for _, es6 := range []string{"=>", "let ", "const ", "`", "class "} {
		if strings.Contains(body, es6) {
			t.Errorf("dr.js uses %q, which is not ES5", es6)
		}
	}
	// A shorthand property, as in the document's own sample ("ticket,").
	if m := regexp.MustCompile(`(?m)^\s+[A-Za-z_$][\w$]*,$`).FindString(body); m != "" {
		t.Errorf("dr.js uses a shorthand property %q, which is not ES5", strings.TrimSpace(m))
	}
	if len(body) > 8<<10 {
		t.Errorf("dr.js is %d bytes", len(body))
	}

	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, _ = get(t, srv, ScriptPath, "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", resp.StatusCode)
	}
}

func TestRoutesOnAMux(t *testing.T) {
	mux := http.NewServeMux()
	for pattern, h := range Routes() {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+ScriptPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST dr.js: %d, want 405", resp.StatusCode)
	}
	req, _ := http.NewRequest("HEAD", srv.URL+ScriptPath, nil)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/javascript") {
		t.Errorf("HEAD dr.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestExamplePage(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	q := url.Values{"app_id": {"190000000"}, "backend": {"http://127.0.0.1:9/login"}, "script": {"http://127.0.0.1:8/TJCaptcha.js"}, "timeout_ms": {"300"}}
	resp, body := get(t, srv, ExamplePath+"?"+q.Encode())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<script src="dr.js"></script>`,
		`"appId":"190000000"`,
		`"backend":"http://127.0.0.1:9/login"`,
		`"scriptUrl":"http://127.0.0.1:8/TJCaptcha.js"`,
		`"timeoutMs":300`,
		`window.CarrierCaptcha.tencent(`,
		`<form id="login">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "config-error") {
		t.Error("page shows the missing app_id notice")
	}

	// Without settings: Tencent's script, the form disabled until app_id.
	_, body = get(t, srv, ExamplePath)
	for _, want := range []string{`"scriptUrl":"` + TencentScript + `"`, `id="config-error"`, `type="submit" disabled`} {
		if !strings.Contains(body, want) {
			t.Errorf("page without settings lacks %s", want)
		}
	}
}

func TestExampleSettingsRefused(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		q     url.Values
		field string
	}{
		{"app id not digits", url.Values{"app_id": {"abc"}}, "app_id"},
		{"app id script injection", url.Values{"app_id": {"1</script><script>alert(1)//"}}, "app_id"},
		{"back end elsewhere", url.Values{"backend": {"https://evil.example/steal"}}, "backend"},
		{"back end protocol-relative", url.Values{"backend": {"//evil.example/steal"}}, "backend"},
		{"back end javascript", url.Values{"backend": {"javascript:alert(1)"}}, "backend"},
		{"back end with credentials", url.Values{"backend": {"http://u:p@127.0.0.1/x"}}, "backend"},
		{"script elsewhere", url.Values{"script": {"https://evil.example/x.js"}}, "script"},
		{"script lookalike", url.Values{"script": {"https://turing.captcha.qcloud.com.evil.example/TJCaptcha.js"}}, "script"},
		{"script data", url.Values{"script": {"data:text/javascript,alert(1)"}}, "script"},
		{"timeout not a number", url.Values{"timeout_ms": {"soon"}}, "timeout_ms"},
		{"timeout too long", url.Values{"timeout_ms": {"600000"}}, "timeout_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, ExamplePath+"?"+tc.q.Encode())
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(body, tc.field+":") {
				t.Errorf("%d %q, want 400 naming %s", resp.StatusCode, body, tc.field)
			}
			if strings.Contains(body, "<script") && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Error("refusal is HTML")
			}
		})
	}
	for _, ok := range []url.Values{
		{"backend": {"/login"}},
		{"backend": {"http://localhost:8080/login"}},
		{"backend": {"http://[::1]:8080/login"}},
		{"script": {"http://127.0.0.1:5/TJCaptcha.js"}},
	} {
		if resp, body := get(t, srv, ExamplePath+"?"+ok.Encode()); resp.StatusCode != http.StatusOK {
			t.Errorf("%v: %d %s", ok, resp.StatusCode, body)
		}
	}
}
