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
