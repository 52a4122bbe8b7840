package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL instance, started with initdb and pg_ctl
// in a directory of its own on a port of its own, so that the harness may
// restart it at will. The machine's shared server is never touched.
type Postgres struct {
	bin  string // directory of initdb, pg_ctl
	dir  string // data directory
	sock string // directory of the Unix socket
	Port int
}

// PostgresBin finds the directory of initdb and pg_ctl (the newest version
// installed), or says why there is none.
func PostgresBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			matches = []string{p}
		}
	}
	if len(matches) == 0 {
		return "", errors.New("initdb not found (install PostgreSQL's server binaries)")
	}
	sort.Strings(matches)
	if _, err := user.Lookup("postgres"); err != nil {
		return "", errors.New("no postgres user to run initdb as")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return "", errors.New("runuser not found")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// StartPostgres creates and starts an instance under dir (which it creates,
// owned by the postgres user) with a database named carrier.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	u, _ := user.Lookup("postgres")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := &Postgres{bin: bin, dir: filepath.Join(dir, "data"), sock: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The server runs as postgres: it must reach and own its directories.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if p.Port, err = freePort(); err != nil {
		return nil, err
	}
	if out, err := p.run(ctx, "initdb", "-D", p.dir, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		p.Stop()
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE carrier"); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args = append([]string{"-u", "postgres", "--", filepath.Join(p.bin, tool)}, args...)
	return exec.CommandContext(ctx, "runuser", args...).CombinedOutput()
}

// The settings are a test server's: fsync off (the machine does not crash
// under the harness; a restart in immediate mode still replays the WAL),
// enough connections for three nodes' pools, autovacuum on as in production.
func (p *Postgres) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c shared_buffers=128MB", p.Port, p.sock)
	out, err := p.run(ctx, "pg_ctl", "-D", p.dir, "-l", filepath.Join(p.sock, "postgres.log"), "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// Restart stops the server at once, as a crash would (immediate mode: no
// checkpoint, every connection cut), and starts it again.
func (p *Postgres) Restart(ctx context.Context) error {
	if out, err := p.run(ctx, "pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return p.start(ctx)
}

// Stop stops the server.
func (p *Postgres) Stop() error {
	out, err := p.run(context.Background(), "pg_ctl", "-D", p.dir, "-m", "fast", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Addr is the server's TCP address.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// URL is the harness's own connection URL to the carrier database.
func (p *Postgres) URL() string { return p.url("carrier") }

func (p *Postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.Addr(), db)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
