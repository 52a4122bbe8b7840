package secret_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"carrier/internal/secret"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

func keys(t *testing.T, current, previous byte) *secret.Keys {
	t.Helper()
	var prev []byte
	if previous != 0 {
		prev = bytes.Repeat([]byte{previous}, secret.KeySize)
	}
	k, err := secret.NewKeys(bytes.Repeat([]byte{current}, secret.KeySize), prev)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := keys(t, 1, 0)
	sealed, err := k.Seal("whsec_abc", "subscription:s1:secret")
	if err != nil {
		t.Fatal(err)
	}
	if !secret.IsSealed(sealed) || strings.Contains(sealed, "whsec_abc") {
		t.Fatalf("sealed = %q", sealed)
	}
	again, _ := k.Seal("whsec_abc", "subscription:s1:secret")
	if again == sealed {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	if got, _ := k.Seal(sealed, "x"); got != sealed {
		t.Error("a sealed value was sealed twice")
	}
	if got, _ := k.Seal("", "x"); got != "" {
		t.Error("the empty string was sealed")
	}
	got, stale, err := k.Open(sealed, "subscription:s1:secret")
	if err != nil || got != "whsec_abc" || stale {
		t.Errorf("open = %q, stale %v, %v", got, stale, err)
	}
	// Bound to its record and field: moved elsewhere, it does not open.
	if _, _, err := k.Open(sealed, "subscription:s2:secret"); err == nil {
		t.Error("a value moved to another record opened")
	}
	// Altered, it does not open.
	alt := sealed[:len(sealed)-2] + "AA"
	if alt == sealed {
		alt = sealed[:len(sealed)-2] + "BB"
	}
	if _, _, err := k.Open(alt, "subscription:s1:secret"); err == nil {
		t.Error("an altered value opened")
	}
	// A value stored before a key was configured opens as it is, stale.
	if got, stale, err := k.Open("whsec_plain", "x"); got != "whsec_plain" || !stale || err != nil {
		t.Errorf("plain value: %q %v %v", got, stale, err)
	}
}

func TestRotation(t *testing.T) {
	old := keys(t, 1, 0)
	sealed, _ := old.Seal("secret", "ad")
	rotated := keys(t, 2, 1)
	got, stale, err := rotated.Open(sealed, "ad")
	if err != nil || got != "secret" || !stale {
		t.Errorf("open with the previous key: %q stale %v %v, want the value, stale", got, stale, err)
	}
	if _, _, err := keys(t, 3, 0).Open(sealed, "ad"); !errors.Is(err, secret.ErrUnknownKey) {
		t.Errorf("open with neither key: %v, want ErrUnknownKey", err)
	}
	if h := rotated.APIKeyHashes("abc"); len(h) != 3 || h[2] != "abc" || h[0] == h[1] {
		t.Errorf("api key hashes = %v", h)
	}
}

func TestParseKey(t *testing.T) {
	for _, s := range []string{strings.Repeat("ab", 32), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"} {
		if _, err := secret.ParseKey(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "short", strings.Repeat("ab", 31)} {
		if _, err := secret.ParseKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestCaptchaSiteKeysSealed: a CAPTCHA site's vendor keys are stored sealed
// and read back open, on both engines.
func TestCaptchaSiteKeysSealed(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			raw := e.Open(t)
			ctx := context.Background()
			st := secret.Wrap(raw, keys(t, 7, 0))
			if err := raw.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			site := store.CaptchaSite{ID: "site-1", ProjectID: "p", Name: "login", Vendor: "turnstile", Keys: `{"secret":"0x4AAA-very-secret"}`,
				Settings: []byte(`{}`), CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := st.CreateCaptchaSite(ctx, site); err != nil {
				t.Fatal(err)
			}
			stored, err := raw.GetCaptchaSite(ctx, "p", "site-1")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(stored.Keys, "very-secret") || !secret.IsSealed(stored.Keys) {
				t.Errorf("stored keys = %q, want them sealed", stored.Keys)
			}
			got, err := st.GetCaptchaSite(ctx, "p", "site-1")
			if err != nil || got.Keys != site.Keys {
				t.Errorf("read back %q, %v", got.Keys, err)
			}
			list, err := st.ListCaptchaSites(ctx, "p")
			if err != nil || len(list) != 1 || list[0].Keys != site.Keys {
				t.Errorf("listed %+v, %v", list, err)
			}
		})
	}
}

func webhook(id string) store.Subscription {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return store.Subscription{ID: id, ProjectID: "p", Name: "hook", Kind: "webhook", URL: "https://example.com/hook",
		EventTypes: []string{"*"}, Scope: "all", SubjectIDs: []string{}, Tags: []string{},
		Headers:        map[string]string{"Authorization": "Bearer tok-very-secret", "X-Api-Key": "key-very-secret"},
		TimeoutSeconds: 10, MaxRetries: 5, BackoffMultiplier: 2, Secret: "whsec_dmVyeS1zZWNyZXQ=",
		FilterScope: "attributes", Active: true, CreatedAt: now, UpdatedAt: now}
}

// TestHeaderValuesSealed: a webhook's custom header values are stored sealed,
// each bound to its header, and read back open; the caller's map is not
// changed by the write.
func TestHeaderValuesSealed(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			raw := e.Open(t)
			ctx := context.Background()
			st := secret.Wrap(raw, keys(t, 7, 0))
			if err := raw.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			sub := webhook("sub-1")
			if err := st.CreateSubscription(ctx, sub); err != nil {
				t.Fatal(err)
			}
			if sub.Headers["Authorization"] != "Bearer tok-very-secret" {
				t.Errorf("the caller's headers changed: %v", sub.Headers)
			}
			stored, err := raw.GetSubscription(ctx, "p", "sub-1")
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range stored.Headers {
				if strings.Contains(v, "very-secret") || !secret.IsSealed(v) {
					t.Errorf("stored header %s = %q, want it sealed", name, v)
				}
			}
			got, err := st.GetSubscription(ctx, "p", "sub-1")
			if err != nil || got.Headers["Authorization"] != "Bearer tok-very-secret" || got.Headers["X-Api-Key"] != "key-very-secret" {
				t.Errorf("read back %v, %v", got.Headers, err)
			}
			// Bound to its header: swapped between headers, they do not open.
			stored.Headers["Authorization"], stored.Headers["X-Api-Key"] = stored.Headers["X-Api-Key"], stored.Headers["Authorization"]
			if err := raw.UpdateSubscription(ctx, stored); err != nil {
				t.Fatal(err)
			}
			if _, err := st.GetSubscription(ctx, "p", "sub-1"); err == nil {
				t.Error("header values swapped in the database opened")
			}
		})
	}
}

