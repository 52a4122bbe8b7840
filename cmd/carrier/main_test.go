package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envRunMain makes the test binary run main() instead of the tests, so that
// the tests run the real command line (exit codes, stdout, stderr) without
// building the binary first.
const envRunMain = "CARRIER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testKey is an admin key long enough for CARRIER_API_KEY.
const testKey = "ck_cmd_test_admin_key_0123"

// carrierCommand returns the command `carrier args…` run by this test binary,
// with no CARRIER_* variable from the caller's environment (a developer's
// CARRIER_DATABASE_URL must not change what the test sees) but those in env.
func carrierCommand(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CARRIER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envRunMain+"=1")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runCarrier runs a command that ends by itself, within 60 s.
func runCarrier(t *testing.T, env []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := carrierCommand(ctx, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		exitCode = exit.ExitCode()
	default:
		t.Fatalf("carrier %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("carrier %v did not end within 60s", args)
	}
	return out.String(), errOut.String(), exitCode
}

// TestHelpExitsZeroAndPrintsUsage checks every way of asking for help: the
// usage on stdout, nothing on stderr, exit status 0.
func TestHelpExitsZeroAndPrintsUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "carrier sink [flags]"},
		{[]string{"-h"}, "carrier serve [flags]"},
		{[]string{"help"}, "carrier serve [flags]"},
		{[]string{"serve", "--help"}, "-dev"},
		{[]string{"serve", "-h"}, "CARRIER_API_KEY"},
		{[]string{"migrate", "--help"}, "Usage: carrier migrate"},
		{[]string{"bench", "--help"}, "-events"},
		{[]string{"chaos", "--help"}, "-soak"},
		{[]string{"simulate", "--help"}, "-lost-pingbacks"},
		{[]string{"sink", "--help"}, "CARRIER_SINK_SECRET"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runCarrier(t, nil, tt.args...)
		if code != 0 {
			t.Errorf("carrier %s: exit %d, want 0 (stderr %q)", strings.Join(tt.args, " "), code, stderr)
		}
		if !strings.Contains(stdout, tt.want) {
			t.Errorf("carrier %s: stdout lacks %q:\n%s", strings.Join(tt.args, " "), tt.want, stdout)
		}
		if stderr != "" {
			t.Errorf("carrier %s: stderr %q, want nothing", strings.Join(tt.args, " "), stderr)
		}
	}
	// A mistake is still an error, with the usage on stderr.
	stdout, stderr, code := runCarrier(t, nil, "serve", "--no-such-flag")
	if code == 0 || stdout != "" || !strings.Contains(stderr, "no-such-flag") || !strings.Contains(stderr, "Usage: carrier serve") {
		t.Errorf("carrier serve --no-such-flag: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// startedServe is a `carrier serve` running until the test ends.
type startedServe struct {
	addr   string // host:port it listens on
	output string // stdout up to and including the listening line
}

var listeningLine = regexp.MustCompile(`listening on http://(\S+)`)

// startServe runs `carrier serve` with args on a fresh data dir and a free
// loopback port, and returns once it prints where it listens.
func startServe(t *testing.T, env []string, args ...string) startedServe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)
	cmd := carrierCommand(ctx, append([]string{"CARRIER_API_KEY=" + testKey}, env...), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				t.Errorf("carrier serve stopped with %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("carrier serve did not stop within 30s of SIGTERM")
		}
		cancel()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		scan := bufio.NewScanner(stdout)
		for scan.Scan() {
			lines <- scan.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	var seen strings.Builder
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("carrier serve ended before listening; stdout:\n%s\nstderr:\n%s", seen.String(), stderr.String())
			}
			seen.WriteString(line + "\n")
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				// Keep draining stdout so that the process never blocks on it.
				go func() {
					for range lines {
					}
				}()
				return startedServe{addr: m[1], output: seen.String()}
			}
		case <-timeout:
			t.Fatalf("carrier serve printed no listening line within 30s; stdout:\n%s", seen.String())
		}
	}
}

