package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"carrier/internal/dest"
	"carrier/internal/store"
)

func job(file, deliveryID string, data string) store.Job {
	return store.Job{
		Delivery: store.Delivery{ID: deliveryID},
		Event: store.Event{
			ID: "evt-" + deliveryID, Type: "captcha.solved", Subject: "task-42",
			Data:       json.RawMessage(data),
			Attributes: map[string]string{"status": "solved"},
			CreatedAt:  time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("X", 3600)),
		},
		Subscription: store.Subscription{ID: "sub-1", ProjectID: "proj-1", Name: "audit", Kind: "log",
			Destination: json.RawMessage(`{"file":"` + file + `"}`)},
	}
}

// readLines returns the complete lines of a file and whatever follows the
// last newline.
func readLines(t *testing.T, path string) (lines []string, tail string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "\n")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

func TestParseConfig(t *testing.T) {
	good := []string{`{"file":"audit.jsonl"}`, `{"file":"a"}`, `{"file":"A-b_c.1.log"}`, `{"file":"` + strings.Repeat("x", 128) + `"}`}
	for _, raw := range good {
		if _, err := ParseConfig(json.RawMessage(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	bad := map[string]string{
		`{}`:                          "file",
		`null`:                        "file",
		`{"file":""}`:                 "file",
		`{"file":"../etc/passwd"}`:    "file",
		`{"file":".."}`:               "file",
		`{"file":"."}`:                "file",
		`{"file":".hidden"}`:          "file",
		`{"file":"a..b"}`:             "file",
		`{"file":"/etc/passwd"}`:      "file",
		`{"file":"logs/audit.jsonl"}`: "file",
		`{"file":"..\\x"}`:            "file",
		`{"file":"a\\b"}`:             "file",
		`{"file":"a b"}`:              "file",
		`{"file":"a\u0000b"}`:         "file",
		`{"file":"caf\u00e9"}`:        "file",
		`{"file":"` + strings.Repeat("x", 129) + `"}`: "file",
		`{"file":5}`:                 "file",
		`{"file":"a","path":"/tmp"}`: "path",
		`[1]`:                        "destination",
	}
	for raw, field := range bad {
		_, err := ParseConfig(json.RawMessage(raw))
		var fe *dest.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: want a FieldError, got %v", raw, err)
			continue
		}
		if fe.Field != field {
			t.Errorf("%s: field %q (%s), want %q", raw, fe.Field, fe.Message, field)
		}
	}
}

func TestRedactKeepsSettings(t *testing.T) {
	raw := json.RawMessage(`{"file":"audit.jsonl"}`)
	if got := Redact(raw); string(got) != string(raw) {
		t.Fatalf("Redact = %s", got)
	}
}

func TestSendWritesLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "nested")
	s := &Sender{Dir: dir}
	defer s.Close()
	res := s.Send(context.Background(), job("audit.jsonl", "dlv-1", `{ "task_id": "42",
		"code": "03AGdBq" }`), time.Now())
	if !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	path := filepath.Join(dir, "proj-1", "audit.jsonl")
	lines, tail := readLines(t, path)
	if len(lines) != 1 || tail != "" {
		t.Fatalf("lines %q tail %q", lines, tail)
	}
	want := `{"delivery_id":"dlv-1","event_id":"evt-dlv-1","type":"captcha.solved","subject":"task-42",` +
		`"time":"2026-01-02T02:04:05.678Z","project_id":"proj-1","subscription_id":"sub-1",` +
		`"attributes":{"status":"solved"},"data":{"task_id":"42","code":"03AGdBq"}}`
	if lines[0] != want {
		t.Fatalf("line\n%s\nwant\n%s", lines[0], want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", dst.Mode().Perm())
	}

	// Empty data and attributes still give valid JSON.
	j := job("audit.jsonl", "dlv-2", "")
	j.Event.Attributes = nil
	if res := s.Send(context.Background(), j, time.Now()); !res.Delivered {
		t.Fatalf("not delivered: %+v", res)
	}
	lines, _ = readLines(t, path)
	if !strings.Contains(lines[1], `"attributes":{},"data":null`) {
		t.Fatalf("second line %s", lines[1])
	}
}

func TestConcurrentSendsWriteWholeLines(t *testing.T) {
	dir := t.TempDir()
	s := &Sender{Dir: dir}
	defer s.Close()
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				file := "a.jsonl"
				if i%3 == 0 {
					file = "b.jsonl"
				}
				// Lines of different lengths, some larger than a page.
				data := fmt.Sprintf(`{"pad":%q}`, strings.Repeat(string(rune('a'+w)), (i*997)%9000))
				id := fmt.Sprintf("w%d-%d", w, i)
				if res := s.Send(context.Background(), job(file, id, data), time.Now()); !res.Delivered {
					t.Errorf("%s: %+v", id, res)
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, name := range []string{"a.jsonl", "b.jsonl"} {
		lines, tail := readLines(t, filepath.Join(dir, "proj-1", name))
		if tail != "" {
			t.Fatalf("%s ends without a newline", name)
		}
		for _, l := range lines {
			var v Line
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("%s: line does not parse: %v", name, err)
			}
			var d struct{ Pad string }
			json.Unmarshal(v.Data, &d)
			if strings.Trim(d.Pad, d.Pad[:min(1, len(d.Pad))]) != "" {
				t.Fatalf("interleaved line: %.80s", l)
			}
			if seen[v.DeliveryID] {
				t.Fatalf("duplicate %s", v.DeliveryID)
			}
			seen[v.DeliveryID] = true
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d lines, want %d", len(seen), workers*each)
	}
}

func TestTornTailIsTruncatedOnOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "proj-1", "audit.jsonl")
	os.Mkdir(filepath.Dir(path), 0o700)
	whole := `{"delivery_id":"old"}` + "\n"
	if err := os.WriteFile(path, []byte(whole+`{"delivery_id":"torn","da`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sender{Dir: dir}
	defer s.Close()
	if res := s.Send(context.Background(), job("audit.jsonl", "new", `1`), time.Now()); !res.Delivered {
		t.Fatalf("%+v", res)
	}
	lines, tail := readLines(t, path)
	if tail != "" || len(lines) != 2 || lines[0] != strings.TrimSpace(whole) || !strings.Contains(lines[1], `"delivery_id":"new"`) {
		t.Fatalf("lines %q tail %q", lines, tail)
	}

	// A file that is nothing but a torn line is emptied.
	if err := os.WriteFile(filepath.Join(dir, "proj-1", "only.jsonl"), bytes.Repeat([]byte("x"), 100_000), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := s.Send(context.Background(), job("only.jsonl", "n", `1`), time.Now()); !res.Delivered {
		t.Fatalf("%+v", res)
	}
	lines, tail = readLines(t, filepath.Join(dir, "proj-1", "only.jsonl"))
	if tail != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], `{"delivery_id":"n"`) {
		t.Fatalf("lines %q tail %q", lines, tail)
	}
}

func TestCannotEscapeDirectory(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "logs")
	os.Mkdir(dir, 0o700)
	// A settings value that bypassed validation is still refused.
	s := &Sender{Dir: dir}
	defer s.Close()
	for _, name := range []string{"../escape.jsonl", "/tmp/x", ".."} {
		j := job("x", "d", `1`)
		j.Subscription.Destination, _ = json.Marshal(map[string]string{"file": name})
		res := s.Send(context.Background(), j, time.Now())
		if res.Delivered || res.Retryable || res.ErrorCode != "invalid_settings" {
			t.Errorf("%q: %+v", name, res)
		}
	}
	// A symlink planted in the directory cannot lead out of it.
	outside := filepath.Join(base, "outside.jsonl")
	os.Mkdir(filepath.Join(dir, "proj-1"), 0o700)
	if err := os.Symlink(outside, filepath.Join(dir, "proj-1", "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	res := s.Send(context.Background(), job("link.jsonl", "d", `1`), time.Now())
	if res.Delivered {
		t.Fatalf("wrote through a symlink out of the directory: %+v", res)
	}
	if _, err := os.Stat(outside); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file outside the directory exists: %v", err)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 {
		t.Fatalf("base holds %d entries", len(entries))
	}
}

func TestErrorsAreRetryable(t *testing.T) {
	base := t.TempDir()
	// The directory is a regular file: nothing can be created in it.
	notDir := filepath.Join(base, "file")
	os.WriteFile(notDir, nil, 0o600)
	s := &Sender{Dir: notDir}
	res := s.Send(context.Background(), job("a.jsonl", "d", `1`), time.Now())
	if res.Delivered || !res.Retryable || res.ErrorCode != "not_a_directory" || !strings.Contains(res.ErrorMessage, "a.jsonl") {
		t.Fatalf("%+v", res)
	}

	if os.Geteuid() != 0 {
		ro := filepath.Join(base, "ro")
		os.Mkdir(ro, 0o500)
		s := &Sender{Dir: ro}
		res := s.Send(context.Background(), job("a.jsonl", "d", `1`), time.Now())
		if !res.Retryable || res.ErrorCode != "permission_denied" {
			t.Fatalf("%+v", res)
		}
	}

	s = &Sender{}
	if res := s.Send(context.Background(), job("a.jsonl", "d", `1`), time.Now()); res.Delivered || res.ErrorCode != "log_dir_unset" {
		t.Fatalf("%+v", res)
	}

	// A file the next send cannot write to (disk full, permission, ...) is
	// reported as retryable with a code that says why.
	for err, code := range map[error]string{
		syscall.ENOSPC: "disk_full", syscall.EACCES: "permission_denied", syscall.EPERM: "permission_denied",
		syscall.EROFS: "read_only_filesystem", syscall.EDQUOT: "quota_exceeded", syscall.EIO: "io_error",
	} {
		wrapped := &fs.PathError{Op: "write", Path: "/x", Err: err}
		if got := ErrorCode(wrapped); got != code {
			t.Errorf("%v: %s, want %s", err, got, code)
		}
	}
}

func TestFailedWriteKeepsHandle(t *testing.T) {
	// /dev/full fails every write with ENOSPC, which exercises the
	// error path of a shared handle without filling a disk.
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	lf := &file{f: f}
	_, werr := lf.append([]byte("{}\n"))
	if !errors.Is(werr, syscall.ENOSPC) || ErrorCode(werr) != "disk_full" {
		t.Fatalf("append: %v (%s)", werr, ErrorCode(werr))
	}
	if lf.broken || lf.size != 0 {
		t.Fatalf("handle after a failed write: broken %v size %d", lf.broken, lf.size)
	}
	f.Close()
}

// TestKill9 re-runs this test binary as a child that appends deliveries in a
// loop (printing each id once Send has reported it delivered), kills it with
// SIGKILL in the middle, and checks that every reported delivery is a whole
// line and that the file holds nothing but whole JSON lines once reopened.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "proj-1", "audit.jsonl")
	reported := map[string]bool{}
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(), "CARRIER_LOGFILE_CHILD_DIR="+dir, fmt.Sprintf("CARRIER_LOGFILE_CHILD_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		n, killed := 0, false
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break // EOF once the child is gone; a fragment without newline is not a report
			}
			if id, ok := strings.CutPrefix(strings.TrimSpace(l), "delivered "); ok {
				reported[id] = true
				n++
			}
			if n == 100 && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v (reported %d)", round, err, n)
		}

		// Before any repair: every newline-terminated line is whole.
		lines, tail := readLines(t, path)
		inFile := map[string]bool{}
		for i, l := range lines {
			var v Line
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("round %d: line %d of %d does not parse (%v): %.100s", round, i, len(lines), err, l)
			}
			inFile[v.DeliveryID] = true
		}
		for id := range reported {
			if !inFile[id] {
				t.Fatalf("round %d: delivery %s was reported delivered but is not a whole line in the file", round, id)
			}
		}
		t.Logf("round %d: %d reported, %d lines, torn tail of %d bytes", round, n, len(lines), len(tail))
		if round == 0 && tail == "" {
			// A kill rarely lands inside write(2); leave a torn line as a
			// crash during a write would, for the next child to repair.
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(`{"delivery_id":"torn","da`)
			f.Close()
		}
	}

	// Reopening repairs a torn tail: every line parses, the new one last.
	s := &Sender{Dir: dir}
	defer s.Close()
	if res := s.Send(context.Background(), job("audit.jsonl", "after", `{}`), time.Now()); !res.Delivered {
		t.Fatalf("%+v", res)
	}
	lines, tail := readLines(t, path)
	if tail != "" {
		t.Fatalf("torn tail after reopen: %q", tail)
	}
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line %d does not parse: %.100s", i, l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], `"delivery_id":"after"`) {
		t.Fatalf("last line %.100s", lines[len(lines)-1])
	}
}

