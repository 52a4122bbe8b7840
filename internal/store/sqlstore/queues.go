package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"carrier/internal/store"
)

const queueColumns = `id, project_id, name, visibility_timeout_ms, max_receive_count, dead_letter_queue_id, retention_ms, delay_ms, created_at, fifo, content_dedup`

const messageColumns = `id, queue_id, project_id, seq, body, attributes, sent_at, visible_at, expires_at, receive_count, receipt_handle,
	first_received_at, source_queue_id, dedup_id, group_id, dedup_key`

func scanQueue(row scanner) (store.Queue, error) {
	var q store.Queue
	var vis, ret, delay, created int64
	if err := row.Scan(&q.ID, &q.ProjectID, &q.Name, &vis, &q.MaxReceiveCount, &q.DeadLetterQueueID, &ret, &delay, &created, &q.FIFO, &q.ContentDedup); err != nil {
		return q, err
	}
	q.VisibilityTimeout = time.Duration(vis) * time.Millisecond
	q.Retention = time.Duration(ret) * time.Millisecond
	q.Delay = time.Duration(delay) * time.Millisecond
	q.CreatedAt = fromMS(created)
	return q, nil
}

func scanMessage(row scanner) (store.QueueMessage, error) {
	var m store.QueueMessage
	var attrs, dedupKey string
	var sent, visible, expires, first int64
	if err := row.Scan(&m.ID, &m.QueueID, &m.ProjectID, &m.Seq, &m.Body, &attrs, &sent, &visible, &expires, &m.ReceiveCount, &m.ReceiptHandle,
		&first, &m.SourceQueueID, &m.DedupID, &m.GroupID, &dedupKey); err != nil {
		return m, err
	}
	if m.DedupID == "" {
		m.DedupID = dedupKey
	}
	m.Attributes = map[string]string{}
	json.Unmarshal([]byte(attrs), &m.Attributes)
	m.SentAt, m.VisibleAt, m.ExpiresAt = fromMS(sent), fromMS(visible), fromMS(expires)
	m.FirstReceivedAt = fromMSPtr(first)
	return m, nil
}

// receiptHandle returns a fresh random receipt handle.
func receiptHandle() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateQueue inserts a queue.
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if q.DeadLetterQueueID != "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM queues WHERE id = $1 AND project_id = $2`, q.DeadLetterQueueID, q.ProjectID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("dead-letter queue: %w", store.ErrNotFound)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO queues (`+queueColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			q.ID, q.ProjectID, q.Name, q.VisibilityTimeout.Milliseconds(), q.MaxReceiveCount, q.DeadLetterQueueID,
			q.Retention.Milliseconds(), q.Delay.Milliseconds(), ms(q.CreatedAt), q.FIFO, q.FIFO && q.ContentDedup)
		return conflict(err)
	})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	return nil
}

// GetQueue reads one queue of a project.
func (s *Store) GetQueue(ctx context.Context, projectID, id string) (store.Queue, error) {
	q, err := scanQueue(s.reader.QueryRowContext(ctx, `SELECT `+queueColumns+` FROM queues WHERE id = $1 AND project_id = $2`, id, projectID))
	if err != nil {
		return q, fmt.Errorf("get queue: %w", notFound(err))
	}
	return q, nil
}

// QueueByName reads one queue of a project by name.
func (s *Store) QueueByName(ctx context.Context, projectID, name string) (store.Queue, error) {
	q, err := scanQueue(s.reader.QueryRowContext(ctx, `SELECT `+queueColumns+` FROM queues WHERE name = $1 AND project_id = $2`, name, projectID))
	if err != nil {
		return q, fmt.Errorf("get queue by name: %w", notFound(err))
	}
	return q, nil
}

// ListQueues lists a project's queues by name.
func (s *Store) ListQueues(ctx context.Context, projectID string) ([]store.Queue, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+queueColumns+` FROM queues WHERE project_id = $1 ORDER BY name`, projectID)
	out := []store.Queue{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		q, err := scanQueue(r)
		if err != nil {
			return err
		}
		out = append(out, q)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return out, nil
}

