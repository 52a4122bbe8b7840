package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carrier/internal/store"
)

// SessionCookie is the name of the console's session cookie.
const SessionCookie = "carrier_session"

// SessionLifetime is how long a sign-in lasts.
const SessionLifetime = 12 * time.Hour

// secretName is the store's name of the key sessions are signed with.
const secretName = "console-session"

// session is a signed-in API key. The cookie holds its key id, project and
// expiry, and an HMAC of them with a secret every node shares (kept in the
// store), never the key itself; each request checks the key again, so a
// revoked key's sessions end at once on every node.
type session struct {
	KeyID      string
	KeyProject string // the key's own project
	ProjectID  string // the project the console shows (an admin key may switch)
	Expires    time.Time
	ID         string // random, names the session for its CSRF token
}

// Keys is what sessions need of the store.
type Keys interface {
	GetAPIKey(ctx context.Context, projectID, keyID string) (store.APIKey, error)
	SigningKey(ctx context.Context, name string) (store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error)
}

// loadSecret returns the session secret, creating it when there is none.
func loadSecret(ctx context.Context, st Keys, now time.Time) ([]byte, error) {
	k, err := st.SigningKey(ctx, secretName)
	if errors.Is(err, store.ErrNotFound) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		k, err = st.CreateSigningKey(ctx, store.SigningKey{Name: secretName, PrivateKey: hex.EncodeToString(raw), Certificate: "-", CreatedAt: now})
	}
	if err != nil {
		return nil, fmt.Errorf("console session secret: %w", err)
	}
	secret, err := hex.DecodeString(k.PrivateKey)
	if err != nil || len(secret) != 32 {
		return nil, errors.New("console session secret: the stored secret is not 32 bytes of hex")
	}
	return secret, nil
}

func (c *Console) mac(parts ...string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// encode is the cookie value of s.
func (c *Console) encode(s session) string {
	body := strings.Join([]string{s.KeyID, s.KeyProject, s.ProjectID, strconv.FormatInt(s.Expires.Unix(), 10), s.ID}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(body)) + "." + c.mac("session", body)
}

// decode checks a cookie value's signature and expiry.
func (c *Console) decode(v string, now time.Time) (session, bool) {
	b64, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(c.mac("session", string(raw)))) {
		return session{}, false
	}
	p := strings.Split(string(raw), "|")
	if len(p) != 5 {
		return session{}, false
	}
	exp, err := strconv.ParseInt(p[3], 10, 64)
	if err != nil || now.Unix() >= exp {
		return session{}, false
	}
	return session{KeyID: p[0], KeyProject: p[1], ProjectID: p[2], Expires: time.Unix(exp, 0), ID: p[4]}, true
}

// csrfToken is the token every form and unsafe request of session s carries.
func (c *Console) csrfToken(s session) string { return c.mac("csrf", s.ID) }

// setSession writes the session cookie: HttpOnly, SameSite=Strict, Secure
// when the console is reached over TLS, scoped to the console's path.
func (c *Console) setSession(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: c.encode(s), Path: c.prefix + "/", Expires: s.Expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: c.prefix + "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// signedIn returns the request's session and its key, still valid.
func (c *Console) signedIn(r *http.Request) (session, store.APIKey, bool) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return session{}, store.APIKey{}, false
	}
	s, ok := c.decode(ck.Value, time.Now())
	if !ok {
		return session{}, store.APIKey{}, false
	}
	k, err := c.keys.GetAPIKey(r.Context(), s.KeyProject, s.KeyID)
	if err != nil || k.RevokedAt != nil {
		return session{}, store.APIKey{}, false
	}
	if s.ProjectID != k.ProjectID && !k.Admin {
		return session{}, store.APIKey{}, false
	}
	return s, k, true
}

// sameOrigin is the Fetch Metadata check of unsafe requests: a browser
// that sends Sec-Fetch-Site must say same-origin (or none: typed by the
// user); an Origin, when sent, must be this host.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://")
		return host == r.Host
	}
	return true
}