// TestKill9Child is the child of TestKill9; it does nothing in a normal run.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv("CARRIER_LOGFILE_CHILD_DIR")
	if dir == "" {
		t.Skip("only run as the child of TestKill9")
	}
	round := os.Getenv("CARRIER_LOGFILE_CHILD_ROUND")
	s := &Sender{Dir: dir}
	var out sync.Mutex
	deadline := time.Now().Add(30 * time.Second) // in case the parent never kills us
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				// Some lines span many pages, so a kill can land inside a write.
				size := 100
				if i%4 == 0 {
					size = 300_000
				}
				data := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("z", size))
				res := s.Send(context.Background(), job("audit.jsonl", id, data), time.Now())
				if !res.Delivered {
					fmt.Fprintf(os.Stderr, "child: %s: %+v\n", id, res)
					os.Exit(3)
				}
				out.Lock()
				os.Stdout.WriteString("delivered " + id + "\n")
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(4) // never killed: the parent reports the missing SIGKILL
}

func TestIdleHandlesAreClosedBeyondTheLimit(t *testing.T) {
	dir := t.TempDir()
	s := &Sender{Dir: dir, MaxOpenFiles: 2}
	defer s.Close()
	for round := range 2 {
		for i := range 5 {
			name := fmt.Sprintf("f%d.jsonl", i)
			if res := s.Send(context.Background(), job(name, fmt.Sprintf("%d-%d", round, i), `1`), time.Now()); !res.Delivered {
				t.Fatalf("%+v", res)
			}
		}
	}
	s.mu.Lock()
	open := len(s.files)
	s.mu.Unlock()
	if open > 2 {
		t.Fatalf("%d handles open, limit 2", open)
	}
	for i := range 5 {
		lines, tail := readLines(t, filepath.Join(dir, "proj-1", fmt.Sprintf("f%d.jsonl", i)))
		if len(lines) != 2 || tail != "" {
			t.Fatalf("f%d: %q %q", i, lines, tail)
		}
	}
}

