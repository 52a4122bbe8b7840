package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// privateConf is the private instance's configuration: as production would
// run it (autovacuum on, synchronous commit, fsync, a shared_buffers sized
// for the working set instead of the 128MB default), not the machine's
// shared instance, which runs with autovacuum off.
const privateConf = `
listen_addresses = '127.0.0.1'
max_connections = 100
shared_buffers = '512MB'
effective_cache_size = '4GB'
work_mem = '8MB'
maintenance_work_mem = '128MB'
autovacuum = on
synchronous_commit = on
fsync = on
full_page_writes = on
wal_buffers = '16MB'
max_wal_size = '2GB'
checkpoint_timeout = '5min'
random_page_cost = 1.1
`

// pgSettingNames are the settings the report shows for either instance.
var pgSettingNames = []string{
	"server_version", "shared_buffers", "effective_cache_size", "work_mem", "max_connections",
	"autovacuum", "autovacuum_naptime", "synchronous_commit", "fsync", "full_page_writes",
	"wal_level", "wal_buffers", "max_wal_size", "checkpoint_timeout", "random_page_cost",
}

// privatePostgres is a PostgreSQL instance of the benchmark's own: its own
// directory and port, started with initdb and pg_ctl as the postgres user,
// stopped and removed at the end. The machine's shared instance is never
// touched.
type privatePostgres struct {
	bin        string // directory of initdb, pg_ctl
	dir        string // removed at the end
	data       string
	port       int
	postmaster int
	started    bool
}

// privatePorts are the ports tried, in order: the first free one is used,
// so a second benchmark (or another harness) on the machine does not clash.
var privatePorts = []int{55433, 55434, 55435, 55436, 55437, 55438, 55439, 55440}

// startPrivatePostgres sets up and starts a private instance. On error,
// whatever was made is already removed.
func startPrivatePostgres(ctx context.Context) (p *privatePostgres, err error) {
	inits, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(inits) == 0 {
		return nil, errors.New("private postgres: no /usr/lib/postgresql/*/bin/initdb")
	}
	// The highest version: "15" < "16" sorts right for two-digit majors.
	slices.Sort(inits)
	p = &privatePostgres{bin: filepath.Dir(inits[len(inits)-1])}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("private postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, port := range privatePorts {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			p.port = port
			break
		}
	}
	if p.port == 0 {
		return nil, fmt.Errorf("private postgres: ports %d-%d all in use", privatePorts[0], privatePorts[len(privatePorts)-1])
	}
	if p.dir, err = os.MkdirTemp("", "carrier-bench-pg-"); err != nil {
		return nil, fmt.Errorf("private postgres: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.stop())
			p = nil
		}
	}()
	if err := os.Chown(p.dir, uid, gid); err != nil {
		return p, fmt.Errorf("private postgres: chown %s: %w", p.dir, err)
	}
	p.data = filepath.Join(p.dir, "data")
	if err := p.asPostgres(ctx, 2*time.Minute, "initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		return p, err
	}
	conf := privateConf + fmt.Sprintf("port = %d\nunix_socket_directories = '%s'\n", p.port, p.dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return p, fmt.Errorf("private postgres: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return p, fmt.Errorf("private postgres: write postgresql.conf: %w", err)
	}
	p.started = true // from here on, stop runs pg_ctl stop
	if err := p.asPostgres(ctx, 90*time.Second, "pg_ctl", "-D", p.data, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		return p, err
	}
	raw, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return p, fmt.Errorf("private postgres: %w", err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	if p.postmaster, err = strconv.Atoi(strings.TrimSpace(first)); err != nil {
		return p, fmt.Errorf("private postgres: postmaster.pid: %w", err)
	}
	return p, nil
}

// url is the instance's database "postgres", over TCP on loopback.
func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// asPostgres runs one of the instance's programs as the postgres user.
func (p *privatePostgres) asPostgres(ctx context.Context, limit time.Duration, prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, prog)}, args...)...)
	cmd.Dir = p.dir // initdb complains about a cwd the postgres user cannot read
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("private postgres: %s: %w: %s", prog, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stop stops the instance (fast shutdown) and removes its directory.
func (p *privatePostgres) stop() error {
	var errs []error
	if p.started {
		// Not the caller's context: it may be cancelled, and the instance
		// must still go.
		if err := p.asPostgres(context.Background(), 90*time.Second, "pg_ctl", "-D", p.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			errs = append(errs, err)
		}
	}
	if p.dir != "" {
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, fmt.Errorf("private postgres: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Setting is one PostgreSQL setting the benchmark ran with.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// pgSettings reads pgSettingNames from the server.
func pgSettings(ctx context.Context, db *sql.DB) ([]Setting, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []Setting
	for _, name := range pgSettingNames {
		var v string
		// SHOW gives the value with its unit, as postgresql.conf spells it.
		if err := db.QueryRowContext(ctx, "SHOW "+name).Scan(&v); err != nil {
			return out, fmt.Errorf("postgres settings: %s: %w", name, err)
		}
		out = append(out, Setting{name, v})
	}
	return out, nil
}
