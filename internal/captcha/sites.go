package captcha

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

func decodeSite(rec store.CaptchaSite) (Site, error) {
	s := Site{ID: rec.ID, ProjectID: rec.ProjectID, Name: rec.Name, Vendor: rec.Vendor, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	if err := json.Unmarshal([]byte(rec.Keys), &s.Keys); err != nil {
		return s, fmt.Errorf("captcha site %s keys: %w", rec.ID, err)
	}
	if err := json.Unmarshal(rec.Settings, &s.Settings); err != nil {
		return s, fmt.Errorf("captcha site %s settings: %w", rec.ID, err)
	}
	return s, nil
}

func (s *Service) record(site Site) store.CaptchaSite {
	keys, _ := json.Marshal(site.Keys)
	settings, _ := json.Marshal(site.Settings)
	return store.CaptchaSite{ID: site.ID, ProjectID: site.ProjectID, Name: site.Name, Vendor: site.Vendor, Keys: string(keys),
		Settings: settings, CreatedAt: site.CreatedAt, UpdatedAt: site.UpdatedAt}
}

// checkEndpoints refuses endpoints the SSRF guard refuses.
func (s *Service) checkEndpoints(ctx context.Context, site Site) error {
	if s.Guard == nil {
		return nil
	}
	for i, e := range site.Settings.Endpoints {
		if err := s.Guard.CheckURL(ctx, e); err != nil {
			return fieldErr(fmt.Sprintf("settings.endpoints[%d]", i), "%v", err)
		}
	}
	return nil
}

// CreateSite validates and stores a site of projectID.
func (s *Service) CreateSite(ctx context.Context, projectID string, site Site) (Site, error) {
	if err := site.normalize(s.Vendors); err != nil {
		return site, err
	}
	if err := s.checkEndpoints(ctx, site); err != nil {
		return site, err
	}
	existing, err := s.Store.ListCaptchaSites(ctx, projectID)
	if err != nil {
		return site, err
	}
	if len(existing) >= MaxSitesPerProject {
		return site, ErrTooManySites
	}
	now := s.now().UTC()
	site.ID, site.ProjectID, site.CreatedAt, site.UpdatedAt = uuid.Must(uuid.NewV7()).String(), projectID, now, now
	if err := s.Store.CreateCaptchaSite(ctx, s.record(site)); err != nil {
		return site, err
	}
	return site, nil
}

// UpdateSite replaces a site's settings and keys. Keys left empty keep
// their stored value, so a client can send back what it read (secrets
// hidden) with one setting changed. The vendor cannot change.
func (s *Service) UpdateSite(ctx context.Context, projectID, id string, site Site) (Site, error) {
	old, err := s.GetSite(ctx, projectID, id)
	if err != nil {
		return site, err
	}
	if site.Vendor == "" {
		site.Vendor = old.Vendor
	}
	if site.Vendor != old.Vendor {
		return site, fieldErr("vendor", "cannot be changed from %s; create a new site", old.Vendor)
	}
	keep := func(v *string, was string) {
		if *v == "" || *v == "***hidden***" {
			*v = was
		}
	}
	keep(&site.Keys.SiteKey, old.Keys.SiteKey)
	keep(&site.Keys.Secret, old.Keys.Secret)
	keep(&site.Keys.AppID, old.Keys.AppID)
	keep(&site.Keys.AppSecret, old.Keys.AppSecret)
	keep(&site.Keys.SecretID, old.Keys.SecretID)
	keep(&site.Keys.SecretKey, old.Keys.SecretKey)
	keep(&site.Keys.Region, old.Keys.Region)
	if err := site.normalize(s.Vendors); err != nil {
		return site, err
	}
	if err := s.checkEndpoints(ctx, site); err != nil {
		return site, err
	}
	site.ID, site.ProjectID, site.CreatedAt, site.UpdatedAt = old.ID, projectID, old.CreatedAt, s.now().UTC()
	if err := s.Store.UpdateCaptchaSite(ctx, s.record(site)); err != nil {
		return site, err
	}
	s.forgetSite(projectID)
	return site, nil
}

// GetSite reads a site of a project, with its keys.
func (s *Service) GetSite(ctx context.Context, projectID, id string) (Site, error) {
	rec, err := s.Store.GetCaptchaSite(ctx, projectID, id)
	if err != nil {
		return Site{}, err
	}
	return decodeSite(rec)
}

// Sites lists a project's sites, with their keys.
func (s *Service) Sites(ctx context.Context, projectID string) ([]Site, error) {
	recs, err := s.Store.ListCaptchaSites(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Site, 0, len(recs))
	for _, r := range recs {
		site, err := decodeSite(r)
		if err != nil {
			return nil, err
		}
		out = append(out, site)
	}
	return out, nil
}

// DeleteSite deletes a site.
func (s *Service) DeleteSite(ctx context.Context, projectID, id string) error {
	if err := s.Store.DeleteCaptchaSite(ctx, projectID, id); err != nil {
		return err
	}
	s.forgetSite(projectID)
	return nil
}

// PruneDRTickets forgets used DR tickets that can no longer be fresh.
func (s *Service) PruneDRTickets(ctx context.Context) error {
	return s.Store.PruneDRTickets(ctx, s.now().Add(-time.Minute))
}
