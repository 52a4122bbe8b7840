package console

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.signedIn(r); ok {
		http.Redirect(w, r, c.prefix+"/", http.StatusSeeOther)
		return
	}
	c.render(w, r, "login", "Sign in", nil, http.StatusOK)
}

// login turns an API key into a session. The key is checked by the same
// service the REST API authenticates with, and then forgotten.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.PostFormValue("api_key"))
	k, err := c.d.Auth.Authenticate(r.Context(), key)
	if key == "" || err != nil {
		r.URL.RawQuery = "error=" + url.QueryEscape("That API key is not valid (or was revoked).")
		c.render(w, r, "login", "Sign in", nil, http.StatusUnauthorized)
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	c.setSession(w, r, session{KeyID: k.ID, KeyProject: k.ProjectID, ProjectID: k.ProjectID,
		Expires: time.Now().Add(SessionLifetime), ID: hex.EncodeToString(id)})
	http.Redirect(w, r, c.prefix+"/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	c.clearSession(w, r)
	http.Redirect(w, r, c.prefix+"/login?flash="+url.QueryEscape("Signed out."), http.StatusSeeOther)
}

// switchProject lets an admin key's session show another project.
func (c *Console) switchProject(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	if !st.key.Admin {
		http.Error(w, "only an admin key may switch projects", http.StatusForbidden)
		return
	}
	id := strings.TrimSpace(r.PostFormValue("project"))
	if _, err := c.d.Store.GetProject(r.Context(), id); err != nil {
		c.back(w, r, "/", "", "No project "+id+".")
		return
	}
	s := st.session
	s.ProjectID = id
	c.setSession(w, r, s)
	http.Redirect(w, r, c.prefix+"/", http.StatusSeeOther)
}

// project is the project a request's session shows.
func project(r *http.Request) string { return state(r).session.ProjectID }