// TestProjectsHaveTheirOwnFiles: two projects naming the same file write to
// different files, so one project cannot append to another's audit trail,
// and a job without a project (or with one that is not a plain name) writes
// nowhere.
func TestProjectsHaveTheirOwnFiles(t *testing.T) {
	dir := t.TempDir()
	s := &Sender{Dir: dir}
	defer s.Close()
	victim, attacker := job("audit.jsonl", "v-1", `{"who":"victim"}`), job("audit.jsonl", "a-1", `{"who":"attacker"}`)
	attacker.Subscription.ProjectID = "proj-2"
	for _, j := range []store.Job{victim, attacker} {
		if res := s.Send(context.Background(), j, time.Now()); !res.Delivered {
			t.Fatalf("%s: %+v", j.Delivery.ID, res)
		}
	}
	for project, want := range map[string]string{"proj-1": "v-1", "proj-2": "a-1"} {
		lines, _ := readLines(t, Path(dir, project, "audit.jsonl"))
		if len(lines) != 1 || !strings.Contains(lines[0], `"delivery_id":"`+want+`"`) || !strings.Contains(lines[0], `"project_id":"`+project+`"`) {
			t.Errorf("%s's file holds %q, want only %s", project, lines, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file outside the project directories: %v", err)
	}
	for _, project := range []string{"", "..", "a/b"} {
		j := job("audit.jsonl", "x", `1`)
		j.Subscription.ProjectID, j.Event.ProjectID = project, ""
		if res := s.Send(context.Background(), j, time.Now()); res.Delivered || res.ErrorCode != "invalid_settings" {
			t.Errorf("project %q: %+v", project, res)
		}
	}
}
