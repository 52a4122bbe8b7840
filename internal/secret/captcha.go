package secret

import (
	"context"

	"carrier/internal/store"
)

func siteAD(id string) string { return "captcha_site:" + id + ":keys" }

// CreateCaptchaSite stores c with its vendor keys sealed.
func (s *Store) CreateCaptchaSite(ctx context.Context, c store.CaptchaSite) error {
	var err error
	if c.Keys, err = s.keys.Seal(c.Keys, siteAD(c.ID)); err != nil {
		return err
	}
	return s.Store.CreateCaptchaSite(ctx, c)
}

// UpdateCaptchaSite stores c with its vendor keys sealed.
func (s *Store) UpdateCaptchaSite(ctx context.Context, c store.CaptchaSite) error {
	var err error
	if c.Keys, err = s.keys.Seal(c.Keys, siteAD(c.ID)); err != nil {
		return err
	}
	return s.Store.UpdateCaptchaSite(ctx, c)
}

// GetCaptchaSite reads a site with its vendor keys opened.
func (s *Store) GetCaptchaSite(ctx context.Context, projectID, id string) (store.CaptchaSite, error) {
	c, err := s.Store.GetCaptchaSite(ctx, projectID, id)
	if err != nil {
		return c, err
	}
	c.Keys, _, err = s.keys.Open(c.Keys, siteAD(c.ID))
	return c, err
}

// ListCaptchaSites lists sites with their vendor keys opened.
func (s *Store) ListCaptchaSites(ctx context.Context, projectID string) ([]store.CaptchaSite, error) {
	cs, err := s.Store.ListCaptchaSites(ctx, projectID)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		if cs[i].Keys, _, err = s.keys.Open(cs[i].Keys, siteAD(cs[i].ID)); err != nil {
			return nil, err
		}
	}
	return cs, nil
}
