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
