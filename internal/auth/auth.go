// Package auth is Carrier's key service: projects and their API keys, how a
// key is stored (only its hash), issued, authenticated and revoked, and the
// bounded cache that keeps recently confirmed keys working while the store
// cannot be reached. Transports (the REST API's Authorization header, the
// 2captcha front's key parameter) read the key and answer in their own
// terms; what a key is and may do is decided here.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/store"
)

// Errors the service answers with; the REST API maps each to its status.
var (
	// ErrInvalidKey: there is no such key, or it was revoked.
	ErrInvalidKey = errors.New("invalid or revoked API key")
	// ErrProjectNotFound: the project does not exist, or the caller may not
	// manage it (which a caller must not be able to tell apart).
	ErrProjectNotFound = errors.New("project not found")
	// ErrKeyNotFound: the project has no such key.
	ErrKeyNotFound = errors.New("API key not found")
	// ErrAdminKey: only an admin key may revoke an admin key.
	ErrAdminKey = errors.New("only an admin API key may revoke an admin API key")
)

// KeyStore is what issuing a key needs of the store.
type KeyStore interface {
	CreateAPIKey(ctx context.Context, k store.APIKey) error
}

// Store is what the service needs of the store.
type Store interface {
	KeyStore
	APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error)
	GetAPIKey(ctx context.Context, projectID, id string) (store.APIKey, error)
	RevokeAPIKey(ctx context.Context, projectID, id string, at time.Time) error
	CreateProject(ctx context.Context, p store.Project) error
	GetProject(ctx context.Context, id string) (store.Project, error)
}

// HashKey returns the stored form of an API key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey returns a fresh random API key.
func NewKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "ck_" + hex.EncodeToString(b)
}

// Issue creates and stores a new key for a project and returns it with its
// plaintext, which is never stored. It works on the store directly, so the
// bootstrap and `carrier admin-key create` can mint keys without a service.
func Issue(ctx context.Context, st KeyStore, projectID, name string, admin bool) (store.APIKey, string, error) {
	secret := NewKey()
	k := store.APIKey{ID: clock.NewID(), ProjectID: projectID, Name: name, Prefix: secret[:10], Hash: HashKey(secret), Admin: admin, CreatedAt: clock.Now()}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return k, "", err
	}
	return k, secret, nil
}

// Service issues, authenticates and revokes keys, and creates projects.
type Service struct {
	store Store
	keys  *cache
	// Created, when set, is called with each new project's id after it is
	// created (the alert service gives it the built-in rules).
	Created func(ctx context.Context, projectID string) error
	// Revoked, when set, is called after a key is revoked, so the other
	// nodes drop their cached keys at once (ForgetKeys) rather than after
	// KeyTTL.
	Revoked func()
}

// ForgetKeys drops every cached key: the next request with each is checked
// with the store (another node revoked one).
func (s *Service) ForgetKeys() { s.keys.forget() }

// New returns the key service over st, with a cache that uses a confirmed
// key for KeyTTL without asking the store, keeps it working for
// KeyOutageGrace while the store cannot be reached, and holds at most
// MaxCachedKeys keys.
func New(st Store) *Service {
	return &Service{store: st, keys: newCache(KeyTTL, KeyOutageGrace, MaxCachedKeys, time.Now)}
}

// SetClock replaces the clock the key cache reads, for tests that move
// through an outage without waiting for it.
func (s *Service) SetClock(clock func() time.Time) { s.keys.clock = clock }

// Authenticate returns the record of key. It answers from the cache while
// the store's confirmation is fresh (KeyTTL), else asks the store; while the
// store cannot be reached, a key it confirmed within KeyOutageGrace keeps
// working, so publishes can still be spooled during an outage. A missing or
// revoked key is ErrInvalidKey; any other error means the store could not
// be asked.
func (s *Service) Authenticate(ctx context.Context, key string) (store.APIKey, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return store.APIKey{}, ErrInvalidKey
	}
	hash := HashKey(key)
	c, cached := s.keys.get(hash)
	t := s.keys.clock()
	if cached && t.Before(c.expires) {
		return c.key, nil
	}
	gen := s.keys.generation()
	k, err := s.store.APIKeyByHash(ctx, hash)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.keys.drop(hash)
			return store.APIKey{}, ErrInvalidKey
		}
		if cached && t.Sub(c.confirmed) <= s.keys.outage {
			return c.key, nil
		}
		return store.APIKey{}, err
	}
	s.keys.put(hash, k, t, gen)
	return k, nil
}

// CanManage reports whether caller may manage projectID's keys: admins
// manage every project's, a project key its own project's.
func CanManage(caller store.APIKey, projectID string) bool {
	return caller.Admin || caller.ProjectID == projectID
}

// CreateProject creates a project named name with a first key, "default",
// and returns the key's plaintext, which is shown once.
func (s *Service) CreateProject(ctx context.Context, name string) (store.Project, store.APIKey, string, error) {
	if l := len(name); l < 1 || l > 255 {
		return store.Project{}, store.APIKey{}, "", &dest.FieldError{Field: "name", Message: "must be 1-255 characters"}
	}
	p := store.Project{ID: clock.NewID(), Name: name, CreatedAt: clock.Now()}
	if err := s.store.CreateProject(ctx, p); err != nil {
		return p, store.APIKey{}, "", err
	}
	k, secret, err := Issue(ctx, s.store, p.ID, "default", false)
	if err == nil && s.Created != nil {
		err = s.Created(ctx, p.ID)
	}
	return p, k, secret, err
}

// CreateKey issues a new (non-admin) key of projectID for caller, named
// name ("key" when empty), and returns its plaintext, which is shown once.
func (s *Service) CreateKey(ctx context.Context, caller store.APIKey, projectID, name string) (store.APIKey, string, error) {
	if !CanManage(caller, projectID) {
		return store.APIKey{}, "", ErrProjectNotFound
	}
	if name == "" {
		name = "key"
	}
	if len(name) > 255 {
		return store.APIKey{}, "", &dest.FieldError{Field: "name", Message: "must be at most 255 characters"}
	}
	if _, err := s.store.GetProject(ctx, projectID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.APIKey{}, "", ErrProjectNotFound
		}
		return store.APIKey{}, "", err
	}
	return Issue(ctx, s.store, projectID, name, false)
}

// Revoke revokes key keyID of projectID for caller. A project key may manage
// its project's keys, but not the admin keys that live in the default
// project: otherwise any key of that project could lock every administrator
// out. The key stops working on this node at once; other nodes forget it
// within KeyTTL.
func (s *Service) Revoke(ctx context.Context, caller store.APIKey, projectID, keyID string) error {
	if !CanManage(caller, projectID) {
		return ErrProjectNotFound
	}
	target, err := s.store.GetAPIKey(ctx, projectID, keyID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrKeyNotFound
		}
		return err
	}
	if target.Admin && !caller.Admin {
		return ErrAdminKey
	}
	if err := s.store.RevokeAPIKey(ctx, projectID, target.ID, clock.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrKeyNotFound
		}
		return err
	}
	s.keys.forget()
	if s.Revoked != nil {
		s.Revoked()
	}
	return nil
}
