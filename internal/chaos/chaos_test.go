package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShortChaosRun is the CI form of `carrier chaos`: three nodes on a
// private PostgreSQL, every fault kind once, about a minute and a half of
// load, and no reconciliation violation.
func TestShortChaosRun(t *testing.T) {
	if os.Getenv("CARRIER_TEST_DATABASE_URL") == "" {
		t.Skip("CARRIER_TEST_DATABASE_URL is unset: PostgreSQL tests are not wanted (the chaos run starts a private PostgreSQL of its own with initdb)")
	}
	if _, err := PostgresBin(); err != nil {
		t.Skipf("no private PostgreSQL can be started: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the chaos run starts PostgreSQL as the postgres user with runuser, which needs root")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build carrier with: %v", err)
	}
	// Built without -race: three children under the race detector would not
	// keep up on two cores, and they are not what this test checks.
	bin := filepath.Join(t.TempDir(), "carrier")
	if out, err := exec.Command(gobin, "build", "-o", bin, "carrier/cmd/carrier").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := Run(ctx, Config{Binary: bin, Duration: 75 * time.Second, Rate: 50, Keys: 20, Gap: 2 * time.Second,
		Warmup: 5 * time.Second, Quiesce: 90 * time.Second, Log: &progress})
	if err != nil {
		t.Fatalf("chaos run: %v\n%s", err, progress.String())
	}
	var report strings.Builder
	rep.Print(&report, 0)
	t.Logf("%s%s", progress.String(), report.String())
	for _, kind := range AllFaults {
		if !slices.ContainsFunc(rep.Faults, func(f Fault) bool { return f.Kind == kind }) {
			t.Errorf("fault %s was never injected", kind)
		}
	}
	if got := rep.Violations(); len(got) > 0 {
		t.Errorf("violations: %v (files in %s)", got, rep.Dir)
	}
}
