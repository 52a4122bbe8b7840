package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// bulkSizes are the row counts of multi-row statements. Every batch is split
// into chunks of these sizes, so each statement has only a few distinct texts,
// each parsed once and reused (parsing is a large share of SQLite's work).
var bulkSizes = []int{64, 16, 4, 1}

// bulk is a multi-row statement.
type bulk struct {
	name string
	cols int
	// row writes one row's SQL given the placeholder number of its first value.
	row func(b *strings.Builder, first int)
	// head and tail surround the comma-separated rows.
	head, tail string
}

func (q *bulk) text(k int) string {
	var b strings.Builder
	b.WriteString(q.head)
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		q.row(&b, i*q.cols+1)
	}
	b.WriteString(q.tail)
	return b.String()
}

// placeholders returns a row writer for "($n, $n+1, …)" with cols values.
func placeholders(cols int) func(b *strings.Builder, first int) {
	return func(b *strings.Builder, first int) {
		b.WriteString("(")
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "$%d", first+c)
		}
		b.WriteString(")")
	}
}

// prepared returns the cached statement for text bound to tx, or nil when it
// is not prepared yet. Preparing needs a connection of its own, which inside a
// transaction on SQLite's single writer connection would wait forever; so a
// miss is only noted, and prepareWanted prepares it before the next transaction.
func (s *Store) prepared(ctx context.Context, tx *sql.Tx, text string) *sql.Stmt {
	if st, ok := s.stmts.Load(text); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	s.wantMu.Lock()
	s.wanted = append(s.wanted, text)
	s.wantMu.Unlock()
	return nil
}

// prepareWanted prepares the statements noted by prepared. It runs outside
// any transaction.
func (s *Store) prepareWanted(ctx context.Context) {
	s.wantMu.Lock()
	texts := s.wanted
	s.wanted = nil
	s.wantMu.Unlock()
	for _, text := range texts {
		if _, ok := s.stmts.Load(text); ok {
			continue
		}
		st, err := s.writer.PrepareContext(ctx, text)
		if err != nil {
			continue // the statement runs unprepared and reports its own error
		}
		if _, loaded := s.stmts.LoadOrStore(text, st); loaded {
			st.Close()
		}
	}
}

// run executes q for every row (each q.cols values) in chunks of bulkSizes.
// When scan is set the statement returns rows and scan reads each.
func (s *Store) run(ctx context.Context, tx *sql.Tx, q *bulk, rows [][]any, scan func(*sql.Rows) error) error {
	for start := 0; start < len(rows); {
		k := bulkSizes[len(bulkSizes)-1]
		for _, size := range bulkSizes {
			if size <= len(rows)-start {
				k = size
				break
			}
		}
		args := make([]any, 0, k*q.cols)
		for _, r := range rows[start : start+k] {
			args = append(args, r...)
		}
		var err error
		if scan == nil {
			_, err = s.exec(ctx, tx, q.text(k), args...)
		} else {
			err = scanAll(s.query(ctx, tx, q.text(k), args...))(scan)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		start += k
	}
	return nil
}

func scanAll(rows *sql.Rows, err error) func(func(*sql.Rows) error) error {
	return func(scan func(*sql.Rows) error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// exec runs a statement through the prepared-statement cache.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, text string, args ...any) (sql.Result, error) {
	if st := s.prepared(ctx, tx, text); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, text, args...)
}

// query runs a statement through the prepared-statement cache.
func (s *Store) query(ctx context.Context, tx *sql.Tx, text string, args ...any) (*sql.Rows, error) {
	if st := s.prepared(ctx, tx, text); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, text, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, text string, args ...any) *sql.Row {
	if st := s.prepared(ctx, tx, text); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, text, args...)
}

// scanIDs reads a one-column result of ids.
func scanIDs(rows *sql.Rows, err error) ([]string, error) {
	var ids []string
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}
