package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"carrier/internal/store"
)

// destinationSecrets are the settings of each destination kind that are
// secrets: the email password, the chat webhook URLs, whose path holds the
// token, and the Alertmanager-compatible receiver's bearer token.
var destinationSecrets = map[string][]string{
	"alertmanager": {"bearer_token"},
	"email":        {"password"},
	"discord":      {"webhook_url"},
	"slack":        {"webhook_url"},
}

// Store seals secrets on their way into the wrapped store and opens them on
// their way out; every other method is the wrapped store's.
type Store struct {
	store.Store
	keys *Keys
}

// Wrap returns st with secrets sealed by keys at rest.
func Wrap(st store.Store, keys *Keys) *Store { return &Store{Store: st, keys: keys} }

func subAD(id, field string) string { return "subscription:" + id + ":" + field }

// sealSubscription returns sub with its secrets sealed.
func (s *Store) sealSubscription(sub store.Subscription) (store.Subscription, error) {
	var err error
	if sub.Secret, err = s.keys.Seal(sub.Secret, subAD(sub.ID, "secret")); err != nil {
		return sub, err
	}
	if sub.PreviousSecret, err = s.keys.Seal(sub.PreviousSecret, subAD(sub.ID, "previous_secret")); err != nil {
		return sub, err
	}
	if sub.Headers, _, err = s.mapHeaders(sub, func(v, ad string) (string, bool, error) {
		out, err := s.keys.Seal(v, ad)
		return out, false, err
	}); err != nil {
		return sub, err
	}
	sub.Destination, _, err = s.mapDestination(sub, func(v, ad string) (string, bool, error) {
		out, err := s.keys.Seal(v, ad)
		return out, false, err
	})
	return sub, err
}

// openSubscription returns sub with its secrets opened; stale tells that
// one of them was not sealed with the current key.
func (s *Store) openSubscription(sub store.Subscription) (store.Subscription, bool, error) {
	var stale, st bool
	var err error
	if sub.Secret, st, err = s.keys.Open(sub.Secret, subAD(sub.ID, "secret")); err != nil {
		return sub, false, fmt.Errorf("subscription %s secret: %w", sub.ID, err)
	}
	stale = stale || st
	if sub.PreviousSecret, st, err = s.keys.Open(sub.PreviousSecret, subAD(sub.ID, "previous_secret")); err != nil {
		return sub, false, fmt.Errorf("subscription %s previous secret: %w", sub.ID, err)
	}
	stale = stale || st
	if sub.Headers, st, err = s.mapHeaders(sub, s.keys.Open); err != nil {
		return sub, false, fmt.Errorf("subscription %s headers: %w", sub.ID, err)
	}
	stale = stale || st
	sub.Destination, st, err = s.mapDestination(sub, s.keys.Open)
	if err != nil {
		return sub, false, fmt.Errorf("subscription %s destination: %w", sub.ID, err)
	}
	return sub, stale || st, nil
}

// mapHeaders applies f to the value of each custom header (endpoint
// credentials, often) and returns a new map: the subscription's own is shared
// with its caller, who keeps it open.
func (s *Store) mapHeaders(sub store.Subscription, f func(v, ad string) (string, bool, error)) (map[string]string, bool, error) {
	if len(sub.Headers) == 0 {
		return sub.Headers, false, nil
	}
	out := make(map[string]string, len(sub.Headers))
	stale := false
	for name, v := range sub.Headers {
		w, st, err := f(v, subAD(sub.ID, "headers."+name))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		out[name], stale = w, stale || st
	}
	return out, stale, nil
}

// mapDestination applies f to each secret string setting of the
// subscription's destination and returns the settings rewritten.
func (s *Store) mapDestination(sub store.Subscription, f func(v, ad string) (string, bool, error)) (json.RawMessage, bool, error) {
	fields := destinationSecrets[sub.Kind]
	if len(fields) == 0 || len(sub.Destination) == 0 {
		return sub.Destination, false, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(sub.Destination, &m) != nil {
		return sub.Destination, false, nil // not an object: nothing to seal, the API refuses it anyway
	}
	stale, changed := false, false
	for _, name := range fields {
		var v string
		if raw, ok := m[name]; !ok || json.Unmarshal(raw, &v) != nil || v == "" {
			continue
		}
		out, st, err := f(v, subAD(sub.ID, "destination."+name))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", name, err)
		}
		stale = stale || st
		if out != v {
			m[name], _ = json.Marshal(out)
			changed = true
		}
	}
	if !changed {
		return sub.Destination, stale, nil
	}
	out, err := json.Marshal(m)
	return out, stale, err
}

