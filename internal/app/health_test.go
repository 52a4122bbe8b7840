package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// healthSignalCounts reads carrier_health_signals_total from /metrics, by signal.
func healthSignalCounts(t *testing.T, c *apptest.Carrier) map[string]string {
	t.Helper()
	r := c.Do("GET", "/metrics", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(r.Body), "\n") {
		rest, ok := strings.CutPrefix(line, `carrier_health_signals_total{signal="`)
		if !ok {
			continue
		}
		if signal, value, ok := strings.Cut(rest, `"} `); ok {
			got[signal] = value
		}
	}
	return got
}

// TestHealthSignalsDisableAndRecover checks the health signals end to end: a
// webhook whose endpoint keeps failing is counted degraded once (at its fifth
// failed attempt, not at every one after) and disabled once (at its tenth),
// and each delivery that failed for good is counted as retries exhausted;
// once activated again, its first success is counted as recovered.
func TestHealthSignalsDisableAndRecover(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			ep := apptest.NewEndpoint(t, rtAnswer(http.StatusInternalServerError))
			id, _ := c.CreateWebhook(apptest.AdminKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"health.x"}, "max_retries": 0})
			want := map[string]string{"disable": "0", "degraded": "0", "recovered": "0", "retries_exhausted": "0"}
			if got := healthSignalCounts(t, c); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("signals before any attempt: %v, want %v", got, want)
			}

			for range 10 {
				rtPublish(t, c, "health.x")
			}
			// Every outcome is counted once all ten deliveries are.
			var got map[string]string
			apptest.Eventually(t, rtWait, "ten deliveries counted as retries exhausted", func() bool {
				got = healthSignalCounts(t, c)
				return got["retries_exhausted"] == "10"
			})
			want = map[string]string{"disable": "1", "degraded": "1", "recovered": "0", "retries_exhausted": "10"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("signals after ten failures: %v, want %v", got, want)
			}
			if wh := rtWebhook(t, c, id); wh["is_active"] != false {
				t.Fatalf("is_active = %v after ten failures, want false", wh["is_active"])
			}

			ep.SetRespond(nil) // 200 from now on
			if r := c.Admin("PUT", "/v1/webhooks/"+id+"/activate", nil); r.Status != http.StatusOK {
				t.Fatalf("activate: %d %s", r.Status, r.Body)
			}
			rtPublish(t, c, "health.x")
			apptest.Eventually(t, rtWait, "the first success counted as recovered", func() bool {
				got = healthSignalCounts(t, c)
				return got["recovered"] == "1"
			})
			want = map[string]string{"disable": "1", "degraded": "1", "recovered": "1", "retries_exhausted": "10"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("signals after the first success: %v, want %v", got, want)
			}
		})
	}
}
