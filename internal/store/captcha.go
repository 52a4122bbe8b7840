package store

import (
	"context"
	"encoding/json"
	"time"
)

// CaptchaSite is a site whose CAPTCHA tokens Carrier verifies. Keys are the
// vendor credentials as JSON (sealed at rest when at-rest encryption is on);
// Settings are its policy, deadline and thresholds, as the captcha package
// defines them.
type CaptchaSite struct {
	ID        string
	ProjectID string
	Name      string
	Vendor    string
	Keys      string
	Settings  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CaptchaStore keeps CAPTCHA sites and used disaster-recovery tickets.
type CaptchaStore interface {
	// CreateCaptchaSite inserts a site (ErrConflict when the project has one of that name).
	CreateCaptchaSite(ctx context.Context, s CaptchaSite) error
	// UpdateCaptchaSite writes a site's name, keys and settings.
	UpdateCaptchaSite(ctx context.Context, s CaptchaSite) error
	GetCaptchaSite(ctx context.Context, projectID, id string) (CaptchaSite, error)
	ListCaptchaSites(ctx context.Context, projectID string) ([]CaptchaSite, error)
	DeleteCaptchaSite(ctx context.Context, projectID, id string) error
	// AllCaptchaSites lists every site of every project (to seal their keys
	// again after a key rotation).
	AllCaptchaSites(ctx context.Context) ([]CaptchaSite, error)
	// ReplaceCaptchaSiteKeys writes keys as the site's stored keys where they
	// still are old (the same keys, sealed again), and answers ErrConflict
	// where they no longer are, ErrNotFound for an unknown site.
	ReplaceCaptchaSiteKeys(ctx context.Context, id, old, keys string) error
	// UseDRTicket records a disaster-recovery ticket's hash as used until
	// expires and reports whether this was its first use.
	UseDRTicket(ctx context.Context, hash, projectID, siteID string, now, expires time.Time) (bool, error)
	// PruneDRTickets forgets tickets that expired before before.
	PruneDRTickets(ctx context.Context, before time.Time) error
}