func (s *Store) openAll(subs []store.Subscription, err error) ([]store.Subscription, error) {
	if err != nil {
		return nil, err
	}
	for i := range subs {
		if subs[i], _, err = s.openSubscription(subs[i]); err != nil {
			return nil, err
		}
	}
	return subs, nil
}

// CreateSubscription stores sub with its secrets sealed.
func (s *Store) CreateSubscription(ctx context.Context, sub store.Subscription) error {
	sealed, err := s.sealSubscription(sub)
	if err != nil {
		return err
	}
	return s.Store.CreateSubscription(ctx, sealed)
}

// UpdateSubscription stores sub with its secrets sealed.
func (s *Store) UpdateSubscription(ctx context.Context, sub store.Subscription) error {
	sealed, err := s.sealSubscription(sub)
	if err != nil {
		return err
	}
	return s.Store.UpdateSubscription(ctx, sealed)
}

// GetSubscription reads a subscription with its secrets opened.
func (s *Store) GetSubscription(ctx context.Context, projectID, id string) (store.Subscription, error) {
	sub, err := s.Store.GetSubscription(ctx, projectID, id)
	if err != nil {
		return sub, err
	}
	sub, _, err = s.openSubscription(sub)
	return sub, err
}

// ListSubscriptions lists a project's subscriptions with secrets opened.
func (s *Store) ListSubscriptions(ctx context.Context, projectID string) ([]store.Subscription, error) {
	return s.openAll(s.Store.ListSubscriptions(ctx, projectID))
}

// AllActiveSubscriptions lists active subscriptions with secrets opened.
func (s *Store) AllActiveSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return s.openAll(s.Store.AllActiveSubscriptions(ctx))
}

// AllSubscriptions lists every subscription with secrets opened.
func (s *Store) AllSubscriptions(ctx context.Context) ([]store.Subscription, error) {
	return s.openAll(s.Store.AllSubscriptions(ctx))
}

// ClaimDeliveries claims jobs, their subscriptions' secrets opened.
func (s *Store) ClaimDeliveries(ctx context.Context, opts store.ClaimOptions) ([]store.Job, error) {
	jobs, err := s.Store.ClaimDeliveries(ctx, opts)
	for i := range jobs {
		var oerr error
		if jobs[i].Subscription, _, oerr = s.openSubscription(jobs[i].Subscription); oerr != nil {
			// The jobs are leased: hand them out (their sends fail visibly on
			// the sealed secret) rather than strand the leases.
			err = errors.Join(err, oerr)
		}
	}
	if err != nil && len(jobs) > 0 {
		return jobs, nil
	}
	return jobs, err
}

func credAD(id string) string { return "sqs_credential:" + id + ":secret" }

// CreateSQSCredential stores c with its secret sealed.
func (s *Store) CreateSQSCredential(ctx context.Context, c store.SQSCredential) error {
	var err error
	if c.Secret, err = s.keys.Seal(c.Secret, credAD(c.AccessKeyID)); err != nil {
		return err
	}
	return s.Store.CreateSQSCredential(ctx, c)
}

// SQSCredential reads a credential with its secret opened.
func (s *Store) SQSCredential(ctx context.Context, accessKeyID string) (store.SQSCredential, error) {
	c, err := s.Store.SQSCredential(ctx, accessKeyID)
	if err != nil {
		return c, err
	}
	c.Secret, _, err = s.keys.Open(c.Secret, credAD(c.AccessKeyID))
	return c, err
}

// ListSQSCredentials lists credentials with their secrets opened.
func (s *Store) ListSQSCredentials(ctx context.Context, projectID string) ([]store.SQSCredential, error) {
	cs, err := s.Store.ListSQSCredentials(ctx, projectID)
	for i := range cs {
		if err != nil {
			return nil, err
		}
		cs[i].Secret, _, err = s.keys.Open(cs[i].Secret, credAD(cs[i].AccessKeyID))
	}
	return cs, err
}

// CreateAPIKey stores the key's hash keyed with the server secret.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	k.Hash = s.keys.APIKeyHashes(k.Hash)[0]
	return s.Store.CreateAPIKey(ctx, k)
}

// APIKeyByHash finds an unrevoked key by the hex SHA-256 of its text,
// whichever form its stored hash has (see Keys.APIKeyHashes).
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	return s.lookup(ctx, hash, s.Store.APIKeyByHash)
}

