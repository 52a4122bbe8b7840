package sqlstore

import "database/sql"

// BacklogQuery is the statement CountBacklog runs, for plan checks.
const BacklogQuery = backlogQuery

// DB returns the handles the store writes and reads through.
func (s *Store) DB() (writer, reader *sql.DB) { return s.writer, s.reader }

// EventsAfterQuery is the statement EventsAfter runs for n types, for plan checks.
func EventsAfterQuery(n int) string { return eventsAfterQuery(n) }
