package storetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envSkipProbe makes this test binary, run again by TestPostgresHalfIsASkip,
// run the probes below instead of skipping them.
const envSkipProbe = "CARRIER_STORETEST_SKIP_PROBE"

// TestPostgresHalfIsASkip runs the probes in a child process with
// CARRIER_TEST_DATABASE_URL unset and reads `go test -v` output: the
// PostgreSQL half of Engines and of Run must be a skipped subtest that names
// the variable, not a log line that leaves no trace in the results.
func TestPostgresHalfIsASkip(t *testing.T) {
	if os.Getenv(envSkipProbe) != "" {
		t.Skip("inside the probe process")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.v", "-test.count=1", "-test.run", "^TestProbe(Engines|Run)$")
	env := []string{envSkipProbe + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvDatabaseURL+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe process: %v\n%s", err, out)
	}
	for _, name := range []string{"TestProbeEngines", "TestProbeRun"} {
		if want := "--- SKIP: " + name + "/postgres"; !strings.Contains(string(out), want) {
			t.Errorf("no %q in the probe's output:\n%s", want, out)
		}
		// -v prints a subtest's skip message after its "=== RUN" line.
		_, rest, _ := strings.Cut(string(out), "=== RUN   "+name+"/postgres\n")
		if line, _, _ := strings.Cut(rest, "\n"); !strings.Contains(line, EnvDatabaseURL+" is not set") {
			t.Errorf("the skip of %s/postgres does not name %s: %q", name, EnvDatabaseURL, line)
		}
	}
	if !strings.Contains(string(out), "--- PASS: TestProbeRun/sqlite") {
		t.Errorf("the sqlite half of Run did not run:\n%s", out)
	}
}

func TestProbeEngines(t *testing.T) {
	if os.Getenv(envSkipProbe) == "" {
		t.Skip("run by TestPostgresHalfIsASkip")
	}
	if es := Engines(t); len(es) != 1 || es[0].Name != SQLite {
		t.Errorf("Engines without %s = %+v, want sqlite only", EnvDatabaseURL, es)
	}
}

func TestProbeRun(t *testing.T) {
	if os.Getenv(envSkipProbe) == "" {
		t.Skip("run by TestPostgresHalfIsASkip")
	}
	cases = cases[:1] // this process only: the first case stands for the suite
	Run(t)
}