// LookupAPIKey finds a key, revoked or not, as APIKeyByHash does.
func (s *Store) LookupAPIKey(ctx context.Context, hash string) (store.APIKey, error) {
	return s.lookup(ctx, hash, s.Store.LookupAPIKey)
}

func (s *Store) lookup(ctx context.Context, hash string, find func(context.Context, string) (store.APIKey, error)) (store.APIKey, error) {
	var err error
	hashes := s.keys.APIKeyHashes(hash)
	for i, h := range hashes {
		var k store.APIKey
		if k, err = find(ctx, h); errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err == nil && i > 0 {
			// Found in an older form (plain, or keyed with the previous
			// secret): only now, with the key's hash in hand, can it be
			// keyed with the current secret. Failing that, it is tried again
			// next time.
			if s.Store.SetAPIKeyHash(ctx, k.ID, hashes[0]) == nil {
				k.Hash = hashes[0]
			}
		}
		return k, err
	}
	return store.APIKey{}, err
}

// Reseal rewrites every secret stored in plain text or sealed with the
// previous key (of subscriptions, SQS credentials and CAPTCHA sites) sealed
// with the current key, and returns how many records it rewrote. Run at
// start, it completes a key rotation (after it CARRIER_SECRET_KEY_PREVIOUS
// may be removed) and seals what was stored before a key was configured.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	n, err := s.resealSubscriptions(ctx)
	if err != nil {
		return n, err
	}
	m, err := s.resealSQSCredentials(ctx)
	n += m
	if err != nil {
		return n, err
	}
	m, err = s.resealCaptchaSites(ctx)
	n += m
	if err != nil {
		return n, err
	}
	m, err = s.resealSigningKeys(ctx)
	return n + m, err
}

// resealSigningKeys seals again the private keys Carrier signs with (SNS
// messages, console sessions).
func (s *Store) resealSigningKeys(ctx context.Context) (int, error) {
	ks, err := s.Store.AllSigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range ks {
		ok, err := s.reseal(k.PrivateKey, signingKeyAD(k.Name), func(sealed string) error {
			return s.Store.ReplaceSigningKeyPrivate(ctx, k.Name, k.PrivateKey, sealed)
		})
		if err != nil {
			return n, fmt.Errorf("reseal signing key %s: %w", k.Name, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (s *Store) resealSubscriptions(ctx context.Context) (int, error) {
	subs, err := s.Store.AllSubscriptions(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, raw := range subs {
		sub, stale, err := s.openSubscription(raw)
		if err != nil {
			return n, err
		}
		if !stale {
			continue
		}
		if err := s.UpdateSubscription(ctx, sub); err != nil {
			return n, fmt.Errorf("reseal subscription %s: %w", sub.ID, err)
		}
		n++
	}
	return n, nil
}

// resealSQSCredentials seals again every credential's secret, revoked ones
// included, so that nothing is left that only the previous key opens.
func (s *Store) resealSQSCredentials(ctx context.Context) (int, error) {
	cs, err := s.Store.AllSQSCredentials(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		ok, err := s.reseal(c.Secret, credAD(c.AccessKeyID), func(sealed string) error {
			return s.Store.ReplaceSQSCredentialSecret(ctx, c.AccessKeyID, c.Secret, sealed)
		})
		if err != nil {
			return n, fmt.Errorf("reseal sqs credential %s: %w", c.AccessKeyID, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (s *Store) resealCaptchaSites(ctx context.Context) (int, error) {
	cs, err := s.Store.AllCaptchaSites(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		ok, err := s.reseal(c.Keys, siteAD(c.ID), func(sealed string) error {
			return s.Store.ReplaceCaptchaSiteKeys(ctx, c.ID, c.Keys, sealed)
		})
		if err != nil {
			return n, fmt.Errorf("reseal captcha site %s: %w", c.ID, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// reseal opens stored and, when it is stale, writes it sealed with the
// current key through replace, which compares it with stored: a value
// changed meanwhile (by another node) was written by the current key's
// holder, and is left as it is.
func (s *Store) reseal(stored, ad string, replace func(sealed string) error) (bool, error) {
	plain, stale, err := s.keys.Open(stored, ad)
	if err != nil || !stale {
		return false, err
	}
	sealed, err := s.keys.Seal(plain, ad)
	if err != nil {
		return false, err
	}
	if err := replace(sealed); errors.Is(err, store.ErrConflict) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}
