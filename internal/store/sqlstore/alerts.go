package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"carrier/internal/store"
)

const alertRuleColumns = `id, project_id, name, spec, enabled, created_at, updated_at`

func scanAlertRule(row scanner) (store.AlertRule, error) {
	var r store.AlertRule
	var spec string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.ProjectID, &r.Name, &spec, &r.Enabled, &created, &updated); err != nil {
		return r, err
	}
	r.Spec, r.CreatedAt, r.UpdatedAt = json.RawMessage(spec), fromMS(created), fromMS(updated)
	return r, nil
}

// CreateAlertRule inserts a rule.
func (s *Store) CreateAlertRule(ctx context.Context, r store.AlertRule) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO alert_rules (`+alertRuleColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.ProjectID, r.Name, string(r.Spec), r.Enabled, ms(r.CreatedAt), ms(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create alert rule: %w", conflict(err))
	}
	return nil
}

// UpdateAlertRule writes a rule's name, spec and enabled flag.
func (s *Store) UpdateAlertRule(ctx context.Context, r store.AlertRule) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE alert_rules SET name = $3, spec = $4, enabled = $5, updated_at = $6 WHERE id = $1 AND project_id = $2`,
		r.ID, r.ProjectID, r.Name, string(r.Spec), r.Enabled, ms(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("update alert rule: %w", conflict(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update alert rule: %w", store.ErrNotFound)
	}
	return nil
}

// GetAlertRule reads one rule of a project.
func (s *Store) GetAlertRule(ctx context.Context, projectID, id string) (store.AlertRule, error) {
	r, err := scanAlertRule(s.reader.QueryRowContext(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("get alert rule: %w", store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get alert rule: %w", err)
	}
	return r, nil
}

// ListAlertRules returns a project's rules, oldest first.
func (s *Store) ListAlertRules(ctx context.Context, projectID string) ([]store.AlertRule, error) {
	return s.alertRules(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules WHERE project_id = $1 ORDER BY created_at, id`, projectID)
}

// EnabledAlertRules returns the enabled rules of every project.
func (s *Store) EnabledAlertRules(ctx context.Context) ([]store.AlertRule, error) {
	return s.alertRules(ctx, `SELECT `+alertRuleColumns+` FROM alert_rules WHERE enabled ORDER BY project_id, created_at, id`)
}

func (s *Store) alertRules(ctx context.Context, q string, args ...any) ([]store.AlertRule, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	out := []store.AlertRule{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		rule, err := scanAlertRule(r)
		out = append(out, rule)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	return out, nil
}

// DeleteAlertRule deletes a rule and ends its current alerts.
func (s *Store) DeleteAlertRule(ctx context.Context, projectID, id string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET ended_at = $2, updated_at = $2 WHERE rule_id = $1 AND ended_at = 0`, id, ms(now)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM alert_cursors WHERE rule_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete alert rule: %w", err)
	}
	return nil
}

const alertColumns = `id, project_id, rule_id, item, status, severity, state, started_at, updated_at, ended_at`

func scanAlert(row scanner) (store.Alert, error) {
	var a store.Alert
	var state string
	var started, updated, ended int64
	if err := row.Scan(&a.ID, &a.ProjectID, &a.RuleID, &a.Item, &a.Status, &a.Severity, &state, &started, &updated, &ended); err != nil {
		return a, err
	}
	a.State, a.StartedAt, a.UpdatedAt, a.EndedAt = json.RawMessage(state), fromMS(started), fromMS(updated), fromMSPtr(ended)
	return a, nil
}

func (s *Store) alerts(ctx context.Context, q string, args ...any) ([]store.Alert, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	out := []store.Alert{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		a, err := scanAlert(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// CurrentAlerts returns every alert not yet ended. It reads the writer, so
// an evaluator round always starts from what the last round committed.
func (s *Store) CurrentAlerts(ctx context.Context) ([]store.Alert, error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE ended_at = 0`)
	out := []store.Alert{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		a, err := scanAlert(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("current alerts: %w", err)
	}
	return out, nil
}

// ListAlerts returns a project's alerts, newest first.
func (s *Store) ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error) {
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE project_id = $1`
	args := []any{f.ProjectID}
	if f.RuleID != "" {
		args = append(args, f.RuleID)
		q += fmt.Sprintf(` AND rule_id = $%d`, len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		q += fmt.Sprintf(` AND status = $%d`, len(args))
	}
	if f.Current {
		q += ` AND ended_at = 0`
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY started_at DESC, id DESC LIMIT $%d`, len(args))
	return s.alerts(ctx, q, args...)
}

// GetAlert returns an alert of a project and its transitions.
func (s *Store) GetAlert(ctx context.Context, projectID, id string) (store.Alert, []store.AlertTransition, error) {
	a, err := scanAlert(s.reader.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, nil, fmt.Errorf("get alert: %w", store.ErrNotFound)
	}
	if err != nil {
		return a, nil, fmt.Errorf("get alert: %w", err)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, alert_id, project_id, at, from_status, to_status, severity, value, event_type, event_id, note
		FROM alert_transitions WHERE alert_id = $1 ORDER BY at, id`, id)
	ts := []store.AlertTransition{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var t store.AlertTransition
		var at int64
		var v sql.NullFloat64
		if err := r.Scan(&t.ID, &t.AlertID, &t.ProjectID, &at, &t.From, &t.To, &t.Severity, &v, &t.EventType, &t.EventID, &t.Note); err != nil {
			return err
		}
		t.At = fromMS(at)
		if v.Valid {
			t.Value = &v.Float64
		}
		ts = append(ts, t)
		return nil
	})
	if err != nil {
		return a, nil, fmt.Errorf("alert transitions: %w", err)
	}
	return a, ts, nil
}

// ApplyAlertChanges writes one evaluation round in one transaction.
func (s *Store) ApplyAlertChanges(ctx context.Context, changes []store.AlertChange, cursors []store.AlertCursor) error {
	if len(changes) == 0 && len(cursors) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range changes {
			a := c.Alert
			if a.ID == "" {
				// events only
			} else if c.Delete {
				if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id = $1`, a.ID); err != nil {
					return err
				}
			} else if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (`+alertColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT (id) DO UPDATE SET status = excluded.status, severity = excluded.severity, state = excluded.state,
				started_at = excluded.started_at, updated_at = excluded.updated_at, ended_at = excluded.ended_at`,
				a.ID, a.ProjectID, a.RuleID, a.Item, a.Status, a.Severity, string(a.State), ms(a.StartedAt), ms(a.UpdatedAt), msPtr(a.EndedAt)); err != nil {
				return fmt.Errorf("alert %s: %w", a.ID, err)
			}
			for _, t := range c.Transitions {
				var v any
				if t.Value != nil {
					v = *t.Value
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO alert_transitions (id, alert_id, project_id, at, from_status, to_status, severity, value, event_type, event_id, note)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
					t.ID, t.AlertID, t.ProjectID, ms(t.At), t.From, t.To, t.Severity, v, t.EventType, t.EventID, t.Note); err != nil {
					return fmt.Errorf("alert transition: %w", err)
				}
			}
			for _, e := range c.Events {
				if err := insertOutbox(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		for _, cur := range cursors {
			if _, err := tx.ExecContext(ctx, `INSERT INTO alert_cursors (rule_id, at, event_id) VALUES ($1, $2, $3)
				ON CONFLICT (rule_id) DO UPDATE SET at = excluded.at, event_id = excluded.event_id`, cur.RuleID, ms(cur.At), cur.EventID); err != nil {
				return fmt.Errorf("alert cursor: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply alert changes: %w", err)
	}
	return nil
}

// AlertCursors returns where each event rule has read up to.
func (s *Store) AlertCursors(ctx context.Context) ([]store.AlertCursor, error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT rule_id, at, event_id FROM alert_cursors`)
	out := []store.AlertCursor{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var c store.AlertCursor
		var at int64
		if err := r.Scan(&c.RuleID, &at, &c.EventID); err != nil {
			return err
		}
		c.At = fromMS(at)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alert cursors: %w", err)
	}
	return out, nil
}

// RecordProbe stores a probe's reading and returns the gauge as stored.
func (s *Store) RecordProbe(ctx context.Context, g store.Gauge) (store.Gauge, error) {
	var q string
	if g.OK {
		q = `INSERT INTO gauges (project_id, name, item, value, ok, failures, error, observed_at) VALUES ($1, $2, $3, $4, TRUE, 0, $6, $5)
			ON CONFLICT (project_id, name, item) DO UPDATE SET value = excluded.value, ok = TRUE, failures = 0, error = excluded.error, observed_at = excluded.observed_at`
	} else {
		q = `INSERT INTO gauges (project_id, name, item, value, ok, failures, error, observed_at) VALUES ($1, $2, $3, $4, FALSE, 1, $6, $5)
			ON CONFLICT (project_id, name, item) DO UPDATE SET ok = FALSE, failures = gauges.failures + 1, error = excluded.error, observed_at = excluded.observed_at`
	}
	if g.OK {
		g.Error = ""
	} else {
		g.Value = 0 // kept only on a first reading; a failed probe never replaces a value
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q, g.ProjectID, g.Name, g.Item, g.Value, ms(g.ObservedAt), g.Error); err != nil {
			return err
		}
		var observed int64
		return tx.QueryRowContext(ctx, `SELECT value, ok, failures, error, observed_at FROM gauges WHERE project_id = $1 AND name = $2 AND item = $3`,
			g.ProjectID, g.Name, g.Item).Scan(&g.Value, &g.OK, &g.Failures, &g.Error, &observed)
	})
	if err != nil {
		return g, fmt.Errorf("record probe %s: %w", g.Name, err)
	}
	return g, nil
}

// ListGauges returns every gauge of a name.
func (s *Store) ListGauges(ctx context.Context, name string) ([]store.Gauge, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT project_id, name, item, value, ok, failures, error, observed_at FROM gauges WHERE name = $1`, name)
	out := []store.Gauge{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var g store.Gauge
		var at int64
		if err := r.Scan(&g.ProjectID, &g.Name, &g.Item, &g.Value, &g.OK, &g.Failures, &g.Error, &at); err != nil {
			return err
		}
		g.ObservedAt = fromMS(at)
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list gauges: %w", err)
	}
	return out, nil
}

// AddSamples writes bucketed readings; the first reading of a bucket stays.
func (s *Store) AddSamples(ctx context.Context, samples []store.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, x := range samples {
			if _, err := tx.ExecContext(ctx, `INSERT INTO samples (project_id, series, item, bucket, value, taken_at) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (series, project_id, item, bucket) DO NOTHING`, x.ProjectID, x.Series, x.Item, ms(x.Bucket), x.Value, ms(x.TakenAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add samples: %w", err)
	}
	return nil
}

// SamplesSince returns a series' readings from since on, oldest first.
func (s *Store) SamplesSince(ctx context.Context, series string, since time.Time) ([]store.Sample, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT project_id, series, item, bucket, value, taken_at FROM samples WHERE series = $1 AND bucket >= $2 ORDER BY bucket`, series, ms(since))
	out := []store.Sample{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var x store.Sample
		var b, taken int64
		if err := r.Scan(&x.ProjectID, &x.Series, &x.Item, &b, &x.Value, &taken); err != nil {
			return err
		}
		x.Bucket, x.TakenAt = fromMS(b), fromMS(taken)
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("samples %s: %w", series, err)
	}
	return out, nil
}

// PruneSamples deletes readings older than before.
func (s *Store) PruneSamples(ctx context.Context, before time.Time) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM samples WHERE bucket < $1`, ms(before)); err != nil {
		return fmt.Errorf("prune samples: %w", err)
	}
	return nil
}

// TaskOutcomes counts the tasks completed in [since, until), by project,
// status and error code (through the tasks_completed index).
func (s *Store) TaskOutcomes(ctx context.Context, since, until time.Time) ([]store.TaskOutcomeCount, error) {
	end := int64(math.MaxInt64)
	if !until.IsZero() {
		end = ms(until)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT project_id, status, error_code, COUNT(*), COALESCE(SUM(completed_at - created_at), 0),
		COALESCE(SUM(CASE WHEN cost <> '' THEN CAST(cost AS DOUBLE PRECISION) ELSE 0 END), 0)
		FROM tasks WHERE completed_at >= $1 AND completed_at > 0 AND completed_at < $2 GROUP BY project_id, status, error_code`, ms(since), end)
	out := []store.TaskOutcomeCount{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var c store.TaskOutcomeCount
		var sum int64
		if err := r.Scan(&c.ProjectID, &c.Status, &c.ErrorCode, &c.Count, &sum, &c.Cost); err != nil {
			return err
		}
		c.Latency = time.Duration(sum) * time.Millisecond
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("task outcomes: %w", err)
	}
	return out, nil
}

// TaskLatencies returns the latencies of up to limit tasks of a project
// solved from since on, newest first.
func (s *Store) TaskLatencies(ctx context.Context, projectID string, since time.Time, limit int) ([]time.Duration, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT completed_at - created_at FROM tasks
		WHERE completed_at >= $1 AND completed_at > 0 AND project_id = $2 AND status = $3 ORDER BY completed_at DESC LIMIT $4`,
		ms(since), projectID, store.TaskSolved, limit)
	out := []time.Duration{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var v int64
		if err := r.Scan(&v); err != nil {
			return err
		}
		out = append(out, time.Duration(v)*time.Millisecond)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("task latencies: %w", err)
	}
	return out, nil
}

// SubscriptionBacklogs returns every subscription's backlog (through the
// deliveries_backlog partial index) and attempt counters.
func (s *Store) SubscriptionBacklogs(ctx context.Context) ([]store.SubscriptionBacklog, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT s.project_id, s.id, s.name, COALESCE(b.depth, 0), COALESCE(b.oldest, 0),
		s.successful_deliveries, s.failed_deliveries, s.active
		FROM subscriptions s LEFT JOIN (
			SELECT subscription_id, COUNT(*) AS depth, MIN(created_at) AS oldest FROM deliveries
			WHERE state IN ('pending', 'retrying') GROUP BY subscription_id
		) b ON b.subscription_id = s.id`)
	out := []store.SubscriptionBacklog{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var b store.SubscriptionBacklog
		var oldest int64
		if err := r.Scan(&b.ProjectID, &b.SubscriptionID, &b.Name, &b.Depth, &oldest, &b.Delivered, &b.Failed, &b.Active); err != nil {
			return err
		}
		b.OldestAt = fromMS(oldest)
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscription backlogs: %w", err)
	}
	return out, nil
}

// QueueBacklogs returns every pull queue's unexpired messages and the send
// time of the oldest.
func (s *Store) QueueBacklogs(ctx context.Context, now time.Time) ([]store.QueueBacklog, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT q.project_id, q.id, q.name, COUNT(m.id), COALESCE(MIN(m.sent_at), 0)
		FROM queues q LEFT JOIN queue_messages m ON m.queue_id = q.id AND m.expires_at > $1
		GROUP BY q.project_id, q.id, q.name`, ms(now))
	out := []store.QueueBacklog{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var b store.QueueBacklog
		var oldest int64
		if err := r.Scan(&b.ProjectID, &b.QueueID, &b.Name, &b.Messages, &oldest); err != nil {
			return err
		}
		b.OldestAt = fromMS(oldest)
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue backlogs: %w", err)
	}
	return out, nil
}

// DeadLettersSince counts each project's dead letters recorded from since
// on and not redriven (a pingback that beat its submit answer is
// dead-lettered and redriven at once: no one needs to hear of it).
func (s *Store) DeadLettersSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT project_id, COUNT(*) FROM dead_letters WHERE created_at >= $1 AND status <> $2 GROUP BY project_id`, ms(since), store.DeadLetterRedriven)
	out := map[string]int64{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		var p string
		var n int64
		if err := r.Scan(&p, &n); err != nil {
			return err
		}
		out[p] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters since: %w", err)
	}
	return out, nil
}

// EventsAfter returns up to limit events of the given types after the
// cursor (at, id), in (created_at, id) order, through events_project.
// eventsAfterQuery reads the events of n types ($5…) of project $4 after the
// position ($1 created_at, $2 id), at most $3, in order: the first $3 of each
// type, each read from events_type in order (the project and the type fixed,
// so the index gives the order and starts at the position), merged. However
// many events of other types the project has, none is read.
func eventsAfterQuery(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`SELECT * FROM (SELECT `+eventColumns+` FROM events
			WHERE project_id = $4 AND type = $%d AND created_at >= $1 AND (created_at > $1 OR id > $2)
			ORDER BY created_at, id LIMIT $3) AS t%d`, i+5, i)
	}
	return `SELECT ` + eventColumns + ` FROM (` + strings.Join(parts, " UNION ALL ") + `) AS e ORDER BY created_at, id LIMIT $3`
}

