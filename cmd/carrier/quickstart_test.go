package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README marks each shell block of its Quickstart with the terminal it
// is typed in (<!-- quickstart:terminal-N -->), or as run by CI
// (<!-- quickstart:ci -->), so that TestQuickstart can run it as written.
var quickstartMarker = regexp.MustCompile(`^<!-- quickstart:(terminal-\d+|ci) -->$`)

// quickstartBudget is the promise the README makes: a first verified
// delivery in under a minute. The whole walkthrough must fit in it.
const quickstartBudget = 60 * time.Second

// envInNetns tells a re-executed test binary that it already runs in its own
// network namespace.
const envInNetns = "CARRIER_TEST_QUICKSTART_IN_NETNS"

// quickstart is the Quickstart section's shell blocks: what is typed in each
// terminal, in order, and the blocks CI runs.
type quickstart struct {
	terminals map[string]string
	ci        []string
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// readQuickstart extracts the Quickstart section's shell blocks from the
// README, failing on a block that carries no marker: every command a
// newcomer is told to type must be run by a test or by CI.
func readQuickstart(t *testing.T, root string) quickstart {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## Quickstart\n")
	if start < 0 {
		t.Fatal("README has no Quickstart section")
	}
	section := text[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	q := quickstart{terminals: map[string]string{}}
	lines := strings.Split(section, "\n")
	marker := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := quickstartMarker.FindStringSubmatch(line); m != nil {
			marker = m[1]
			continue
		}
		if !strings.HasPrefix(line, "```") {
			if strings.TrimSpace(line) != "" {
				marker = ""
			}
			continue
		}
		lang := strings.TrimPrefix(line, "```")
		var block []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			block = append(block, lines[i])
		}
		body := strings.Join(block, "\n") + "\n"
		switch {
		case lang != "sh" && lang != "bash" && lang != "":
			// Output shown to the reader (```text, ```json) is not typed.
		case lang == "" && marker == "":
			t.Errorf("README Quickstart has a code block without a language; mark what the reader types as ```sh:\n%s", body)
		case marker == "":
			t.Errorf("README Quickstart has a shell block without a <!-- quickstart:… --> marker, so no test runs it:\n%s", body)
		case marker == "ci":
			q.ci = append(q.ci, body)
		default:
			q.terminals[marker] += body
		}
		marker = ""
	}
	return q
}

// TestQuickstartBlocksAreAllRun checks the README's side of the bargain:
// every shell block of the Quickstart is one TestQuickstart runs, or the test
// command that .ci/run runs.
func TestQuickstartBlocksAreAllRun(t *testing.T) {
	root := moduleRoot(t)
	q := readQuickstart(t, root)
	var names []string
	for name := range q.terminals {
		names = append(names, name)
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "terminal-1 terminal-2 terminal-3" {
		t.Errorf("quickstart terminals = %q, want terminal-1 (Carrier), terminal-2 (the sink), terminal-3 (publishing)", got)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range q.ci {
		if strings.TrimSpace(block) != "go test ./..." {
			t.Errorf("a quickstart:ci block must be the test command .ci/run runs, got:\n%s", block)
		}
		// .ci/run may split ./... in two (the end-to-end packages alone, the
		// rest beside each other): both halves are go test over go list ./...
		if !regexp.MustCompile(`(?m)^go test .*\./\.\.\.`).Match(ci) {
			t.Errorf(".ci/run does not run go test ./...")
		}
	}
}

// output is a terminal's screen: what its commands printed so far.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// terminal is one shell of the walkthrough.
type terminal struct {
	name   string
	cmd    *exec.Cmd
	screen *output
	done   chan struct{}
	err    error // set when done is closed
}

// openTerminal runs script in its own bash, as if typed into a fresh
// terminal at the repository root, stopping on the first failing command.
func openTerminal(t *testing.T, name, script, root string, env []string) *terminal {
	t.Helper()
	term := &terminal{name: name, screen: &output{}, done: make(chan struct{})}
	term.cmd = exec.Command("bash", "-e", "-u", "-o", "pipefail", "-c", script)
	term.cmd.Dir = root
	term.cmd.Env = env
	term.cmd.Stdout, term.cmd.Stderr = term.screen, term.screen
	// Its own process group, so that closing the terminal stops `go run`
	// and the program it started, as closing a real terminal would.
	term.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := term.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		term.err = term.cmd.Wait()
		close(term.done)
	}()
	t.Cleanup(func() { term.close(t) })
	return term
}

// close stops what still runs in the terminal: SIGTERM (Ctrl-C's graceful
// cousin) to its process group, SIGKILL after 10 s.
func (term *terminal) close(t *testing.T) {
	defer func() { t.Logf("%s:\n%s", term.name, term.screen.String()) }()
	select {
	case <-term.done:
		return
	default:
	}
	pgid := term.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-term.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10s of SIGTERM; killing it", term.name)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-term.done
	}
}

