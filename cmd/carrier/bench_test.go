package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchTiny runs `carrier bench` in a tiny form: the load-generator
// phases start this binary again as `carrier bench --loadgen`, so this
// checks that path end to end (the figures themselves are not checked:
// timing goals belong in benchmarks, not tests).
func TestBenchTiny(t *testing.T) {
	stdout, stderr, code := runCarrier(t, nil, "bench", "--json", "--events", "100", "--concurrency", "4", "--rate", "100",
		"--duration", "300ms", "--ceiling-duration", "200ms", "--paced-rate", "50", "--paced-duration", "300ms",
		"--combined-rate", "100", "--combined-duration", "300ms", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("carrier bench: exit %d\nstderr: %s", code, stderr)
	}
	var rep struct {
		Ceiling struct {
			PerSec float64 `json:"requests_per_s"`
		} `json:"loopback_ceiling"`
		Combined struct {
			Accepted  int64 `json:"accepted"`
			Delivered int64 `json:"delivered"`
			CPU       struct {
				LoadGenS float64 `json:"loadgen_s"`
			} `json:"cpu"`
		} `json:"combined"`
		Paced struct {
			Accepted int64 `json:"accepted"`
		} `json:"paced"`
	}
	if err := json.NewDecoder(strings.NewReader(stdout)).Decode(&rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	if rep.Ceiling.PerSec <= 0 || rep.Paced.Accepted != 15 || rep.Combined.Accepted == 0 ||
		rep.Combined.Delivered != rep.Combined.Accepted || rep.Combined.CPU.LoadGenS <= 0 {
		t.Errorf("report: %+v", rep)
	}
}
