package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Spool {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t *testing.T, s *Spool, kind, payload string) uint64 {
	t.Helper()
	seq, err := s.Append(kind, []byte(payload))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

// drain replays and acknowledges everything, returning the records.
func drain(t *testing.T, s *Spool) []Record {
	t.Helper()
	var got []Record
	n, err := s.Replay(context.Background(), func(r Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if n != len(got) {
		t.Fatalf("Replay returned %d, fn saw %d records", n, len(got))
	}
	return got
}

func seqs(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func wantSeqs(t *testing.T, recs []Record, from, to uint64) {
	t.Helper()
	got := seqs(recs)
	if len(got) != int(to-from+1) {
		t.Fatalf("got seqs %v, want %d..%d", got, from, to)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("got seqs %v, want %d..%d", got, from, to)
		}
	}
}

// segFile returns the single segment file in dir.
func segFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil || len(m) != 1 {
		t.Fatalf("segment files in %s: %v (err %v), want exactly one", dir, m, err)
	}
	return m[0]
}

func TestAppendReplayInOrder(t *testing.T) {
	s := open(t, t.TempDir())
	before := time.Now()
	for i := 1; i <= 50; i++ {
		if seq := mustAppend(t, s, fmt.Sprintf("kind%d", i%3), fmt.Sprintf("payload %d", i)); seq != uint64(i) {
			t.Fatalf("Append #%d returned seq %d", i, seq)
		}
	}
	if n := s.Len(); n != 50 {
		t.Fatalf("Len = %d, want 50", n)
	}
	got := drain(t, s)
	wantSeqs(t, got, 1, 50)
	for i, r := range got {
		if r.Kind != fmt.Sprintf("kind%d", (i+1)%3) || string(r.Payload) != fmt.Sprintf("payload %d", i+1) {
			t.Fatalf("record %d = %q %q", r.Seq, r.Kind, r.Payload)
		}
		if r.At.Before(before.Add(-time.Second)) || r.At.After(time.Now().Add(time.Second)) {
			t.Fatalf("record %d At = %v", r.Seq, r.At)
		}
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("Len after replay = %d", n)
	}
	if again := drain(t, s); len(again) != 0 {
		t.Fatalf("second Replay returned %v", seqs(again))
	}
}

func TestReplayStopsAtErrorAndResumes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < 10; i++ {
		mustAppend(t, s, "k", strconv.Itoa(i))
	}
	boom := errors.New("database down")
	var seen []uint64
	n, err := s.Replay(context.Background(), func(r Record) error {
		seen = append(seen, r.Seq)
		if r.Seq == 4 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("Replay = %d, %v; want 3, %v", n, err, boom)
	}
	if fmt.Sprint(seen) != "[1 2 3 4]" {
		t.Fatalf("fn saw %v", seen)
	}
	if l := s.Len(); l != 7 {
		t.Fatalf("Len = %d, want 7", l)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := s.Replay(ctx, func(Record) error { t.Fatal("fn called after cancel"); return nil }); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Replay with cancelled ctx = %d, %v", n, err)
	}

	// Resumes at the failed record, in this process and after reopening.
	n, err = s.Replay(context.Background(), func(r Record) error {
		if r.Seq == 6 {
			return boom
		}
		return nil
	})
	if n != 2 || !errors.Is(err, boom) {
		t.Fatalf("second Replay = %d, %v; want 2, %v", n, err, boom)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir)
	if l := s.Len(); l != 5 {
		t.Fatalf("Len after reopen = %d, want 5", l)
	}
	wantSeqs(t, drain(t, s), 6, 10)
}

func TestConcurrentAppend(t *testing.T) {
	s := open(t, t.TempDir())
	const workers, each = 16, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq, err := s.Append("k", []byte(fmt.Sprintf("%d/%d", g, i)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	if len(got) != workers*each || s.Len() != workers*each {
		t.Fatalf("%d distinct seqs, Len %d; want %d", len(got), s.Len(), workers*each)
	}
	recs := drain(t, s)
	wantSeqs(t, recs, 1, workers*each)
	next := make([]int, workers) // each goroutine's records appear in its order
	for _, r := range recs {
		var g, i int
		if _, err := fmt.Sscanf(string(r.Payload), "%d/%d", &g, &i); err != nil || i != next[g] {
			t.Fatalf("record %d payload %q out of order (want index %d)", r.Seq, r.Payload, next[g])
		}
		next[g]++
	}
}

func TestAppendDuringReplay(t *testing.T) {
	s := open(t, t.TempDir())
	const workers, each = 4, 50
	var wg sync.WaitGroup
	var done atomic.Bool
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append("k", []byte("x")); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()

	var last uint64
	deadline := time.Now().Add(5 * time.Second)
	for !done.Load() || s.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not drained in time: last %d, Len %d", last, s.Len())
		}
		if _, err := s.Replay(context.Background(), func(r Record) error {
			if r.Seq != last+1 {
				return fmt.Errorf("got seq %d after %d", r.Seq, last)
			}
			last = r.Seq
			return nil
		}); err != nil {
			t.Fatalf("Replay: %v", err)
		}
	}
	if last != workers*each {
		t.Fatalf("replayed up to %d, want %d", last, workers*each)
	}
}

func TestReopenReturnsExactlyUnacked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 1; i <= 10; i++ {
		mustAppend(t, s, "k", strconv.Itoa(i))
	}
	stop := errors.New("stop")
	if n, err := s.Replay(context.Background(), func(r Record) error {
		if r.Seq > 4 {
			return stop
		}
		return nil
	}); n != 4 || !errors.Is(err, stop) {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, dir)
	if l := s.Len(); l != 6 {
		t.Fatalf("Len after reopen = %d, want 6", l)
	}
	if seq := mustAppend(t, s, "k", "11"); seq != 11 {
		t.Fatalf("Append after reopen returned seq %d, want 11", seq)
	}
	recs := drain(t, s)
	wantSeqs(t, recs, 5, 11)
	for _, r := range recs {
		if string(r.Payload) != strconv.FormatUint(r.Seq, 10) {
			t.Fatalf("record %d payload %q", r.Seq, r.Payload)
		}
	}
}

func TestFreshSegmentWhenDrained(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < 3; i++ {
		mustAppend(t, s, "k", "payload")
	}
	first := segFile(t, dir)
	drain(t, s)
	second := segFile(t, dir)
	if second == first {
		t.Fatalf("segment %s not replaced after everything was acknowledged", first)
	}
	if fi, err := os.Stat(second); err != nil || fi.Size() != 0 {
		t.Fatalf("fresh segment: %v, %v", fi, err)
	}
	if seq := mustAppend(t, s, "k", "after"); seq != 4 {
		t.Fatalf("seq after rotation = %d, want 4", seq)
	}
	s.Close()

	s = open(t, dir)
	recs := drain(t, s)
	wantSeqs(t, recs, 4, 4)
	if string(recs[0].Payload) != "after" {
		t.Fatalf("payload %q", recs[0].Payload)
	}
}

func TestTornTailRecovered(t *testing.T) {
	const n, payloadLen = 5, 100
	recSize := int64(headerSize + bodyFixed + 1 + payloadLen)
	full := n * recSize
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		keep   int
	}{
		{"cut in header", func(t *testing.T, p string) { truncate(t, p, full-recSize+3) }, n - 1},
		{"cut in body", func(t *testing.T, p string) { truncate(t, p, full-10) }, n - 1},
		{"garbage appended", func(t *testing.T, p string) {
			appendBytes(t, p, []byte("\x07garbage that is not a record at all, 42 bytes"))
		}, n},
		{"huge length appended", func(t *testing.T, p string) { appendBytes(t, p, []byte{0xf0, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6}) }, n},
		{"zeros appended", func(t *testing.T, p string) { appendBytes(t, p, make([]byte, 4096)) }, n},
		{"bad CRC in last record", func(t *testing.T, p string) { flipByte(t, p, full-5) }, n - 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			for i := 1; i <= n; i++ {
				mustAppend(t, s, "k", strings.Repeat(strconv.Itoa(i), payloadLen))
			}
			s.Close()
			path := segFile(t, dir)
			tc.damage(t, path)

			s = open(t, dir)
			if l := s.Len(); l != tc.keep {
				t.Fatalf("Len after recovery = %d, want %d", l, tc.keep)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != int64(tc.keep)*recSize {
				t.Fatalf("segment not truncated to %d bytes: %v %v", int64(tc.keep)*recSize, fi.Size(), err)
			}
			next := uint64(tc.keep + 1)
			if seq := mustAppend(t, s, "k", "new"); seq != next {
				t.Fatalf("Append after recovery = seq %d, want %d", seq, next)
			}
			s.Close()

			s = open(t, dir)
			recs := drain(t, s)
			wantSeqs(t, recs, 1, next)
			for _, r := range recs[:tc.keep] {
				if string(r.Payload) != strings.Repeat(strconv.FormatUint(r.Seq, 10), payloadLen) {
					t.Fatalf("record %d payload %q", r.Seq, r.Payload)
				}
			}
			if string(recs[tc.keep].Payload) != "new" {
				t.Fatalf("last payload %q", recs[tc.keep].Payload)
			}
		})
	}
}