// waitFor polls until cond holds on the terminal's screen, failing at
// deadline or when the terminal's commands end first.
func (term *terminal) waitFor(t *testing.T, deadline time.Time, what string, cond func(screen string) bool) {
	t.Helper()
	for {
		if cond(term.screen.String()) {
			return
		}
		select {
		case <-term.done:
			if cond(term.screen.String()) {
				return
			}
			t.Fatalf("%s ended (%v) before %s; it shows:\n%s", term.name, term.err, what, term.screen.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within the quickstart's %v; it shows:\n%s", term.name, what, quickstartBudget, term.screen.String())
		}
	}
}

// deliveryLine is the line the sink prints first for each request.
var deliveryLine = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d (\S+) (\S+)  event (\S+)  webhook-id (\S+)$`)

// verdicts returns, for each event type the sink printed, the verdicts of
// its deliveries.
func verdicts(screen string) map[string][]string {
	out := map[string][]string{}
	for _, block := range strings.Split(screen, "\n\n") {
		m := deliveryLine.FindStringSubmatch(block)
		if m == nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
		out[m[3]] = append(out[m[3]], lines[len(lines)-1])
	}
	return out
}

func verified(screen, eventType string) bool {
	for _, v := range verdicts(screen)[eventType] {
		if v == "signature verified" {
			return true
		}
	}
	return false
}

// TestQuickstart follows the README's Quickstart literally: each terminal's
// blocks run in their own bash at the repository root, with a fresh
// temporary directory and no CARRIER_* variable of the caller, and the
// sink must print "signature verified" for the published event and for the
// task's result, all within a minute.
//
// It runs in a network namespace of its own when the machine allows one
// (unshare): its loopback has no other servers, so the README's ports 8080
// and 9000 are free however busy the machine is, and it has no route
// anywhere else, which proves the walkthrough needs no network.
func TestQuickstart(t *testing.T) {
	root := moduleRoot(t)
	q := readQuickstart(t, root)
	if len(q.terminals) == 0 {
		t.Fatal("README Quickstart has no terminal blocks")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the quickstart runs `go run`, and go is not on PATH: %v", err)
	}
	if os.Getenv(envInNetns) != "1" {
		warmBuildCache(t, root)
		isolated, err := networkNamespace()
		if err == nil {
			runInNetworkNamespace(t, isolated)
			return
		}
		t.Logf("no network namespace (%v): running on this machine's loopback", err)
		for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:9000"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Skipf("the quickstart needs %s, which is in use here, and no network namespace is available: %v", addr, err)
			}
			ln.Close()
		}
	}
	followQuickstart(t, root, q)
}

// warmBuildCache builds what the quickstart's `go run` builds, outside its
// one-minute budget: a fresh clone compiles SQLite once, which is not what
// the promise is about (and `go run` caches what it links).
func warmBuildCache(t *testing.T, root string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/carrier", "version")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./cmd/carrier version: %v\n%s", err, out)
	}
}

// networkNamespace returns the command prefix that runs a program in a new
// network namespace with its loopback up, if this machine allows it.
func networkNamespace() ([]string, error) {
	prefix := []string{"unshare", "--net", "--map-root-user", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`}
	probe := exec.Command(prefix[0], append(prefix[1:], "true")...)
	if out, err := probe.CombinedOutput(); err != nil {
		if out = bytes.TrimSpace(out); len(out) > 0 {
			return nil, fmt.Errorf("%v: %s", err, out)
		}
		return nil, err
	}
	return prefix, nil
}