// DeleteQueue removes a queue and its messages, unless another queue uses it
// as its dead-letter queue.
func (s *Store) DeleteQueue(ctx context.Context, projectID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var users []string
		users, err := scanIDs(tx.QueryContext(ctx, `SELECT name FROM queues WHERE dead_letter_queue_id = $1 AND project_id = $2 AND id <> $1`, id, projectID))
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: queue is the dead-letter queue of %v", store.ErrConflict, users)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM queues WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE queue_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM queue_dedup WHERE queue_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete queue: %w", err)
	}
	return nil
}

// queueInTx reads a queue inside a transaction.
func (s *Store) queueInTx(ctx context.Context, tx *sql.Tx, projectID, id string) (store.Queue, error) {
	q, err := scanQueue(tx.QueryRowContext(ctx, `SELECT `+queueColumns+` FROM queues WHERE id = $1 AND project_id = $2`, id, projectID))
	return q, notFound(err)
}

// reserveSeq hands out n sequence numbers of a queue, base+1 to base+n, and
// returns base. The counter lives on the queue row: the UPDATE is atomic, and
// the row lock it takes is held until tx ends, so concurrent senders (several
// processes on PostgreSQL) get distinct numbers and commit in their order; a
// FIFO receive therefore never sees a later message of a group committed
// before an earlier one. Numbers of duplicates that are not inserted leave
// gaps, which order does not mind.
func reserveSeq(ctx context.Context, tx *sql.Tx, queueID string, n int) (int64, error) {
	var last int64
	err := tx.QueryRowContext(ctx, `UPDATE queues SET last_seq = last_seq + $1 WHERE id = $2 RETURNING last_seq`, n, queueID).Scan(&last)
	if err != nil {
		return 0, notFound(err)
	}
	return last - int64(n), nil
}

