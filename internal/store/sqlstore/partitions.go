package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"carrier/internal/store"
)

// On PostgreSQL, attempts are partitioned by range of delivery_id, one UTC
// day per partition (migration 025). Delivery ids are UUIDv7: their text
// begins with the creation time in milliseconds, so a day of deliveries is a
// range of ids, and a partition's bounds are times written as ids.

// partitionDay is the width of one attempts partition.
const partitionDay = 24 * time.Hour

// maxPartitionSteps bounds the partitions one call creates or drops.
const maxPartitionSteps = 400

// MaintainPartitions creates the attempts partitions of every day until
// now+ahead, and, when retention is positive, drops those whose every
// delivery was created before now-retention. The attempts of a dropped
// partition that the pruner keeps (their event still has a pending or
// retrying delivery) are first moved to the default partition, which the
// pruner deletes from row by row. On SQLite, which has one attempts table
// pruned in batches with its deliveries, there is nothing to do.
func (s *Store) MaintainPartitions(ctx context.Context, now time.Time, ahead, retention time.Duration) (store.PartitionReport, error) {
	var rep store.PartitionReport
	if s.dialect != Postgres {
		return rep, nil
	}
	parts, err := s.attemptPartitions(ctx)
	if err != nil {
		return rep, err
	}
	// New days start where the newest partition ends, so they never overlap.
	var top time.Time
	for _, p := range parts {
		if !p.hi.IsZero() && p.hi.After(top) {
			top = p.hi
		}
	}
	if top.IsZero() {
		top = now.UTC().Truncate(partitionDay)
	}
	var errs []error
	for lo := top; lo.Before(now.Add(ahead)) && len(rep.Created) < maxPartitionSteps; lo = lo.Add(partitionDay) {
		name := "attempts_p" + lo.UTC().Format("20060102")
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := lockTimeout(ctx, tx); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF attempts FOR VALUES FROM ('%s') TO ('%s')`,
				name, idAt(lo), idAt(lo.Add(partitionDay))))
			return err
		})
		if err != nil {
			// Most likely the default partition holds attempts of that day
			// (no partition was made in time): they stay there, and the
			// next days are still created.
			errs = append(errs, fmt.Errorf("create partition %s: %w", name, err))
			continue
		}
		rep.Created = append(rep.Created, name)
	}
	if retention <= 0 {
		return rep, errors.Join(errs...)
	}
	cutoff := now.Add(-retention)
	for _, p := range parts {
		if p.isDefault || p.hi.IsZero() || p.hi.After(cutoff) || len(rep.Dropped) >= maxPartitionSteps {
			continue
		}
		kept, err := s.dropAttemptPartition(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("drop partition %s: %w", p.name, err))
			continue
		}
		rep.Dropped = append(rep.Dropped, p.name)
		rep.Kept += kept
	}
	return rep, errors.Join(errs...)
}

// dropAttemptPartition detaches p, moves the attempts the pruner keeps into
// the default partition (p's range is no longer covered, so they go there),
// and drops p, in one transaction: the lock on attempts lasts as long as
// copying the kept rows, which are few.
func (s *Store) dropAttemptPartition(ctx context.Context, p attemptPartition) (int, error) {
	var kept int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := lockTimeout(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE attempts DETACH PARTITION `+p.name); err != nil {
			return err
		}
		// Kept as the pruner keeps them: deliveries of events that still
		// have a delivery pending or retrying (found from deliveries_backlog).
		inRange := `d.id < $1`
		args := []any{idAt(p.hi)}
		if !p.lo.IsZero() {
			inRange += ` AND d.id >= $2`
			args = append(args, idAt(p.lo))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO attempts SELECT * FROM `+p.name+` WHERE delivery_id IN (
			SELECT d.id FROM deliveries d WHERE `+inRange+` AND d.event_id IN (
				SELECT event_id FROM deliveries WHERE state IN ('pending', 'retrying')))`, args...)
		if err != nil {
			return err
		}
		kept, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DROP TABLE `+p.name)
		return err
	})
	return int(kept), err
}

// lockTimeout makes tx give up on a lock it waits for after 2 s. Creating and
// detaching a partition lock all of attempts: waiting behind a long read,
// they would hold up every attempt recorded after them. Given up, they are
// tried again at the next round, days ahead of need.
func lockTimeout(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '2s'`)
	return err
}

type attemptPartition struct {
	name      string
	lo, hi    time.Time // zero: MINVALUE, MAXVALUE (or not a time)
	isDefault bool
}

var boundsRE = regexp.MustCompile(`^FOR VALUES FROM \((.*)\) TO \((.*)\)$`)

// attemptPartitions lists the partitions of attempts with their bounds.
func (s *Store) attemptPartitions(ctx context.Context) ([]attemptPartition, error) {
	rows, err := s.writer.QueryContext(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'attempts'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var out []attemptPartition
	err = scanAll(rows, nil)(func(r *sql.Rows) error {
		var p attemptPartition
		var bound string
		if err := r.Scan(&p.name, &bound); err != nil {
			return err
		}
		if bound == "DEFAULT" {
			p.isDefault = true
		} else if m := boundsRE.FindStringSubmatch(bound); m != nil {
			p.lo, p.hi = boundTime(m[1]), boundTime(m[2])
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// idAt is the smallest UUIDv7 text of millisecond t: the bound of a range of
// ids that starts at t.
func idAt(t time.Time) string {
	h := fmt.Sprintf("%012x", t.UnixMilli())
	return h[:8] + "-" + h[8:] + "-0000-0000-000000000000"
}

// boundTime reads the time of a bound written by idAt ('…'), or zero.
func boundTime(bound string) time.Time {
	if len(bound) < 15 || bound[0] != '\'' || bound[9] != '-' {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(bound[1:9]+bound[10:14], 16, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