func (s *Store) EventsAfter(ctx context.Context, projectID string, types []string, at time.Time, id string, limit int) ([]store.Event, error) {
	if len(types) == 0 || limit <= 0 {
		return []store.Event{}, nil
	}
	args := []any{ms(at), id, limit, projectID}
	seen := map[string]bool{}
	for _, t := range types {
		if !seen[t] { // one read per type: a type twice would read its events twice
			seen[t] = true
			args = append(args, t)
		}
	}
	rows, err := s.reader.QueryContext(ctx, eventsAfterQuery(len(seen)), args...)
	out := []store.Event{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		e, err := scanEvent(r)
		out = append(out, e)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events after: %w", err)
	}
	return out, nil
}

const silenceColumns = `id, project_id, matchers, comment, created_by, starts_at, ends_at, created_at`

func scanSilence(row scanner) (store.Silence, error) {
	var x store.Silence
	var m string
	var starts, ends, created int64
	if err := row.Scan(&x.ID, &x.ProjectID, &m, &x.Comment, &x.CreatedBy, &starts, &ends, &created); err != nil {
		return x, err
	}
	x.Matchers, x.StartsAt, x.EndsAt, x.CreatedAt = json.RawMessage(m), fromMS(starts), fromMS(ends), fromMS(created)
	return x, nil
}

