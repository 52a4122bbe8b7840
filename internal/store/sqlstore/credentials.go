package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"carrier/internal/store"
)

const credentialColumns = `access_key_id, project_id, secret, created_at, revoked_at`

func scanCredential(row scanner) (store.SQSCredential, error) {
	var c store.SQSCredential
	var created, revoked int64
	if err := row.Scan(&c.AccessKeyID, &c.ProjectID, &c.Secret, &created, &revoked); err != nil {
		return c, err
	}
	c.CreatedAt, c.RevokedAt = fromMS(created), fromMSPtr(revoked)
	return c, nil
}

// CreateSQSCredential inserts an SQS credential.
func (s *Store) CreateSQSCredential(ctx context.Context, c store.SQSCredential) error {
	_, err := s.writer.ExecContext(ctx, `INSERT INTO sqs_credentials (`+credentialColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		c.AccessKeyID, c.ProjectID, c.Secret, ms(c.CreatedAt), msPtr(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("create sqs credential: %w", conflict(err))
	}
	return nil
}

// SQSCredential finds an unrevoked credential by access key id.
func (s *Store) SQSCredential(ctx context.Context, accessKeyID string) (store.SQSCredential, error) {
	c, err := scanCredential(s.reader.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM sqs_credentials WHERE access_key_id = $1 AND revoked_at = 0`, accessKeyID))
	if err != nil {
		return c, fmt.Errorf("get sqs credential: %w", notFound(err))
	}
	return c, nil
}

// ListSQSCredentials lists a project's unrevoked credentials, oldest first.
func (s *Store) ListSQSCredentials(ctx context.Context, projectID string) ([]store.SQSCredential, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+credentialColumns+` FROM sqs_credentials WHERE project_id = $1 AND revoked_at = 0
		ORDER BY created_at, access_key_id`, projectID)
	out := []store.SQSCredential{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		c, err := scanCredential(r)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sqs credentials: %w", err)
	}
	return out, nil
}

// RevokeSQSCredential revokes a project's credential.
func (s *Store) RevokeSQSCredential(ctx context.Context, projectID, accessKeyID string, at time.Time) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE sqs_credentials SET revoked_at = $1 WHERE access_key_id = $2 AND project_id = $3 AND revoked_at = 0`,
		ms(at), accessKeyID, projectID)
	if err != nil {
		return fmt.Errorf("revoke sqs credential: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke sqs credential: %w", store.ErrNotFound)
	}
	return nil
}

// AllSQSCredentials lists every credential, revoked or not.
func (s *Store) AllSQSCredentials(ctx context.Context) ([]store.SQSCredential, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+credentialColumns+` FROM sqs_credentials ORDER BY created_at, access_key_id`)
	out := []store.SQSCredential{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		c, err := scanCredential(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("all sqs credentials: %w", err)
	}
	return out, nil
}

// ReplaceSQSCredentialSecret writes a credential's secret where it still is old.
func (s *Store) ReplaceSQSCredentialSecret(ctx context.Context, accessKeyID, old, secret string) error {
	return replaceWhere(ctx, s, "replace sqs credential secret", `UPDATE sqs_credentials SET secret = $3 WHERE access_key_id = $1 AND secret = $2`,
		`SELECT 1 FROM sqs_credentials WHERE access_key_id = $1`, accessKeyID, old, secret)
}

// replaceWhere runs update (which compares the old value) and, when it
// changed nothing, tells with exists whether the row is gone (ErrNotFound)
// or holds another value now (ErrConflict).
func replaceWhere(ctx context.Context, s *Store, what, update, exists, id, old, value string) error {
	res, err := s.writer.ExecContext(ctx, update, id, old, value)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var one int
	if err := s.writer.QueryRowContext(ctx, exists, id).Scan(&one); err != nil {
		return fmt.Errorf("%s: %w", what, notFound(err))
	}
	return fmt.Errorf("%s: %w", what, store.ErrConflict)
}
