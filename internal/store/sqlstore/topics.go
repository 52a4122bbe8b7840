package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"carrier/internal/store"
)

const topicColumns = `id, project_id, name, fifo, content_dedup, attributes, tags, created_at, updated_at`

func scanTopic(row scanner) (store.Topic, error) {
	var t store.Topic
	var attrs, tags string
	var created, updated int64
	if err := row.Scan(&t.ID, &t.ProjectID, &t.Name, &t.FIFO, &t.ContentDedup, &attrs, &tags, &created, &updated); err != nil {
		return t, err
	}
	t.Attributes, t.Tags = map[string]string{}, map[string]string{}
	json.Unmarshal([]byte(attrs), &t.Attributes)
	json.Unmarshal([]byte(tags), &t.Tags)
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return t, nil
}

func jsonMap(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// CreateTopic inserts a topic.
func (s *Store) CreateTopic(ctx context.Context, t store.Topic) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO topics (`+topicColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			t.ID, t.ProjectID, t.Name, t.FIFO, t.FIFO && t.ContentDedup, jsonMap(t.Attributes), jsonMap(t.Tags), ms(t.CreatedAt), ms(t.UpdatedAt))
		return conflict(err)
	})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	return nil
}

// TopicByName reads one topic of a project.
func (s *Store) TopicByName(ctx context.Context, projectID, name string) (store.Topic, error) {
	t, err := scanTopic(s.reader.QueryRowContext(ctx, `SELECT `+topicColumns+` FROM topics WHERE name = $1 AND project_id = $2`, name, projectID))
	if err != nil {
		return t, fmt.Errorf("get topic: %w", notFound(err))
	}
	return t, nil
}

// ListTopics lists a project's topics by name.
func (s *Store) ListTopics(ctx context.Context, projectID string) ([]store.Topic, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+topicColumns+` FROM topics WHERE project_id = $1 ORDER BY name`, projectID)
	out := []store.Topic{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		t, err := scanTopic(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return out, nil
}

// UpdateTopic writes a topic's changeable fields.
func (s *Store) UpdateTopic(ctx context.Context, t store.Topic) error {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE topics SET content_dedup = $1, attributes = $2, tags = $3, updated_at = $4 WHERE name = $5 AND project_id = $6`,
			t.FIFO && t.ContentDedup, jsonMap(t.Attributes), jsonMap(t.Tags), ms(t.UpdatedAt), t.Name, t.ProjectID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update topic: %w", err)
	}
	return nil
}

// DeleteTopic removes a topic and the subscriptions named (with their
// deliveries), all in one transaction.
func (s *Store) DeleteTopic(ctx context.Context, projectID, name string, subscriptionIDs []string) error {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM topics WHERE name = $1 AND project_id = $2`, name, projectID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		for _, id := range subscriptionIDs {
			if err := deleteSubscription(ctx, tx, projectID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if len(subscriptionIDs) > 0 {
			return bumpVersion(ctx, tx)
		}
		return nil
	})
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	return nil
}
