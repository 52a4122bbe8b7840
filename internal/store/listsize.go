package store

// ListBytes is how much payload one list call returns at most: List methods
// whose rows carry payloads (events, tasks, dead letters) stop early, after
// the row that reaches it, so an answer never holds much more than this in
// memory however large its rows are and however high the limit asked. A
// caller knows the list was cut when the rows' Size adds up to ListBytes or
// more, and pages on with the offset.
const ListBytes = 1 << 20

// Size is the payload an event carries, as ListBytes counts it.
func (e Event) Size() int {
	n := len(e.Data) + len(e.Subject) + len(e.Type) + len(e.IdempotencyKey)
	for k, v := range e.Attributes {
		n += len(k) + len(v)
	}
	return n
}

// Size is the payload a task carries, as ListBytes counts it.
func (t Task) Size() int {
	n := len(t.Metadata) + len(t.Solution) + len(t.ErrorMessage) + len(t.PingbackURL)
	for k, v := range t.Params {
		n += len(k) + len(v)
	}
	return n
}

// Size is the payload a dead letter carries, as ListBytes counts it.
func (d DeadLetter) Size() int {
	return len(d.Body) + len(d.Query) + len(d.Message) + len(d.LastError)
}

// ListSize is the payload of rows, as ListBytes counts it.
func ListSize[T interface{ Size() int }](rows []T) int {
	n := 0
	for _, r := range rows {
		n += r.Size()
	}
	return n
}

// ListCut reports whether rows of these sizes reached ListBytes, that is,
// whether a list call may have stopped before its limit because of it.
func ListCut[T interface{ Size() int }](rows []T) bool {
	return ListSize(rows) >= ListBytes
}
