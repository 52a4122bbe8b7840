package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"carrier/internal/store"
)

// listing builds the query of a project's records, newest first, with the
// optional filters every listing has: equality on some columns and a
// created_at range.
type listing struct {
	where []string
	args  []any
}

func newListing(projectID string) *listing {
	return &listing{where: []string{"project_id = $1"}, args: []any{projectID}}
}

// eq adds col = v when v is set.
func (l *listing) eq(col, v string) {
	if v == "" {
		return
	}
	l.args = append(l.args, v)
	l.where = append(l.where, fmt.Sprintf("%s = $%d", col, len(l.args)))
}

// created adds the created_at range, each end when set.
func (l *listing) created(from, to *time.Time) {
	if from != nil {
		l.args = append(l.args, ms(*from))
		l.where = append(l.where, fmt.Sprintf("created_at >= $%d", len(l.args)))
	}
	if to != nil {
		l.args = append(l.args, ms(*to))
		l.where = append(l.where, fmt.Sprintf("created_at <= $%d", len(l.args)))
	}
}

// query returns the statement and its arguments; limit 0 means 100.
func (l *listing) query(table, columns string, limit, offset int) (string, []any) {
	if limit <= 0 {
		limit = 100
	}
	args := append(l.args, limit, offset)
	return fmt.Sprintf(`SELECT %s FROM %s WHERE %s ORDER BY created_at DESC, id DESC LIMIT $%d OFFSET $%d`,
		columns, table, strings.Join(l.where, " AND "), len(args)-1, len(args)), args
}

// errListFull stops a list scan once its rows reached store.ListBytes.
var errListFull = errors.New("list reached its byte budget")

// budget counts the payload a list has taken; full is true once the row just
// taken brought it to store.ListBytes.
type budget struct{ used int }

func (b *budget) full(size int) bool {
	b.used += size
	return b.used >= store.ListBytes
}

// scanUpTo reads rows like scanAll, stopping without error when scan returns
// errListFull.
func scanUpTo(rows *sql.Rows, err error) func(func(*sql.Rows) error) error {
	all := scanAll(rows, err)
	return func(scan func(*sql.Rows) error) error {
		if err := all(scan); err != nil && !errors.Is(err, errListFull) {
			return err
		}
		return nil
	}
}