// TestResealAfterRotation: secrets of every kind stored in plain text, or
// sealed with the key before a rotation, are sealed with the new key by
// Reseal, so that the old key can be removed and everything still opens.
func TestResealAfterRotation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			raw := e.Open(t)
			ctx := context.Background()
			if err := raw.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Millisecond)
			cred := store.SQSCredential{AccessKeyID: "AKCRTESTROTATION01", ProjectID: "p", Secret: "sqs-very-secret", CreatedAt: now}
			revoked := store.SQSCredential{AccessKeyID: "AKCRTESTROTATION02", ProjectID: "p", Secret: "old-very-secret", CreatedAt: now}
			site := store.CaptchaSite{ID: "site-1", ProjectID: "p", Name: "login", Vendor: "turnstile", Keys: `{"secret":"0x4AAA-very-secret"}`,
				Settings: []byte(`{}`), CreatedAt: now, UpdatedAt: now}
			// Sealed with key 1; one subscription more stored before any key.
			old := secret.Wrap(raw, keys(t, 1, 0))
			if err := old.CreateSubscription(ctx, webhook("sub-1")); err != nil {
				t.Fatal(err)
			}
			if err := raw.CreateSubscription(ctx, webhook("sub-plain")); err != nil {
				t.Fatal(err)
			}
			for _, c := range []store.SQSCredential{cred, revoked} {
				if err := old.CreateSQSCredential(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := raw.RevokeSQSCredential(ctx, "p", revoked.AccessKeyID, now); err != nil {
				t.Fatal(err)
			}
			if err := old.CreateCaptchaSite(ctx, site); err != nil {
				t.Fatal(err)
			}

			rotating := secret.Wrap(raw, keys(t, 2, 1))
			n, err := rotating.Reseal(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 5 {
				t.Errorf("resealed %d records, want 5 (2 subscriptions, 2 credentials, 1 site)", n)
			}
			if n, err := rotating.Reseal(ctx); n != 0 || err != nil {
				t.Errorf("second reseal: %d, %v; want nothing left to do", n, err)
			}

			// The previous key removed: everything opens with the new one alone.
			st := secret.Wrap(raw, keys(t, 2, 0))
			for _, id := range []string{"sub-1", "sub-plain"} {
				got, err := st.GetSubscription(ctx, "p", id)
				want := webhook(id)
				if err != nil || got.Secret != want.Secret || got.Headers["Authorization"] != want.Headers["Authorization"] {
					t.Errorf("subscription %s after rotation: %+v, %v", id, got, err)
				}
			}
			if got, err := st.SQSCredential(ctx, cred.AccessKeyID); err != nil || got.Secret != cred.Secret {
				t.Errorf("credential after rotation: %q, %v", got.Secret, err)
			}
			if got, err := st.GetCaptchaSite(ctx, "p", site.ID); err != nil || got.Keys != site.Keys {
				t.Errorf("site after rotation: %q, %v", got.Keys, err)
			}
			// And nothing is left that key 1, or nobody, can open.
			k1, k2 := keys(t, 1, 0), keys(t, 2, 0)
			check := func(what, stored, ad string) {
				t.Helper()
				if !secret.IsSealed(stored) {
					t.Errorf("%s stored as %q, not sealed", what, stored)
				}
				if _, _, err := k1.Open(stored, ad); err == nil {
					t.Errorf("%s still opens with the previous key", what)
				}
				if _, stale, err := k2.Open(stored, ad); err != nil || stale {
					t.Errorf("%s does not open with the new key: stale %v, %v", what, stale, err)
				}
			}
			creds, err := raw.AllSQSCredentials(ctx)
			if err != nil || len(creds) != 2 {
				t.Fatalf("credentials: %+v, %v", creds, err)
			}
			for _, c := range creds {
				check("credential "+c.AccessKeyID, c.Secret, "sqs_credential:"+c.AccessKeyID+":secret")
			}
			s, err := raw.GetCaptchaSite(ctx, "p", site.ID)
			if err != nil {
				t.Fatal(err)
			}
			check("site keys", s.Keys, "captcha_site:site-1:keys")
			for _, id := range []string{"sub-1", "sub-plain"} {
				sub, err := raw.GetSubscription(ctx, "p", id)
				if err != nil {
					t.Fatal(err)
				}
				check(id+" secret", sub.Secret, "subscription:"+id+":secret")
				check(id+" header", sub.Headers["X-Api-Key"], "subscription:"+id+":headers.X-Api-Key")
			}
		})
	}
}
