// Package sqlite opens Carrier's embedded store: a SQLite database file in WAL
// mode with full fsync on commit, one writer connection and a pool of readers.
package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"carrier/internal/store/sqlstore"
)

// FileName is the database file inside the data directory.
const FileName = "carrier.db"

// ErrInUse is returned by Open when another process holds the data directory,
// so that commands that need the store can say to stop that process first.
var ErrInUse = errors.New("in use by another Carrier process")

// Open opens (creating if needed) the database in dir. Call Migrate before use.
func Open(dir string) (*sqlstore.Store, error) {
	// The data directory is the one setting a newcomer is likely to get
	// wrong here, so these errors name it and say what to check.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the data directory %s (CARRIER_DATA_DIR): check that the path is right and that this "+
			"user may create it (or set CARRIER_DATA_DIR to a directory it can write) (%w)", dir, err)
	}
	// One process per database: a second would break the single-writer claim
	// model and could take back the first one's leases at start.
	lock, err := os.OpenFile(filepath.Join(dir, "carrier.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot write in the data directory %s (CARRIER_DATA_DIR): check that this user may write there "+
			"(or set CARRIER_DATA_DIR to a directory it can write) (%w)", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open sqlite: data dir %s is %w (CARRIER_DATA_DIR); use PostgreSQL (CARRIER_DATABASE_URL) to run several", dir, ErrInUse)
	}
	path := filepath.Join(dir, FileName)
	pragmas := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)", "cache_size(-32000)"} {
		pragmas.Add("_pragma", p)
	}
	writer, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode()+"&_txlock=immediate")
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer connection serialises writes, so claims never conflict.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	if err := writer.Ping(); err != nil {
		writer.Close()
		lock.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	pragmas.Add("_pragma", "query_only(ON)")
	reader, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode())
	if err != nil {
		writer.Close()
		lock.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	reader.SetMaxOpenConns(4)
	reader.SetMaxIdleConns(4)
	st := sqlstore.New(writer, reader, sqlstore.SQLite)
	st.AddCloser(lock)
	return st, nil
}