// createLoopbackWebhook asks the running Carrier to subscribe a loopback URL
// and returns the HTTP status and body of the answer.
func createLoopbackWebhook(t *testing.T, addr string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/webhooks", strings.NewReader(
		`{"name":"local","webhook_url":"http://127.0.0.1:9000/hook","event_types":["never.sent"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeDevMode checks that --dev and CARRIER_DEV=true print the
// development-mode banner and let a loopback webhook be created, and that
// without them there is no banner and a loopback webhook is refused with a
// message naming the settings that allow it.
func TestServeDevMode(t *testing.T) {
	banner := []string{"DEVELOPMENT MODE (--dev / CARRIER_DEV=true)", "CARRIER_ALLOW_PRIVATE_NETWORKS=true", "Do not use development mode in production"}
	for _, start := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--dev", nil, []string{"--dev"}},
		{"CARRIER_DEV=true", []string{"CARRIER_DEV=true"}, nil},
	} {
		t.Run(start.name, func(t *testing.T) {
			s := startServe(t, start.env, start.args...)
			for _, want := range banner {
				if !strings.Contains(s.output, want) {
					t.Errorf("start output lacks %q:\n%s", want, s.output)
				}
			}
			if status, body := createLoopbackWebhook(t, s.addr); status != http.StatusCreated {
				t.Errorf("loopback webhook in development mode: %d %s", status, body)
			}
		})
	}
	t.Run("without", func(t *testing.T) {
		s := startServe(t, nil)
		if strings.Contains(s.output, "DEVELOPMENT MODE") {
			t.Errorf("banner printed without --dev:\n%s", s.output)
		}
		status, body := createLoopbackWebhook(t, s.addr)
		if status != http.StatusBadRequest || !strings.Contains(body, "url_not_allowed") ||
			!strings.Contains(body, "CARRIER_ALLOW_PRIVATE_NETWORKS=true") || !strings.Contains(body, "--dev") {
			t.Errorf("loopback webhook without --dev: %d %s", status, body)
		}
	})
}

// TestServeStartErrorsNameTheSetting checks that settings Carrier cannot
// start with stop it with exit status 1 and a message naming the setting and
// what to do: a short API key, a PostgreSQL server that is not there, a data
// directory that cannot be created.
func TestServeStartErrorsNameTheSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   []string
		args  []string
		wants []string
	}{
		{"short API key", []string{"CARRIER_API_KEY=too-short"}, []string{"--data-dir", t.TempDir()},
			[]string{"CARRIER_API_KEY", "at least 16 characters"}},
		{"unreachable PostgreSQL", nil, []string{"--database-url", "postgres://carrier@127.0.0.1:" + closedPort + "/carrier?sslmode=disable", "--data-dir", t.TempDir()},
			[]string{"cannot reach PostgreSQL at 127.0.0.1:" + closedPort, "CARRIER_DATABASE_URL", "server is running"}},
		{"data dir that cannot be created", nil, []string{"--data-dir", filepath.Join(notADir, "data")},
			[]string{"cannot create the data directory", "CARRIER_DATA_DIR"}},
	}
	for _, tt := range tests {
		for _, command := range []string{"serve", "migrate"} {
			args := append([]string{command, "--listen", "127.0.0.1:0"}, tt.args...)
			_, stderr, code := runCarrier(t, tt.env, args...)
			if code != 1 {
				t.Errorf("%s, %s: exit %d, want 1 (stderr %q)", tt.name, command, code, stderr)
			}
			for _, want := range tt.wants {
				if !strings.Contains(stderr, want) {
					t.Errorf("%s, %s: stderr lacks %q:\n%s", tt.name, command, want, stderr)
				}
			}
		}
	}
}

// TestSinkRefusesAnEmptySecret checks that an empty --secret or
// CARRIER_SINK_SECRET, which is what a failed command substitution gives,
// stops the sink instead of letting it run without checking signatures.
func TestSinkRefusesAnEmptySecret(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"sink", "--listen", "127.0.0.1:0", "--secret", ""}},
		{[]string{"CARRIER_SINK_SECRET="}, []string{"sink", "--listen", "127.0.0.1:0"}},
	} {
		_, stderr, code := runCarrier(t, tt.env, tt.args...)
		if code != 1 || !strings.Contains(stderr, "is empty") || !strings.Contains(stderr, "create answer") {
			t.Errorf("%v %v: exit %d, stderr %q", tt.env, tt.args, code, stderr)
		}
	}
	_, stderr, code := runCarrier(t, nil, "sink", "--listen", "127.0.0.1:0", "--secret", "not-a-secret")
	if code != 1 || !strings.Contains(stderr, "--secret") || !strings.Contains(stderr, "whsec_") {
		t.Errorf("malformed secret: exit %d, stderr %q", code, stderr)
	}
}