// runInNetworkNamespace runs this test again, alone, inside a new network
// namespace, and reports its outcome.
func runInNetworkNamespace(t *testing.T, prefix []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append(append([]string{}, prefix[1:]...), os.Args[0], "-test.run=^TestQuickstart$", "-test.v", "-test.count=1", "-test.timeout=4m")
	cmd := exec.CommandContext(ctx, prefix[0], args...)
	cmd.Env = append(os.Environ(), envInNetns+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Fatalf("the quickstart failed in its network namespace (exit %d)", exit.ExitCode())
	case err != nil:
		t.Fatalf("run the quickstart in a network namespace: %v", err)
	case !bytes.Contains(out, []byte("--- PASS: TestQuickstart")):
		t.Fatalf("the quickstart did not pass in its network namespace")
	}
}

// followQuickstart is the walkthrough itself, as a newcomer would do it:
// start terminal 1 and wait for Carrier to listen, start terminal 2 and wait
// for the sink, then type terminal 3's commands and watch terminal 2.
func followQuickstart(t *testing.T, root string, q quickstart) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CARRIER_") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	// mktemp -d (the throwaway data directory) and go run's work files land
	// in the test's own directory, removed when it ends.
	env = append(env, "TMPDIR="+t.TempDir())

	began := time.Now()
	deadline := began.Add(quickstartBudget)
	carrier := openTerminal(t, "terminal 1 (Carrier)", q.terminals["terminal-1"], root, env)
	carrier.waitFor(t, deadline, "listening line", func(s string) bool {
		return strings.Contains(s, "listening on http://127.0.0.1:8080")
	})
	if s := carrier.screen.String(); !strings.Contains(s, "DEVELOPMENT MODE") {
		t.Errorf("terminal 1 shows no development-mode banner:\n%s", s)
	}
	sink := openTerminal(t, "terminal 2 (sink)", q.terminals["terminal-2"], root, env)
	sink.waitFor(t, deadline, "sink listening with a secret", func(s string) bool {
		return strings.Contains(s, "Sink listening on http://127.0.0.1:9000, checking signatures")
	})
	publisher := openTerminal(t, "terminal 3 (publishing)", q.terminals["terminal-3"], root, env)
	sink.waitFor(t, deadline, `"signature verified" for scrape.completed`, func(s string) bool { return verified(s, "scrape.completed") })
	t.Logf("first verified delivery %v after starting Carrier", time.Since(began).Round(100*time.Millisecond))

	select {
	case <-publisher.done:
	case <-time.After(time.Until(deadline)):
		t.Fatalf("terminal 3's commands did not finish within %v:\n%s", quickstartBudget, publisher.screen.String())
	}
	if publisher.err != nil {
		t.Fatalf("a command in terminal 3 failed (%v):\n%s", publisher.err, publisher.screen.String())
	}
	if s := publisher.screen.String(); !strings.Contains(s, `"duplicate":false`) {
		t.Errorf("terminal 3: the publish was not answered as a new event:\n%s", s)
	}
	sink.waitFor(t, deadline, `"signature verified" for task.solved`, func(s string) bool { return verified(s, "task.solved") })
	for eventType, vs := range verdicts(sink.screen.String()) {
		for _, v := range vs {
			if v != "signature verified" {
				t.Errorf("the sink printed %q for a %s delivery", v, eventType)
			}
		}
	}
	t.Logf("quickstart followed in %v", time.Since(began).Round(100*time.Millisecond))
}
