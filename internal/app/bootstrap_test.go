package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"carrier/internal/app"
	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestRevokedBootstrapKeyStaysRevokedAcrossRestarts revokes the key that
// CARRIER_API_KEY configures through the API and starts Carrier again with
// the same CARRIER_API_KEY: it starts (it stopped with a UNIQUE violation on
// api_keys.hash), says why the key does not work naming CARRIER_API_KEY, and
// the key stays revoked instead of being silently re-enabled.
func TestRevokedBootstrapKeyStaysRevokedAcrossRestarts(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			id := app.BootstrapKeyID(apptest.AdminKey)
			if r := c.Admin("DELETE", "/v1/projects/"+app.DefaultProjectID+"/keys/"+id, nil); r.Status != http.StatusOK {
				t.Fatalf("revoke the bootstrap key: %d %s", r.Status, r.Body)
			}
			apiExpectError(t, "revoked bootstrap key", c.Admin("GET", "/v1/webhooks", nil), http.StatusUnauthorized, "unauthorized", "")
			cfg := c.Config
			c.Stop()

			// The next start, with its log, through the app package.
			var logs bytes.Buffer
			a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), app.Options{})
			if err != nil {
				t.Fatalf("start after the bootstrap key was revoked: %v", err)
			}
			stopped, cancel := context.WithCancel(context.Background())
			cancel()
			if err := a.Run(stopped); err != nil { // opens and closes everything, as a real start and stop do
				t.Fatalf("run: %v", err)
			}
			if a.BootstrapKey != "" {
				t.Errorf("a new key was generated although CARRIER_API_KEY is set")
			}
			if out := logs.String(); !strings.Contains(out, "CARRIER_API_KEY") || !strings.Contains(out, "revoked") || !strings.Contains(out, "admin-key create") {
				t.Errorf("start-up log does not say that CARRIER_API_KEY's key is revoked and how to recover:\n%s", out)
			}

			// And again through the test harness: the key is still revoked.
			c2 := apptest.Start(t, e, apptest.Options{})
			apiExpectError(t, "bootstrap key after restart", c2.Admin("GET", "/v1/webhooks", nil), http.StatusUnauthorized, "unauthorized", "")
		})
	}
}

// TestOnlyAdminKeysRevokeAdminKeys checks that a plain key of the default
// project, which may manage that project's keys, cannot revoke its admin key
// (403), while it still revokes plain keys and an admin key revokes either.
func TestOnlyAdminKeysRevokeAdminKeys(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			newKey := func(key string) (id, secret string) {
				t.Helper()
				r := c.Do("POST", "/v1/projects/"+app.DefaultProjectID+"/keys", key, map[string]any{"name": "plain"})
				if r.Status != http.StatusCreated {
					t.Fatalf("create key: %d %s", r.Status, r.Body)
				}
				return r.Data()["id"].(string), r.Data()["key"].(string)
			}
			_, plain := newKey(apptest.AdminKey)
			adminID := app.BootstrapKeyID(apptest.AdminKey)
			path := "/v1/projects/" + app.DefaultProjectID + "/keys/"

			apiExpectError(t, "plain key revokes the admin key", c.Do("DELETE", path+adminID, plain, nil), http.StatusForbidden, "forbidden", "")
			if r := c.Admin("GET", "/v1/webhooks", nil); r.Status != http.StatusOK {
				t.Fatalf("admin key stopped working after a refused revoke: %d %s", r.Status, r.Body)
			}
			otherID, other := newKey(plain)
			if r := c.Do("DELETE", path+otherID, plain, nil); r.Status != http.StatusOK {
				t.Errorf("plain key revokes a plain key of its project: %d %s", r.Status, r.Body)
			}
			apiExpectError(t, "revoked plain key", c.Do("GET", "/v1/webhooks", other, nil), http.StatusUnauthorized, "unauthorized", "")
			apiExpectError(t, "unknown key", c.Do("DELETE", path+"no-such-key", plain, nil), http.StatusNotFound, "not_found", "")
			if r := c.Admin("DELETE", path+adminID, nil); r.Status != http.StatusOK {
				t.Errorf("admin key revokes an admin key: %d %s", r.Status, r.Body)
			}
		})
	}
}
