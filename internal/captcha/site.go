package captcha

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Policy is what a site answers when its vendor cannot.
type Policy string

// The policies.
const (
	// FailClosed denies: nobody passes while the vendor is down.
	FailClosed Policy = "fail_closed"
	// FailOpen allows, marked degraded.
	FailOpen Policy = "fail_open"
	// FailOpenBudgeted allows, marked degraded, within per-IP and per-site
	// budgets per minute; past them it denies.
	FailOpenBudgeted Policy = "fail_open_budgeted"
	// StepUp answers challenge, so the application falls back to another
	// check (an email code, a second vendor).
	StepUp Policy = "step_up"
)

// Decisions.
const (
	Allow         = "allow"
	Deny          = "deny"
	DegradedAllow = "degraded_allow"
	Challenge     = "challenge"
)

// Defaults and limits of a site.
const (
	DefaultDeadline           = 2 * time.Second
	MaxDeadline               = 10 * time.Second
	DefaultDegradedPerIP      = 3   // degraded allows per IP per minute
	DefaultDegradedPerSite    = 600 // degraded allows per site per minute
	DefaultDRPerIP            = 3   // DR tickets accepted per IP per minute
	DefaultDRPerSite          = 600 // DR tickets accepted per site per minute
	DefaultDRMaxAge           = 5 * time.Minute
	DefaultOutageAddresses    = 20 // distinct addresses sending DR tickets in a minute that mean a real outage
	MaxSitesPerProject        = 100
	maxNameLength             = 100
	defaultTencentTokenLife   = 5 * time.Minute
	defaultRecaptchaTokenLife = 2 * time.Minute
	defaultTurnstileTokenLife = 300 * time.Second
	defaultHcaptchaTokenLife  = 2 * time.Minute
)

// Settings are a site's policy, deadline and thresholds.
type Settings struct {
	Policy Policy `json:"policy"`
	// DeadlineMS is the most a verification may take before the vendor
	// counts as unavailable (default 2000).
	DeadlineMS int `json:"deadline_ms"`
	// MinScore is the least reCAPTCHA v3 score allowed (0: no check).
	MinScore float64 `json:"min_score"`
	// MaxEvilLevel is the highest Tencent EvilLevel allowed (0).
	MaxEvilLevel int `json:"max_evil_level"`
	// ExpectedHostname, when set, is required of every token (reCAPTCHA,
	// hCaptcha, Turnstile); a request's own expected_hostname overrides it.
	ExpectedHostname string `json:"expected_hostname,omitempty"`
	// DegradedPerIP and DegradedPerSite bound fail_open_budgeted's
	// degraded allows per minute.
	DegradedPerIP   int `json:"degraded_per_ip"`
	DegradedPerSite int `json:"degraded_per_site"`
	// AcceptDRTickets lets disaster-recovery tickets (Tencent) pass as
	// degraded_allow when they check out, within DRPerIP and DRPerSite a
	// minute.
	AcceptDRTickets bool `json:"accept_dr_tickets"`
	DRPerIP         int  `json:"dr_per_ip"`
	DRPerSite       int  `json:"dr_per_site"`
	// Endpoints replace the vendor's verification endpoints, primary
	// first (a proxy, a local stand-in); they pass the SSRF guard.
	Endpoints []string `json:"endpoints,omitempty"`
}

