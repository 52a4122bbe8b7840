package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// APIKey is the admin key every node is started with.
const APIKey = "ck_chaos_harness_admin_key_0123"

// Node is one `carrier serve` slot: a process that may be killed and
// started again (a new process with a new node id, on the same port and data
// directory, so its spool survives), paused and resumed.
type Node struct {
	Index int
	Addr  string // host:port of its API, the same across restarts
	dir   string
	bin   string
	proxy *Proxy
	args  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	gen    int  // how many processes this slot has started
	paused bool // SIGSTOP sent, no SIGCONT yet
	exited chan struct{}
	logs   []string // stderr files, one per process
}

// Name names the slot's current process: n<slot>.<generation>.
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("n%d.%d", n.Index+1, n.gen)
}

// Pid is the current process's id (0 when none runs).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Start starts a process and waits until it listens.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	n.gen++
	logPath := filepath.Join(n.dir, fmt.Sprintf("serve.%d.log", n.gen))
	n.logs = append(n.logs, logPath)
	n.mu.Unlock()
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, append([]string{"serve"}, n.args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CARRIER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CARRIER_API_KEY="+APIKey)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.paused = cmd, exited, false
	n.mu.Unlock()
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "listening on") {
				said = true
				close(listening)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	select {
	case <-listening:
		return nil
	case <-exited:
		return fmt.Errorf("node %d exited before listening (see %s)", n.Index+1, logPath)
	case <-time.After(60 * time.Second):
		n.Kill()
		return fmt.Errorf("node %d did not listen within 60s (see %s)", n.Index+1, logPath)
	case <-ctx.Done():
		n.Kill()
		return ctx.Err()
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Pause sends SIGSTOP: the process keeps its sockets and believes it holds
// its leases, but runs nothing until Resume.
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP, true) }

// Resume sends SIGCONT.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return errors.New("no process")
	}
	n.paused = paused
	return n.cmd.Process.Signal(sig)
}

// Running reports whether the process runs and is not paused.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.paused {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 20 s).
func (n *Node) Stop() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		n.Kill()
	}
}

// Logs are the stderr files of every process of the slot, with the name of
// the process that wrote each.
func (n *Node) Logs() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]string{}
	for i, p := range n.logs {
		out[fmt.Sprintf("n%d.%d", n.Index+1, i+1)] = p
	}
	return out
}

// RSS is the resident set of the current process in bytes (0 if unknown).
func (n *Node) RSS() int64 {
	pid := n.Pid()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
