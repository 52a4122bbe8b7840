package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"carrier/internal/store"
)

const captchaSiteColumns = `id, project_id, name, vendor, keys, settings, created_at, updated_at`

func scanCaptchaSite(row scanner) (store.CaptchaSite, error) {
	var c store.CaptchaSite
	var settings string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.ProjectID, &c.Name, &c.Vendor, &c.Keys, &settings, &created, &updated); err != nil {
		return c, err
	}
	c.Settings, c.CreatedAt, c.UpdatedAt = json.RawMessage(settings), fromMS(created), fromMS(updated)
	return c, nil
}

// CreateCaptchaSite inserts a site.
func (s *Store) CreateCaptchaSite(ctx context.Context, c store.CaptchaSite) error {
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO captcha_sites (`+captchaSiteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		c.ID, c.ProjectID, c.Name, c.Vendor, c.Keys, string(c.Settings), ms(c.CreatedAt), ms(c.UpdatedAt)); err != nil {
		return fmt.Errorf("create captcha site: %w", conflict(err))
	}
	return nil
}

// UpdateCaptchaSite writes a site's name, keys and settings.
func (s *Store) UpdateCaptchaSite(ctx context.Context, c store.CaptchaSite) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE captcha_sites SET name = $3, keys = $4, settings = $5, updated_at = $6 WHERE id = $1 AND project_id = $2`,
		c.ID, c.ProjectID, c.Name, c.Keys, string(c.Settings), ms(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("update captcha site: %w", conflict(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update captcha site: %w", store.ErrNotFound)
	}
	return nil
}

// GetCaptchaSite reads one site of a project.
func (s *Store) GetCaptchaSite(ctx context.Context, projectID, id string) (store.CaptchaSite, error) {
	c, err := scanCaptchaSite(s.reader.QueryRowContext(ctx, `SELECT `+captchaSiteColumns+` FROM captcha_sites WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("get captcha site: %w", store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get captcha site: %w", err)
	}
	return c, nil
}

// ListCaptchaSites returns a project's sites, oldest first.
func (s *Store) ListCaptchaSites(ctx context.Context, projectID string) ([]store.CaptchaSite, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+captchaSiteColumns+` FROM captcha_sites WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	out := []store.CaptchaSite{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		c, err := scanCaptchaSite(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list captcha sites: %w", err)
	}
	return out, nil
}

// DeleteCaptchaSite deletes a site.
func (s *Store) DeleteCaptchaSite(ctx context.Context, projectID, id string) error {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM captcha_sites WHERE id = $1 AND project_id = $2`, id, projectID)
	if err != nil {
		return fmt.Errorf("delete captcha site: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete captcha site: %w", store.ErrNotFound)
	}
	return nil
}

// UseDRTicket records a disaster-recovery ticket as used, once.
func (s *Store) UseDRTicket(ctx context.Context, hash, projectID, siteID string, now, expires time.Time) (bool, error) {
	res, err := s.writer.ExecContext(ctx, `INSERT INTO captcha_dr_tickets (hash, project_id, site_id, used_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO NOTHING`, hash, projectID, siteID, ms(now), ms(expires))
	if err != nil {
		return false, fmt.Errorf("use dr ticket: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("use dr ticket: %w", err)
	}
	return n == 1, nil
}

// PruneDRTickets forgets tickets that expired before before.
func (s *Store) PruneDRTickets(ctx context.Context, before time.Time) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM captcha_dr_tickets WHERE expires_at < $1`, ms(before)); err != nil {
		return fmt.Errorf("prune dr tickets: %w", err)
	}
	return nil
}

// AllCaptchaSites lists every site of every project.
func (s *Store) AllCaptchaSites(ctx context.Context) ([]store.CaptchaSite, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+captchaSiteColumns+` FROM captcha_sites ORDER BY created_at, id`)
	out := []store.CaptchaSite{}
	err = scanAll(rows, err)(func(r *sql.Rows) error {
		c, err := scanCaptchaSite(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("all captcha sites: %w", err)
	}
	return out, nil
}

// ReplaceCaptchaSiteKeys writes a site's keys where they still are old.
func (s *Store) ReplaceCaptchaSiteKeys(ctx context.Context, id, old, keys string) error {
	return replaceWhere(ctx, s, "replace captcha site keys", `UPDATE captcha_sites SET keys = $3 WHERE id = $1 AND keys = $2`,
		`SELECT 1 FROM captcha_sites WHERE id = $1`, id, old, keys)
}