// A torn write of the newest ack slot falls back to the previous ack: the last
// acknowledged record is replayed again, nothing earlier.
func TestTornAckRepeatsOnlyLastAck(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < 5; i++ {
		mustAppend(t, s, "k", "p")
	}
	stop := errors.New("stop")
	if n, _ := s.Replay(context.Background(), func(r Record) error {
		if r.Seq == 4 {
			return stop
		}
		return nil
	}); n != 3 {
		t.Fatalf("Replay acked %d, want 3", n)
	}
	s.Close()

	path := filepath.Join(dir, ackName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a0, ok0 := decodeAck(b[:ackSize])
	a1, ok1 := decodeAck(b[ackSlot1 : ackSlot1+ackSize])
	if !ok0 || !ok1 {
		t.Fatalf("ack slots valid: %v %v", ok0, ok1)
	}
	newest := int64(0)
	if a1.version > a0.version {
		newest = ackSlot1
	}
	flipByte(t, path, newest+30)

	s = open(t, dir)
	if l := s.Len(); l != 3 {
		t.Fatalf("Len = %d, want 3", l)
	}
	wantSeqs(t, drain(t, s), 3, 5)
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Append("k", make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v, want ErrTooLarge", err)
	}
	if _, err := s.Append(strings.Repeat("k", MaxKind+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized kind: %v, want ErrTooLarge", err)
	}
	big := bytes.Repeat([]byte{0xab}, MaxPayload)
	if _, err := s.Append(strings.Repeat("k", MaxKind), big); err != nil {
		t.Fatalf("maximal record: %v", err)
	}
	mustAppend(t, s, "", "")
	s.Close()

	s = open(t, dir)
	recs := drain(t, s)
	wantSeqs(t, recs, 1, 2)
	if !bytes.Equal(recs[0].Payload, big) || len(recs[0].Kind) != MaxKind {
		t.Fatalf("maximal record came back with %d-byte kind, %d-byte payload", len(recs[0].Kind), len(recs[0].Payload))
	}
	if recs[1].Kind != "" || len(recs[1].Payload) != 0 {
		t.Fatalf("empty record came back as %q %q", recs[1].Kind, recs[1].Payload)
	}
}

func TestPermissionsAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "spool")
	s := open(t, dir)
	mustAppend(t, s, "k", "p")
	for _, p := range []string{filepath.Dir(dir), dir, filepath.Join(dir, ackName), segFile(t, dir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", p, fi.Mode().Perm())
		}
	}

	if s2, err := Open(dir); err == nil {
		s2.Close()
		t.Fatal("second Open of an open spool succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append("k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.Replay(context.Background(), func(Record) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Replay after Close: %v", err)
	}
	s = open(t, dir)
	if s.Len() != 1 {
		t.Fatalf("Len after reopen = %d", s.Len())
	}
}

const crashEnv = "CARRIER_SPOOL_CRASH_CHILD_DIR"

// TestCrashKill9 runs this test binary as a child that appends and replays
// concurrently, printing each seq once Append has returned ("A seq") and each
// seq whose replay callback is about to return nil ("R seq"). The child is
// killed with SIGKILL mid-way; every reported append must survive, and only
// the last reported replay may come back again.
func TestCrashKill9(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		appended, replayed := runCrashChild(t, dir)
		if len(appended) == 0 {
			t.Fatalf("round %d: child reported no appends", round)
		}
		var lastFn uint64
		for _, r := range replayed {
			lastFn = max(lastFn, r)
		}

		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		present := map[uint64]bool{}
		var got []uint64
		if _, err := s.Replay(context.Background(), func(r Record) error {
			present[r.Seq] = true
			got = append(got, r.Seq)
			return nil
		}); err != nil {
			t.Fatalf("round %d: Replay: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		for i := range got {
			if i > 0 && got[i] != got[i-1]+1 {
				t.Fatalf("round %d: replayed seqs not contiguous: %d after %d", round, got[i], got[i-1])
			}
		}
		if len(got) > 0 && got[0] < lastFn {
			t.Fatalf("round %d: seq %d replayed again although %d was acknowledged after it", round, got[0], lastFn)
		}
		missing := 0
		for _, a := range appended {
			if a > lastFn && !present[a] {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d acknowledged appends lost (reported %d appends, %d replays, recovered %d)",
				round, missing, len(appended), len(replayed), len(got))
		}
		t.Logf("round %d: %d appends, %d replayed before kill, %d recovered", round, len(appended), len(replayed), len(got))
	}
}

// runCrashChild starts the child, kills it with SIGKILL mid-way and
// returns the seqs it reported.
func runCrashChild(t *testing.T, dir string) (appended, replayed []uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	record := func(line string) {
		kind, num, ok := strings.Cut(line, " ")
		seq, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			return // test framework output
		}
		switch kind {
		case "A":
			appended = append(appended, seq)
		case "R":
			replayed = append(replayed, seq)
		}
	}
	// Kill at a varying point, after 100..499 reported appends (or 5 s).
	killAt := 100 + rand.IntN(400)
	timeout := time.After(5 * time.Second)
wait:
	for len(appended) < killAt {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait
			}
			record(line)
		case <-timeout:
			break wait
		}
	}
	_ = cmd.Process.Kill() // SIGKILL
	for line := range lines {
		record(line)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("child was not killed: %v\nstderr: %s", err, stderr.String())
	}
	return appended, replayed
}

// crashChild appends from several goroutines and replays from another until
// killed (or, as a bound, for 20 s).
func crashChild(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	report := func(kind string, seq uint64) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, "%s %d\n", kind, seq) // unbuffered: one write per line
		outMu.Unlock()
	}
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				seq, err := s.Append("crash", []byte(fmt.Sprintf("g%d i%d", g, i)))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(2)
				}
				report("A", seq)
			}
		}()
	}
	go func() {
		for time.Now().Before(deadline) {
			n, err := s.Replay(context.Background(), func(r Record) error {
				report("R", r.Seq)
				return nil
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, "child replay:", err)
				os.Exit(2)
			}
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	os.Exit(0)
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
