package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to list the benchmark's backends
)

// CPU is the processor time a phase cost, and that time per 1,000 events
// (the phase's delivered events, or accepted ones where nothing is delivered):
// a figure that moves less between machines and loads than events per second.
type CPU struct {
	// ProcessS is user+system time of this process: Carrier and the sink,
	// and in the in-process phases (ingest, latency) also the publishers.
	ProcessS float64 `json:"process_s"`
	// DatabaseS is user+system time of the PostgreSQL processes counted (see
	// Report.DatabaseCPU); zero on SQLite, which runs inside the process.
	DatabaseS float64 `json:"database_s"`
	// LoadGenS is the separate load generator's own time, where there is one
	// (not part of PerThousand: it stands in for the clients).
	LoadGenS float64 `json:"loadgen_s,omitempty"`
	Events   int64   `json:"events"`
	// PerThousand is (ProcessS + DatabaseS) per 1,000 Events.
	PerThousand float64 `json:"cpu_s_per_1000_events"`
}

func (c CPU) String() string {
	s := fmt.Sprintf("CPU %.3fs process", c.ProcessS)
	if c.DatabaseS > 0 {
		s += fmt.Sprintf(" + %.3fs database", c.DatabaseS)
	}
	s += fmt.Sprintf(" = %.3f CPU-s per 1,000 events", c.PerThousand)
	if c.LoadGenS > 0 {
		s += fmt.Sprintf(" (load generator %.3fs, not counted)", c.LoadGenS)
	}
	return s
}

// processCPU returns this process's user+system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux port Go supports; reading sysconf would need cgo).
const clockTick = 10 * time.Millisecond

// pidCPU reads utime+stime of one process from /proc/<pid>/stat, and its
// parent's pid. ok is false when the process is gone.
func pidCPU(pid int) (cpu time.Duration, ppid int, ok bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow start after the last ')'.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(ut+st) * clockTick, ppid, true
}

// dbCPU measures PostgreSQL's processor time, one way or the other.
type dbCPU interface {
	// sample returns the CPU time per process counted, now.
	sample(ctx context.Context) map[int]time.Duration
	// describe says which processes are counted, for the report.
	describe() string
}

// dbDelta is the CPU the database spent between two samples. A process
// that started in between counts from zero; one that ended in between is
// lost (the benchmark's pool keeps its connections for minutes, so that is
// rare and only undercounts).
func dbDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, a := range after {
		d += a - before[pid]
	}
	return max(0, d)
}

// instanceCPU counts every process of a private PostgreSQL instance: the
// postmaster and all its children (backends, autovacuum, WAL writer,
// checkpointer), so background work the load causes is included.
type instanceCPU struct{ postmaster int }

func (c instanceCPU) describe() string {
	return fmt.Sprintf("all processes of the private PostgreSQL instance (postmaster pid %d and its children)", c.postmaster)
}

func (c instanceCPU) sample(context.Context) map[int]time.Duration {
	out := map[int]time.Duration{}
	if cpu, _, ok := pidCPU(c.postmaster); ok {
		out[c.postmaster] = cpu
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cpu, ppid, ok := pidCPU(pid); ok && ppid == c.postmaster {
			out[pid] = cpu
		}
	}
	return out
}

// backendCPU counts the backends serving the benchmark's own connections on
// a shared server (found by their application_name), leaving out the other
// users of that server and its background processes.
type backendCPU struct {
	db      *sql.DB
	appName string
}

func (c backendCPU) describe() string {
	return fmt.Sprintf("the PostgreSQL backends of the benchmark's connections (application_name %s; background processes not counted)", c.appName)
}

func (c backendCPU) sample(ctx context.Context) map[int]time.Duration {
	out := map[int]time.Duration{}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, c.appName)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			continue
		}
		if cpu, _, ok := pidCPU(pid); ok {
			out[pid] = cpu
		}
	}
	return out
}

// cpuMark is a point to measure a phase's CPU from.
type cpuMark struct {
	process time.Duration
	db      map[int]time.Duration
}

func (r *run) cpuMark(ctx context.Context) cpuMark {
	m := cpuMark{process: processCPU()}
	if r.db != nil {
		m.db = r.db.sample(ctx)
	}
	return m
}

// cpuSince is the CPU spent since m, per 1,000 of events.
func (r *run) cpuSince(ctx context.Context, m cpuMark, events int64) CPU {
	c := CPU{ProcessS: (processCPU() - m.process).Seconds(), Events: events}
	if r.db != nil {
		c.DatabaseS = dbDelta(m.db, r.db.sample(ctx)).Seconds()
	}
	c.PerThousand = perThousand(c.ProcessS+c.DatabaseS, events)
	return c
}

func perThousand(s float64, events int64) float64 {
	if events <= 0 {
		return 0
	}
	return math.Round(s/float64(events)*1000*1000) / 1000
}
