package storetest

import (
	"testing"
	"time"

	"carrier/internal/store"
)

// testSQSCredentials: create, look up across projects, list per project,
// revoke (project-confined), duplicate ids.
func testSQSCredentials(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	c1 := store.SQSCredential{AccessKeyID: "AKCR" + newID()[:16], ProjectID: p1.ID, Secret: "secret-1", CreatedAt: f.base}
	c2 := store.SQSCredential{AccessKeyID: "AKCR" + newID()[24:], ProjectID: p1.ID, Secret: "secret-2", CreatedAt: f.at(time.Second)}
	c3 := store.SQSCredential{AccessKeyID: "AKCRother" + newID()[24:], ProjectID: p2.ID, Secret: "secret-3", CreatedAt: f.base}
	for _, c := range []store.SQSCredential{c1, c2, c3} {
		f.must(f.s.CreateSQSCredential(f.ctx, c))
	}
	wantErr(t, "duplicate id", f.s.CreateSQSCredential(f.ctx, c1), store.ErrConflict)

	got, err := f.s.SQSCredential(f.ctx, c1.AccessKeyID)
	f.must(err)
	check(t, "credential", got, c1)
	_, err = f.s.SQSCredential(f.ctx, "AKCRnope")
	wantErr(t, "unknown id", err, store.ErrNotFound)

	list, err := f.s.ListSQSCredentials(f.ctx, p1.ID)
	f.must(err)
	check(t, "list", list, []store.SQSCredential{c1, c2})

	wantErr(t, "revoke from another project", f.s.RevokeSQSCredential(f.ctx, p2.ID, c1.AccessKeyID, f.at(time.Minute)), store.ErrNotFound)
	f.must(f.s.RevokeSQSCredential(f.ctx, p1.ID, c1.AccessKeyID, f.at(time.Minute)))
	wantErr(t, "revoke twice", f.s.RevokeSQSCredential(f.ctx, p1.ID, c1.AccessKeyID, f.at(time.Minute)), store.ErrNotFound)
	_, err = f.s.SQSCredential(f.ctx, c1.AccessKeyID)
	wantErr(t, "revoked", err, store.ErrNotFound)
	list, err = f.s.ListSQSCredentials(f.ctx, p1.ID)
	f.must(err)
	check(t, "list after revoke", list, []store.SQSCredential{c2})
}

// testReplaceSecrets: the listings across projects and the compare-and-set
// writes that sealing again after a key rotation uses.
func testReplaceSecrets(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	c1 := store.SQSCredential{AccessKeyID: "AKCR" + newID()[:16], ProjectID: p1.ID, Secret: "secret-1", CreatedAt: f.base}
	c2 := store.SQSCredential{AccessKeyID: "AKCR" + newID()[24:], ProjectID: p2.ID, Secret: "secret-2", CreatedAt: f.at(time.Second)}
	for _, c := range []store.SQSCredential{c1, c2} {
		f.must(f.s.CreateSQSCredential(f.ctx, c))
	}
	f.must(f.s.RevokeSQSCredential(f.ctx, p2.ID, c2.AccessKeyID, f.at(time.Minute)))
	all, err := f.s.AllSQSCredentials(f.ctx)
	f.must(err)
	revoked := f.at(time.Minute)
	c2r := c2
	c2r.RevokedAt = &revoked
	check(t, "all credentials", all, []store.SQSCredential{c1, c2r})

	f.must(f.s.ReplaceSQSCredentialSecret(f.ctx, c1.AccessKeyID, "secret-1", "sealed-1"))
	wantErr(t, "replace a secret that changed", f.s.ReplaceSQSCredentialSecret(f.ctx, c1.AccessKeyID, "secret-1", "sealed-again"), store.ErrConflict)
	wantErr(t, "replace an unknown credential", f.s.ReplaceSQSCredentialSecret(f.ctx, "AKCRnope", "x", "y"), store.ErrNotFound)
	got, err := f.s.SQSCredential(f.ctx, c1.AccessKeyID)
	f.must(err)
	if got.Secret != "sealed-1" {
		t.Errorf("secret after replace = %q, want sealed-1", got.Secret)
	}

	s1 := store.CaptchaSite{ID: newID(), ProjectID: p1.ID, Name: "a", Vendor: "turnstile", Keys: `{"secret":"k1"}`, Settings: []byte(`{}`), CreatedAt: f.base, UpdatedAt: f.base}
	s2 := store.CaptchaSite{ID: newID(), ProjectID: p2.ID, Name: "b", Vendor: "hcaptcha", Keys: `{"secret":"k2"}`, Settings: []byte(`{}`), CreatedAt: f.at(time.Second), UpdatedAt: f.at(time.Second)}
	for _, s := range []store.CaptchaSite{s1, s2} {
		f.must(f.s.CreateCaptchaSite(f.ctx, s))
	}
	sites, err := f.s.AllCaptchaSites(f.ctx)
	f.must(err)
	check(t, "all captcha sites", sites, []store.CaptchaSite{s1, s2})
	f.must(f.s.ReplaceCaptchaSiteKeys(f.ctx, s2.ID, s2.Keys, "sealed-2"))
	wantErr(t, "replace keys that changed", f.s.ReplaceCaptchaSiteKeys(f.ctx, s2.ID, s2.Keys, "sealed-again"), store.ErrConflict)
	wantErr(t, "replace an unknown site's keys", f.s.ReplaceCaptchaSiteKeys(f.ctx, newID(), "x", "y"), store.ErrNotFound)
	site, err := f.s.GetCaptchaSite(f.ctx, p2.ID, s2.ID)
	f.must(err)
	if site.Keys != "sealed-2" || site.Name != "b" {
		t.Errorf("site after replace = %+v, want keys sealed-2 and the rest unchanged", site)
	}
}
