package api

import (
	"errors"
	"net/http"

	"carrier/internal/captcha"
	"carrier/internal/store"
)

// CAPTCHA verification under /v1/captcha: sites (vendor, keys, policy,
// deadline, thresholds) and verify.

func (s *Server) captchaEnabled() error {
	if s.Captcha == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "captcha verification is not configured"}
	}
	return nil
}

type siteRequest struct {
	Name     string           `json:"name"`
	Vendor   string           `json:"vendor"`
	Keys     captcha.Keys     `json:"keys"`
	Settings captcha.Settings `json:"settings"`
}

func (req siteRequest) site() captcha.Site {
	return captcha.Site{Name: req.Name, Vendor: req.Vendor, Keys: req.Keys, Settings: req.Settings}
}

func (s *Server) createCaptchaSite(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	var req siteRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	site, err := s.Captcha.CreateSite(r.Context(), k.ProjectID, req.site())
	if err != nil {
		return err
	}
	ok(w, http.StatusCreated, site.Redacted())
	return nil
}

func (s *Server) listCaptchaSites(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	sites, err := s.Captcha.Sites(r.Context(), k.ProjectID)
	if err != nil {
		return err
	}
	out := make([]captcha.Site, len(sites))
	for i, site := range sites {
		out[i] = site.Redacted()
	}
	ok(w, http.StatusOK, out)
	return nil
}

func (s *Server) getCaptchaSite(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	site, err := s.Captcha.GetSite(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("captcha site")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, site.Redacted())
	return nil
}

func (s *Server) updateCaptchaSite(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	var req siteRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	site, err := s.Captcha.UpdateSite(r.Context(), k.ProjectID, r.PathValue("id"), req.site())
	if isNotFound(err) {
		return notFound("captcha site")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, site.Redacted())
	return nil
}

func (s *Server) deleteCaptchaSite(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	err := s.Captcha.DeleteSite(r.Context(), k.ProjectID, r.PathValue("id"))
	if isNotFound(err) {
		return notFound("captcha site")
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "deleted": true})
	return nil
}

func (s *Server) verifyCaptcha(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	if err := s.captchaEnabled(); err != nil {
		return err
	}
	var req captcha.VerifyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	v, err := s.Captcha.Verify(r.Context(), k.ProjectID, req)
	if isNotFound(err) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: "site", Message: "captcha site not found"}
	}
	if err != nil {
		return err
	}
	ok(w, http.StatusOK, v)
	return nil
}

// captchaError maps the captcha service's errors to the API's.
func captchaError(err error) (*Error, bool) {
	var fe *captcha.FieldError
	switch {
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: CodeValidation, Field: fe.Field, Message: fe.Error()}, true
	case errors.Is(err, captcha.ErrTooManySites):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeLimitExceeded, Message: err.Error()}, true
	}
	return nil, false
}