func (s *Store) silences(ctx context.Context, db *sql.DB, q string, args ...any) ([]store.Silence, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	out := []store.Silence{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		x, err := scanSilence(r)
		out = append(out, x)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	return out, nil
}

// CreateSilence stores a silence.
func (s *Store) CreateSilence(ctx context.Context, x store.Silence) error {
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO silences (`+silenceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		x.ID, x.ProjectID, string(x.Matchers), x.Comment, x.CreatedBy, ms(x.StartsAt), ms(x.EndsAt), ms(x.CreatedAt)); err != nil {
		return fmt.Errorf("create silence: %w", conflict(err))
	}
	return nil
}

// ListSilences returns a project's silences, newest first.
func (s *Store) ListSilences(ctx context.Context, projectID string, activeAt time.Time) ([]store.Silence, error) {
	return s.silences(ctx, s.reader, `SELECT `+silenceColumns+` FROM silences WHERE project_id = $1 AND ends_at > $2 ORDER BY created_at DESC, id DESC LIMIT 1000`,
		projectID, ms(activeAt))
}

// GetSilence reads one silence of a project.
func (s *Store) GetSilence(ctx context.Context, projectID, id string) (store.Silence, error) {
	x, err := scanSilence(s.reader.QueryRowContext(ctx, `SELECT `+silenceColumns+` FROM silences WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("get silence: %w", store.ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("get silence: %w", err)
	}
	return x, nil
}

// ExpireSilence ends a silence at now.
func (s *Store) ExpireSilence(ctx context.Context, projectID, id string, now time.Time) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE silences SET ends_at = CASE WHEN ends_at > $3 THEN $3 ELSE ends_at END WHERE id = $1 AND project_id = $2`, id, projectID, ms(now))
	if err != nil {
		return fmt.Errorf("expire silence: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("expire silence: %w", store.ErrNotFound)
	}
	return nil
}

// ActiveSilences returns every project's silences active at now. It reads
// the writer, so a silence created just before a round applies to it.
func (s *Store) ActiveSilences(ctx context.Context, now time.Time) ([]store.Silence, error) {
	return s.silences(ctx, s.writer, `SELECT `+silenceColumns+` FROM silences WHERE starts_at <= $1 AND ends_at > $1`, ms(now))
}
