package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// ErrUnavailable marks an error as "the store could not take the write now"
// for code that knows so without a driver error (IsUnavailable reports it).
var ErrUnavailable = errors.New("store unavailable")

// Store errors come in two classes, and callers must tell them apart: an
// unavailable store (refused or dropped connections, timeouts, a database
// shutting down, a full disk) will take the same write later, so a write the
// client was promised may be spooled and replayed; a rejected write (a
// constraint or data error) will be refused again however often it is
// replayed, so it is answered to the client, and a spooled copy of it becomes
// a dead letter instead of blocking the spool. The drivers are recognised by
// the interfaces their errors implement, so this package imports neither:
// pgx errors carry a SQLSTATE, modernc.org/sqlite errors a result code.

// IsUnavailable tells whether err means the store could not be reached or
// could not take writes for now, on either engine.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	if code, ok := sqlState(err); ok {
		return unavailableSQLState(code)
	}
	if code, ok := sqliteCode(err); ok {
		return unavailableSQLiteCode(code)
	}
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		// pgconn: the statement never reached the server (the connection was
		// closed or could not be locked).
		return true
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	}
	// database/sql's error for a closed handle is unexported; it is what a
	// write meets while the process closes its store on shutdown.
	return strings.Contains(err.Error(), "sql: database is closed")
}

// IsRejected tells whether err is the database refusing the data itself (a
// constraint, an invalid value), which no retry will change.
func IsRejected(err error) bool {
	if err == nil || IsUnavailable(err) {
		return false
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
		return true
	}
	if _, ok := sqlState(err); ok {
		return true
	}
	if code, ok := sqliteCode(err); ok {
		return rejectedSQLiteCode(code)
	}
	return false
}

func sqlState(err error) (string, bool) {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState(), true
	}
	return "", false
}

func sqliteCode(err error) (int, bool) {
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		// The low byte is the primary result code; the rest extends it.
		return lite.Code() & 0xff, true
	}
	return 0, false
}

// unavailableSQLState: connection exceptions (08), insufficient resources
// such as a full disk or too many connections (53), operator intervention
// such as a shutdown or a cancelled statement (57), system and I/O errors
// (58), serialization failures and deadlocks (40), lock timeouts (55P03) and
// a read-only server, as a standby is during a failover (25006). Every other
// SQLSTATE (data exceptions 22, integrity constraints 23, ...) is a rejection.
func unavailableSQLState(code string) bool {
	switch {
	case len(code) != 5:
		return false
	case code == "55P03", code == "25006":
		return true
	}
	switch code[:2] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return false
}

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	sqliteError      = 1
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteNoMem      = 7
	sqliteReadOnly   = 8
	sqliteInterrupt  = 9
	sqliteIOErr      = 10
	sqliteCorrupt    = 11
	sqliteFull       = 13
	sqliteCantOpen   = 14
	sqliteProtocol   = 15
	sqliteTooBig     = 18
	sqliteConstraint = 19
	sqliteMismatch   = 20
	sqliteRange      = 25
	sqliteNotADB     = 26
)

// unavailableSQLiteCode: the database file is busy, unwritable, full or
// broken. None of these is about the data, so the write may be spooled.
func unavailableSQLiteCode(code int) bool {
	switch code {
	case sqliteBusy, sqliteLocked, sqliteNoMem, sqliteReadOnly, sqliteInterrupt, sqliteIOErr,
		sqliteCorrupt, sqliteFull, sqliteCantOpen, sqliteProtocol, sqliteNotADB:
		return true
	}
	return false
}

func rejectedSQLiteCode(code int) bool {
	switch code {
	case sqliteError, sqliteTooBig, sqliteConstraint, sqliteMismatch, sqliteRange:
		return true
	}
	return false
}
