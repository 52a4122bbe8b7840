package bench

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCeiling runs the loopback ceiling for a fraction of a second.
func TestCeiling(t *testing.T) {
	c, err := measureCeiling(context.Background(), 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests == 0 || c.Errors != 0 || c.PerSec <= 0 || c.ElapsedS <= 0 || c.CPU.ProcessS <= 0 || c.CPU.PerThousand <= 0 {
		t.Errorf("ceiling: %+v", c)
	}
	if got := ofCeiling(c.PerSec/2, &c); got != " (50.0% of the loopback ceiling)" {
		t.Errorf("ofCeiling = %q", got)
	}
	if got := ofCeiling(1, nil); got != "" {
		t.Errorf("ofCeiling without a ceiling = %q", got)
	}
}

// TestProcessCPU checks both ways of reading CPU time against work done
// here: it spins until getrusage has seen 100 ms more (bounded by a generous
// deadline, not timed), then /proc/self/stat must have seen most of it too.
func TestProcessCPU(t *testing.T) {
	before := processCPU()
	self, _, ok := pidCPU(os.Getpid())
	if !ok {
		t.Fatal("pidCPU of this process: not found")
	}
	x := 0
	for deadline := time.Now().Add(30 * time.Second); processCPU()-before < 100*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("getrusage saw only %v of CPU in 30s of spinning", processCPU()-before)
		}
		for i := 0; i < 100000; i++ {
			x += i
		}
	}
	_ = x
	self2, ppid, _ := pidCPU(os.Getpid())
	// /proc counts in 10 ms ticks, and other goroutines may add to either.
	if d := self2 - self; d < 50*time.Millisecond {
		t.Errorf("/proc/self/stat saw %v of CPU while getrusage saw 100ms", d)
	}
	if ppid != os.Getppid() {
		t.Errorf("ppid %d, want %d", ppid, os.Getppid())
	}
	if _, _, ok := pidCPU(-1); ok {
		t.Error("pidCPU(-1) found a process")
	}
	// A process that ended in between is dropped; a new one counts in full.
	d := dbDelta(map[int]time.Duration{1: time.Second, 2: time.Second}, map[int]time.Duration{1: 3 * time.Second, 3: time.Second})
	if d != 3*time.Second {
		t.Errorf("dbDelta = %v, want 3s", d)
	}
	if c := perThousand(2, 4000); c != 0.5 {
		t.Errorf("perThousand(2s, 4000) = %v", c)
	}
}

// TestBackendCPU finds this test's own backend by its application_name on
// the PostgreSQL of CARRIER_TEST_DATABASE_URL, and reads the settings.
func TestBackendCPU(t *testing.T) {
	base := os.Getenv("CARRIER_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("CARRIER_TEST_DATABASE_URL is not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "carrier_bench_test_"+randomHex(4))
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var n, pid int
	if err := db.QueryRowContext(ctx, `SELECT count(*), pg_backend_pid() FROM generate_series(1, 300000)`).Scan(&n, &pid); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := pidCPU(pid); !ok {
		t.Skipf("backend pid %d is not in this host's /proc: the server runs elsewhere", pid)
	}
	b := backendCPU{db: db, appName: q.Get("application_name")}
	got := b.sample(ctx)
	if _, ok := got[pid]; !ok || len(got) != 1 {
		t.Fatalf("backends of %s: %v, want exactly pid %d", b.appName, got, pid)
	}
	if !strings.Contains(b.describe(), b.appName) {
		t.Errorf("describe: %s", b.describe())
	}
	settings, err := pgSettings(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(settings) != len(pgSettingNames) || settings[0].Name != "server_version" || settings[0].Value == "" {
		t.Errorf("settings: %v", settings)
	}
}

// TestLoadGenSpec checks that the load generator refuses orders it cannot
// bound, before it sends anything.
func TestLoadGenSpec(t *testing.T) {
	for _, spec := range []string{
		`not json`,
		`{}`,
		`{"url":"http://127.0.0.1:1","concurrency":1,"duration_ns":1000000,"max_events":0}`,
		`{"url":"http://127.0.0.1:1","concurrency":1,"duration_ns":7200000000000,"max_events":1}`,
		`{"url":"http://127.0.0.1:1","concurrency":1,"duration_ns":1000000,"max_events":1,"rate":-1}`,
	} {
		var out bytes.Buffer
		if err := LoadGen(context.Background(), strings.NewReader(spec), &out); err == nil {
			t.Errorf("LoadGen(%s) succeeded: %s", spec, out.String())
		}
	}
}

// TestPrivatePostgres starts and removes a private instance. It needs root
// (initdb runs as the postgres user), so it runs only when asked:
// CARRIER_BENCH_TEST_PRIVATE_POSTGRES=1.
func TestPrivatePostgres(t *testing.T) {
	if os.Getenv("CARRIER_BENCH_TEST_PRIVATE_POSTGRES") != "1" {
		t.Skip("set CARRIER_BENCH_TEST_PRIVATE_POSTGRES=1 to initdb a private instance")
	}
	ctx := context.Background()
	p, err := startPrivatePostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := p.dir
	defer func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", dir, err)
		}
	}()
	db, err := sql.Open("pgx", p.url())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	settings, err := pgSettings(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"autovacuum": "on", "synchronous_commit": "on", "fsync": "on", "shared_buffers": "512MB"}
	for _, s := range settings {
		if w, ok := want[s.Name]; ok && s.Value != w {
			t.Errorf("%s = %s, want %s", s.Name, s.Value, w)
		}
	}
	if got := (instanceCPU{postmaster: p.postmaster}).sample(ctx); len(got) < 3 {
		t.Errorf("instance processes: %v, want the postmaster and its background workers", got)
	}
}
