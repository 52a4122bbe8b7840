package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	api2captcha "github.com/2captcha/2captcha-go"

	"carrier/internal/provider/simulator"
	"carrier/internal/store/storetest"
)

// TestCompatFrontWithPublishedClient points the published 2captcha Go client,
// unmodified, at Carrier's in.php/res.php front: it submits tasks and gets
// their answers, which Carrier obtained from the provider simulator.
func TestCompatFrontWithPublishedClient(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := startTaskRig(t, e, rigOptions{sim: simulator.Config{MinDelay: 300 * time.Millisecond, MaxDelay: 600 * time.Millisecond}})
			_, key := r.c.NewProject("compat")
			base, _ := url.Parse(r.c.URL)
			client := api2captcha.NewClient(key)
			client.BaseURL = base
			client.SoftId = 0
			client.PollingInterval = 1
			client.DefaultTimeout = 20
			client.RecaptchaTimeout = 20

			requests := []api2captcha.Request{
				(&api2captcha.ReCaptcha{SiteKey: "6Le-test-sitekey", Url: "https://example.com/login"}).ToRequest(),
				(&api2captcha.Normal{Base64: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("captcha image "), 12))}).ToRequest(),
			}
			for _, req := range requests {
				answer, id, err := client.Solve(req)
				if err != nil {
					t.Fatalf("Solve %v through Carrier: %v", req.Params, err)
				}
				got := r.c.Do("GET", "/v1/tasks/"+id, key, nil)
				if got.Status != http.StatusOK {
					t.Fatalf("task %s: %d %s", id, got.Status, got.Body)
				}
				st, ok := r.sim.Task(got.Data()["provider_id"].(string))
				if !ok || answer != st.Answer {
					t.Errorf("answer %q, want the provider's %q", answer, st.Answer)
				}
			}

			// Wrong key: the legacy error, as the client expects.
			bad := api2captcha.NewClient("ck_not_a_real_key_000000000000")
			bad.BaseURL, bad.SoftId, bad.PollingInterval, bad.DefaultTimeout = base, 0, 1, 5
			if _, _, err := bad.Solve(requests[1]); !errors.Is(err, api2captcha.ErrApi) {
				t.Errorf("wrong key: err = %v, want an API error", err)
			}

			// The legacy answers, plain and json=1.
			get := func(query string) string {
				resp, err := http.Get(r.c.URL + "/res.php?key=" + url.QueryEscape(key) + "&" + query)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("res.php?%s: HTTP %d", query, resp.StatusCode)
				}
				return string(b)
			}
			if got := get("action=get&id=00000000-0000-0000-0000-000000000000"); got != "ERROR_WRONG_CAPTCHA_ID" {
				t.Errorf("unknown id: %q", got)
			}
			var j map[string]any
			json.Unmarshal([]byte(get("action=get&json=1&id=00000000-0000-0000-0000-000000000001")), &j)
			if j["status"] != float64(0) || j["request"] != "ERROR_WRONG_CAPTCHA_ID" {
				t.Errorf("unknown id json: %v", j)
			}
			bal := get("action=getbalance")
			if _, err := strconv.ParseFloat(bal, 64); err != nil {
				t.Errorf("getbalance: %q", bal)
			}
			before := r.sim.Stats().BalanceRequests
			get("action=getbalance")
			if after := r.sim.Stats().BalanceRequests; after != before {
				t.Errorf("getbalance was not answered from cache: %d upstream requests, want %d", after, before)
			}
			if got := get("action=nope"); !strings.HasPrefix(got, "ERROR_") {
				t.Errorf("unknown action: %q", got)
			}
			// A task submitted through in.php answers CAPCHA_NOT_READY until solved, from Carrier's store.
			resp, err := http.PostForm(r.c.URL+"/in.php", url.Values{"key": {key}, "method": {"userrecaptcha"}, "googlekey": {"k"}, "pageurl": {"https://example.com"}, "json": {"1"}})
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&j)
			resp.Body.Close()
			id, _ := j["request"].(string)
			if j["status"] != float64(1) || id == "" {
				t.Fatalf("in.php json: %v", j)
			}
			resBefore := r.sim.Stats().ResGetRequests
			if got := get("action=get&id=" + id); got != "CAPCHA_NOT_READY" {
				t.Errorf("fresh task: %q, want CAPCHA_NOT_READY", got)
			}
			deadline := time.Now().Add(10 * time.Second)
			var final string
			for time.Now().Before(deadline) {
				if final = get("action=get&id=" + id); final != "CAPCHA_NOT_READY" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.HasPrefix(final, "OK|03") {
				t.Errorf("solved task: %q", final)
			}
			if got := r.sim.Stats().ResGetRequests; got != resBefore {
				t.Errorf("res.php on Carrier reached upstream: %d requests, want %d", got, resBefore)
			}
			if got := get("action=reportgood&id=" + id); got != "OK_REPORT_RECORDED" {
				t.Errorf("reportgood: %q", got)
			}
			if r.sim.Stats().Reports != 1 {
				t.Errorf("report not forwarded upstream: %+v", r.sim.Stats())
			}
			// in.php errors the legacy way.
			resp, err = http.PostForm(r.c.URL+"/in.php", url.Values{"key": {key}, "method": {"userrecaptcha"}, "pageurl": {"https://example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ERROR_GOOGLEKEY" {
				t.Errorf("in.php without googlekey: %q", b)
			}
		})
	}
}
