package console

import (
	"net/http"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/store"
)

// captchaEventTypes are the events the verification service writes when a
// site's vendor degrades, recovers, or disaster-recovery tickets look abused.
var captchaEventTypes = []string{captcha.EventVendorDegraded, captcha.EventVendorRecovered, captcha.EventDRSuspicious}

// siteView is a site as the page shows it: never its keys.
type siteView struct {
	ID, Name, Vendor string
	Settings         captcha.Settings
	CreatedAt        time.Time
	// Degraded is true when the site's latest vendor event of the day says
	// it degraded and nothing since says it recovered.
	Degraded bool
}

type captchaData struct {
	Enabled bool
	Sites   []siteView
	Events  []store.Event
}

func (c *Console) captchaPage(w http.ResponseWriter, r *http.Request) {
	if c.d.Captcha == nil {
		c.render(w, r, "captcha", "CAPTCHA", captchaData{}, http.StatusOK)
		return
	}
	ctx, pid := r.Context(), project(r)
	sites, err := c.d.Captcha.Sites(ctx, pid)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := captchaData{Enabled: true}
	// Oldest first, so the last event of a site is its state now.
	if data.Events, err = c.d.Store.EventsAfter(ctx, pid, captchaEventTypes, time.Now().Add(-24*time.Hour), "", 100); err != nil {
		c.fail(w, r, err)
		return
	}
	degraded := map[string]bool{}
	for _, e := range data.Events {
		switch e.Type {
		case captcha.EventVendorDegraded:
			degraded[e.Subject] = true
		case captcha.EventVendorRecovered:
			degraded[e.Subject] = false
		}
	}
	for _, s := range sites {
		data.Sites = append(data.Sites, siteView{ID: s.ID, Name: s.Name, Vendor: s.Vendor, Settings: s.Settings, CreatedAt: s.CreatedAt, Degraded: degraded[s.ID]})
	}
	c.render(w, r, "captcha", "CAPTCHA", data, http.StatusOK)
}