// Site is a site whose tokens Carrier verifies.
type Site struct {
	ID        string    `json:"id"`
	ProjectID string    `json:"-"`
	Name      string    `json:"name"`
	Vendor    string    `json:"vendor"`
	Keys      Keys      `json:"keys"`
	Settings  Settings  `json:"settings"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// FieldError names the field at fault and the rule it breaks.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Deadline is the site's deadline.
func (s Settings) Deadline() time.Duration {
	if s.DeadlineMS <= 0 {
		return DefaultDeadline
	}
	return time.Duration(s.DeadlineMS) * time.Millisecond
}

// normalize fills a site's defaults and checks it.
func (s *Site) normalize(vendors map[string]Vendor) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" || len(s.Name) > maxNameLength {
		return fieldErr("name", "is required, at most %d characters", maxNameLength)
	}
	if _, ok := vendors[s.Vendor]; !ok {
		return fieldErr("vendor", "must be tencent, recaptcha, hcaptcha or turnstile")
	}
	k := s.Keys
	switch s.Vendor {
	case "tencent":
		switch {
		case k.AppID == "" || strings.Trim(k.AppID, "0123456789") != "":
			return fieldErr("keys.app_id", "is required: the CaptchaAppId, a number")
		case k.AppSecret == "":
			return fieldErr("keys.app_secret", "is required: the AppSecretKey")
		case k.SecretID == "" || k.SecretKey == "":
			return fieldErr("keys.secret_id", "secret_id and secret_key (Tencent Cloud API credentials) are required")
		}
	default:
		if k.Secret == "" {
			return fieldErr("keys.secret", "is required: the %s secret key", s.Vendor)
		}
	}
	st := &s.Settings
	if st.Policy == "" {
		st.Policy = FailClosed
	}
	switch st.Policy {
	case FailClosed, FailOpen, FailOpenBudgeted, StepUp:
	default:
		return fieldErr("settings.policy", "must be fail_closed, fail_open, fail_open_budgeted or step_up")
	}
	if st.DeadlineMS == 0 {
		st.DeadlineMS = int(DefaultDeadline / time.Millisecond)
	}
	if st.DeadlineMS < 50 || time.Duration(st.DeadlineMS)*time.Millisecond > MaxDeadline {
		return fieldErr("settings.deadline_ms", "must be between 50 and %d", MaxDeadline/time.Millisecond)
	}
	if st.MinScore < 0 || st.MinScore > 1 {
		return fieldErr("settings.min_score", "must be between 0 and 1")
	}
	if st.MaxEvilLevel < 0 || st.MaxEvilLevel > 100 {
		return fieldErr("settings.max_evil_level", "must be between 0 and 100")
	}
	defaults := []struct {
		v    *int
		def  int
		name string
	}{
		{&st.DegradedPerIP, DefaultDegradedPerIP, "degraded_per_ip"}, {&st.DegradedPerSite, DefaultDegradedPerSite, "degraded_per_site"},
		{&st.DRPerIP, DefaultDRPerIP, "dr_per_ip"}, {&st.DRPerSite, DefaultDRPerSite, "dr_per_site"},
	}
	for _, d := range defaults {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 || *d.v > 1_000_000 {
			return fieldErr("settings."+d.name, "must be between 1 and 1000000")
		}
	}
	if st.AcceptDRTickets && s.Vendor != "tencent" {
		return fieldErr("settings.accept_dr_tickets", "disaster-recovery tickets are Tencent Cloud Captcha's")
	}
	if len(st.Endpoints) > 3 {
		return fieldErr("settings.endpoints", "at most 3 endpoints")
	}
	for i, e := range st.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return fieldErr(fmt.Sprintf("settings.endpoints[%d]", i), "must be an http(s) URL without credentials")
		}
	}
	return nil
}

// tokenLife is how long a vendor's tokens live: how long a verdict is cached.
func tokenLife(vendor string) time.Duration {
	switch vendor {
	case "tencent":
		return defaultTencentTokenLife
	case "recaptcha":
		return defaultRecaptchaTokenLife
	case "turnstile":
		return defaultTurnstileTokenLife
	}
	return defaultHcaptchaTokenLife
}

// Redacted is the site as the API shows it: secrets hidden.
func (s Site) Redacted() Site {
	hide := func(v string) string {
		if v == "" {
			return ""
		}
		return "***hidden***"
	}
	s.Keys.Secret, s.Keys.AppSecret, s.Keys.SecretKey = hide(s.Keys.Secret), hide(s.Keys.AppSecret), hide(s.Keys.SecretKey)
	return s
}