// SendMessages inserts messages into a queue in one transaction. A message
// whose DedupID is already in the queue is not inserted: it comes back with
// Duplicate set and the existing message's ID.
func (s *Store) SendMessages(ctx context.Context, projectID, queueID string, msgs []store.QueueMessage) ([]store.QueueMessage, error) {
	out := make([]store.QueueMessage, 0, len(msgs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		q, err := s.queueInTx(ctx, tx, projectID, queueID)
		if err != nil {
			return err
		}
		seq, err := reserveSeq(ctx, tx, queueID, len(msgs))
		if err != nil {
			return err
		}
		for _, m := range msgs {
			seq++
			m.QueueID, m.ProjectID, m.Seq = q.ID, q.ProjectID, seq
			m.ExpiresAt = m.SentAt.Add(q.Retention)
			if m.VisibleAt.IsZero() {
				m.VisibleAt = m.SentAt
			}
			if m.Attributes == nil {
				m.Attributes = map[string]string{}
			}
			m.ReceiveCount, m.ReceiptHandle, m.FirstReceivedAt, m.SourceQueueID = 0, "", nil, ""
			if q.FIFO {
				dup, err := s.fifoDedup(ctx, tx, q, &m)
				if err != nil {
					return err
				}
				if dup {
					seq--
					out = append(out, m)
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO queue_messages (`+messageColumns+`)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, '', 0, '', '', $10, $11)`,
					m.ID, m.QueueID, m.ProjectID, m.Seq, m.Body, jsonText(m.Attributes), ms(m.SentAt), ms(m.VisibleAt), ms(m.ExpiresAt),
					m.GroupID, m.DedupID); err != nil {
					return conflict(err)
				}
				out = append(out, m)
				continue
			}
			m.GroupID = ""
			res, err := tx.ExecContext(ctx, `INSERT INTO queue_messages (`+messageColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, '', 0, '', $10, '', '')
				ON CONFLICT (queue_id, dedup_id) WHERE dedup_id <> '' DO NOTHING`,
				m.ID, m.QueueID, m.ProjectID, m.Seq, m.Body, jsonText(m.Attributes), ms(m.SentAt), ms(m.VisibleAt), ms(m.ExpiresAt), m.DedupID)
			if err != nil {
				return conflict(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				existing, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM queue_messages WHERE queue_id = $1 AND dedup_id = $2`, q.ID, m.DedupID))
				if err != nil {
					return err
				}
				existing.Duplicate = true
				m = existing
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("send messages: %w", err)
	}
	return out, nil
}

// fifoDedup checks a message for a FIFO queue: it needs a group id and a
// deduplication id (the body's SHA-256 with content-based deduplication).
// A deduplication id recorded less than FIFODedupWindow before the message's
// SentAt makes it a duplicate (true, m turned into the first message's ID);
// otherwise the id is recorded for this message.
func (s *Store) fifoDedup(ctx context.Context, tx *sql.Tx, q store.Queue, m *store.QueueMessage) (bool, error) {
	if m.GroupID == "" {
		return false, fmt.Errorf("%w: message %s: group id is required on a FIFO queue", store.ErrInvalid, m.ID)
	}
	if m.DedupID == "" && q.ContentDedup {
		sum := sha256.Sum256([]byte(m.Body))
		m.DedupID = hex.EncodeToString(sum[:])
	}
	if m.DedupID == "" {
		return false, fmt.Errorf("%w: message %s: deduplication id is required on a FIFO queue without content-based deduplication", store.ErrInvalid, m.ID)
	}
	// Take the key unless it is held within the window; the conditional
	// upsert also serializes concurrent sends of one key.
	res, err := tx.ExecContext(ctx, `INSERT INTO queue_dedup (queue_id, dedup_key, message_id, sent_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (queue_id, dedup_key) DO UPDATE SET message_id = excluded.message_id, sent_at = excluded.sent_at
		WHERE queue_dedup.sent_at <= $5`, q.ID, m.DedupID, m.ID, ms(m.SentAt), ms(m.SentAt.Add(-store.FIFODedupWindow)))
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return false, nil
	}
	var first string
	if err := tx.QueryRowContext(ctx, `SELECT message_id FROM queue_dedup WHERE queue_id = $1 AND dedup_key = $2`, q.ID, m.DedupID).Scan(&first); err != nil {
		return false, err
	}
	m.ID, m.Duplicate, m.Seq = first, true, 0
	// The first message may be gone (deleted): then Seq stays 0.
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM queue_messages WHERE id = $1`, first).Scan(&m.Seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	return true, nil
}

// ReceiveMessages leases up to max visible messages, oldest first, moving
// those already received MaxReceiveCount times to the dead-letter queue.
func (s *Store) ReceiveMessages(ctx context.Context, projectID, queueID string, max int, visibility time.Duration, now time.Time) ([]store.QueueMessage, error) {
	var out []store.QueueMessage
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = []store.QueueMessage{}
		q, err := s.queueInTx(ctx, tx, projectID, queueID)
		if err != nil {
			return err
		}
		pick := `SELECT id, receive_count FROM queue_messages WHERE queue_id = $1 AND visible_at <= $2 AND expires_at > $2 ORDER BY seq, id LIMIT $3`
		if q.FIFO {
			// A message is a candidate only while no earlier message of its
			// group is invisible (in flight or delayed). Receives of a FIFO
			// queue take turns (the queue row is locked on Postgres; SQLite
			// has one writer), so a skipped lock cannot let a later message
			// of a group overtake its head.
			pick = `SELECT m.id, m.receive_count FROM queue_messages m WHERE m.queue_id = $1 AND m.visible_at <= $2 AND m.expires_at > $2
				AND NOT EXISTS (SELECT 1 FROM queue_messages h WHERE h.queue_id = m.queue_id AND h.group_id = m.group_id
					AND h.seq < m.seq AND h.expires_at > $2 AND h.visible_at > $2)
				ORDER BY m.seq, m.id LIMIT $3`
			if s.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT id FROM queues WHERE id = $1 FOR UPDATE`, q.ID); err != nil {
					return err
				}
			}
		} else if s.dialect == Postgres {
			pick += ` FOR UPDATE SKIP LOCKED`
		}
		var dlq store.Queue
		hasDLQ := false
		if q.MaxReceiveCount > 0 && q.DeadLetterQueueID != "" {
			if dlq, err = s.queueInTx(ctx, tx, projectID, q.DeadLetterQueueID); err == nil {
				hasDLQ = true
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		seen := map[string]bool{} // with a zero visibility a leased message is visible again at once
		// Candidates that go to the dead-letter queue leave room for more:
		// look again, a bounded number of times.
		for round := 0; round < 10 && len(out) < max; round++ {
			type cand struct {
				id    string
				count int
			}
			var cands []cand
			err := scanAll(tx.QueryContext(ctx, pick, q.ID, ms(now), max-len(out)))(func(r *sql.Rows) error {
				var c cand
				if err := r.Scan(&c.id, &c.count); err != nil {
					return err
				}
				cands = append(cands, c)
				return nil
			})
			if err != nil {
				return err
			}
			fresh := 0
			for _, c := range cands {
				if seen[c.id] {
					continue
				}
				seen[c.id] = true
				fresh++
				if hasDLQ && c.count >= q.MaxReceiveCount {
					base, err := reserveSeq(ctx, tx, dlq.ID, 1)
					if err != nil {
						return err
					}
					dlqSeq := base + 1
					if _, err := tx.ExecContext(ctx, `UPDATE queue_messages SET queue_id = $1, seq = $2, visible_at = $3, receive_count = 0,
						receipt_handle = '', first_received_at = 0, source_queue_id = $4, expires_at = sent_at + $5, dedup_id = ''
						WHERE id = $6`, dlq.ID, dlqSeq, ms(now), q.ID, dlq.Retention.Milliseconds(), c.id); err != nil {
						return err
					}
					continue
				}
				m, err := scanMessage(tx.QueryRowContext(ctx, `UPDATE queue_messages SET receive_count = receive_count + 1, receipt_handle = $1,
					visible_at = $2, first_received_at = CASE WHEN first_received_at = 0 THEN $3 ELSE first_received_at END
					WHERE id = $4 RETURNING `+messageColumns, receiptHandle(), ms(now.Add(visibility)), ms(now), c.id))
				if err != nil {
					return err
				}
				out = append(out, m)
			}
			if fresh == 0 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receive messages: %w", notFound(err))
	}
	return out, nil
}

// DeleteMessage deletes the message whose current receipt handle is handle.
func (s *Store) DeleteMessage(ctx context.Context, projectID, queueID, handle string) error {
	if handle == "" {
		return fmt.Errorf("delete message: %w", store.ErrNotFound)
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM queue_messages WHERE receipt_handle = $1 AND queue_id = $2 AND project_id = $3`, handle, queueID, projectID)
	if err != nil {
		return fmt.Errorf("delete message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete message: %w", store.ErrNotFound)
	}
	return nil
}

// ChangeVisibility sets when the message whose current receipt handle is handle becomes visible.
func (s *Store) ChangeVisibility(ctx context.Context, projectID, queueID, handle string, visibleAt time.Time) error {
	if handle == "" {
		return fmt.Errorf("change visibility: %w", store.ErrNotFound)
	}
	res, err := s.writer.ExecContext(ctx, `UPDATE queue_messages SET visible_at = $1 WHERE receipt_handle = $2 AND queue_id = $3 AND project_id = $4`,
		ms(visibleAt), handle, queueID, projectID)
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("change visibility: %w", store.ErrNotFound)
	}
	return nil
}

// PurgeQueue deletes every message of a queue.
func (s *Store) PurgeQueue(ctx context.Context, projectID, queueID string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.queueInTx(ctx, tx, projectID, queueID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE queue_id = $1`, queueID)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge queue: %w", err)
	}
	return int(n), nil
}

// QueueCounts counts a queue's visible, in-flight and delayed messages.
func (s *Store) QueueCounts(ctx context.Context, projectID, queueID string, now time.Time) (store.QueueCounts, error) {
	var c store.QueueCounts
	if _, err := s.GetQueue(ctx, projectID, queueID); err != nil {
		return c, fmt.Errorf("queue counts: %w", err)
	}
	err := s.reader.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN visible_at <= $2 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN visible_at > $2 AND receive_count > 0 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN visible_at > $2 AND receive_count = 0 THEN 1 ELSE 0 END), 0)
		FROM queue_messages WHERE queue_id = $1 AND expires_at > $2`, queueID, ms(now)).Scan(&c.Visible, &c.InFlight, &c.Delayed)
	if err != nil {
		return c, fmt.Errorf("queue counts: %w", err)
	}
	return c, nil
}

// OldestQueueMessage reads the head of the queue_messages_order index,
// skipping only the expired messages the pruner has not removed yet.
func (s *Store) OldestQueueMessage(ctx context.Context, projectID, queueID string, now time.Time) (time.Time, bool, error) {
	var at int64
	err := s.reader.QueryRowContext(ctx, `SELECT sent_at FROM queue_messages WHERE queue_id = $1 AND project_id = $2 AND expires_at > $3
		ORDER BY seq LIMIT 1`, queueID, projectID, ms(now)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oldest queue message: %w", err)
	}
	return fromMS(at), true, nil
}

// RedriveDeadLetters moves up to max visible messages of a dead-letter queue
// back to their source queues (those that still exist in the project).
func (s *Store) RedriveDeadLetters(ctx context.Context, projectID, dlqID string, max int, now time.Time) ([]string, error) {
	var moved []string
	pick := `SELECT m.id, m.source_queue_id, q.retention_ms FROM queue_messages m JOIN queues q ON q.id = m.source_queue_id AND q.project_id = m.project_id
		WHERE m.queue_id = $1 AND m.project_id = $2 AND m.visible_at <= $3 AND m.expires_at > $3 ORDER BY m.seq, m.id LIMIT $4`
	if s.dialect == Postgres {
		pick += ` FOR UPDATE OF m SKIP LOCKED`
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		moved = []string{}
		if _, err := s.queueInTx(ctx, tx, projectID, dlqID); err != nil {
			return err
		}
		type cand struct {
			id, source string
			retention  int64
		}
		var cands []cand
		err := scanAll(tx.QueryContext(ctx, pick, dlqID, projectID, ms(now), max))(func(r *sql.Rows) error {
			var c cand
			if err := r.Scan(&c.id, &c.source, &c.retention); err != nil {
				return err
			}
			cands = append(cands, c)
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range cands {
			base, err := reserveSeq(ctx, tx, c.source, 1)
			if err != nil {
				return err
			}
			seq := base + 1
			if _, err := tx.ExecContext(ctx, `UPDATE queue_messages SET queue_id = $1, seq = $2, visible_at = $3, receive_count = 0,
				receipt_handle = '', first_received_at = 0, source_queue_id = '', expires_at = sent_at + $4 WHERE id = $5`,
				c.source, seq, ms(now), c.retention, c.id); err != nil {
				return err
			}
			moved = append(moved, c.source)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redrive dead letters: %w", err)
	}
	return moved, nil
}

// PruneQueueMessages deletes up to limit messages past their retention.
func (s *Store) PruneQueueMessages(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM queue_dedup WHERE sent_at <= $1`, ms(now.Add(-store.FIFODedupWindow))); err != nil {
			return err
		}
		ids, err := scanIDs(tx.QueryContext(ctx, `SELECT id FROM queue_messages WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`, ms(now), limit))
		if err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE `+s.idIn("id", 1), jsonList(ids)); err != nil {
			return err
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune queue messages: %w", err)
	}
	return n, nil
}

// NextVisibleAt returns the earliest visible_at of the queue's unexpired
// messages, from the (queue_id, visible_at) index.
func (s *Store) NextVisibleAt(ctx context.Context, projectID, queueID string, now time.Time) (time.Time, bool, error) {
	var at sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `SELECT MIN(m.visible_at) FROM queue_messages m JOIN queues q ON q.id = m.queue_id
		WHERE m.queue_id = $1 AND q.project_id = $2 AND m.expires_at > $3`, queueID, projectID, ms(now)).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next visible message: %w", err)
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(at.Int64), true, nil
}
