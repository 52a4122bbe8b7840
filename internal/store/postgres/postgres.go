// Package postgres opens Carrier's PostgreSQL store, for deployments where
// several Carrier processes share one database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"carrier/internal/store/sqlstore"
)

// Open connects to the database at url (a postgres:// URL). Call Migrate before use.
func Open(url string) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse CARRIER_DATABASE_URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, explainConnectError(cfg, err)
	}
	return sqlstore.New(db, db, sqlstore.Postgres), nil
}

// connectTimeout bounds the first connection, so that an address that drops
// packets stops Carrier at start instead of hanging it.
const connectTimeout = 10 * time.Second

// SQLSTATE codes that explainConnectError turns into advice.
const (
	codeNoSuchDatabase = "3D000" // invalid_catalog_name
	classAuthorization = "28"    // invalid_authorization_specification, invalid_password
)

// explainConnectError turns a failed first connection into an error that
// names CARRIER_DATABASE_URL and says what to check: the driver's own message
// ("failed to connect to `user=… database=…`: … dial error …") leaves a
// newcomer to guess which setting and which of the server, the database or
// the role is at fault. The password is never shown; the cause is kept.
func explainConnectError(cfg *pgx.ConnConfig, err error) error {
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		where = "socket directory " + cfg.Host + " (port " + strconv.Itoa(int(cfg.Port)) + ")"
	}
	var pgErr *pgconn.PgError
	var netErr *net.OpError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == codeNoSuchDatabase:
		return fmt.Errorf("PostgreSQL at %s has no database %q (CARRIER_DATABASE_URL): Carrier creates its tables but not the database; "+
			"create it first, for example: createdb -h %s -p %d -U %s %s (%w)",
			where, cfg.Database, cfg.Host, cfg.Port, cfg.User, cfg.Database, pgErr)
	case errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, classAuthorization):
		return fmt.Errorf("PostgreSQL at %s refused user %q (CARRIER_DATABASE_URL): %s; check the user and password in the URL, "+
			"and that the server's pg_hba.conf lets this user connect from here (%w)", where, cfg.User, pgErr.Message, pgErr)
	case errors.As(err, &pgErr):
		return fmt.Errorf("PostgreSQL at %s refused the connection to database %q as user %q (CARRIER_DATABASE_URL): %s (%w)",
			where, cfg.Database, cfg.User, pgErr.Message, pgErr)
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach PostgreSQL at %s (CARRIER_DATABASE_URL): check that the server is running and listens on that "+
			"host and port, for example with: pg_isready -h %s -p %d (%w)", where, cfg.Host, cfg.Port, netErr)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("PostgreSQL at %s did not answer within %v (CARRIER_DATABASE_URL): check the host and port, and that no "+
			"firewall drops the connection (%w)", where, connectTimeout, err)
	}
	return fmt.Errorf("cannot connect to PostgreSQL at %s, database %q, user %q (CARRIER_DATABASE_URL): %w", where, cfg.Database, cfg.User, err)
}
