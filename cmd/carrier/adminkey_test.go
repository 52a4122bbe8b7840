package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"carrier/internal/app"
	"carrier/internal/store/storetest"
)

// callAPI sends one request to a running Carrier and returns the status and body.
func callAPI(t *testing.T, addr, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var mintedKey = regexp.MustCompile(`New admin API key \S+ of project default \(shown once, save it\): (\S+)\n`)

// TestAdminKeyCreateRecoversWhenEveryAdminKeyIsRevoked revokes the only admin
// key (the one CARRIER_API_KEY configures) and gets back in with
// `carrier admin-key create`: the key it prints once is an admin key (it
// creates a project), and Carrier starts again with the revoked
// CARRIER_API_KEY still set. On SQLite the command refuses to run next to
// `carrier serve` and says to stop it; on PostgreSQL it runs alongside and
// the new key works at once.
func TestAdminKeyCreateRecoversWhenEveryAdminKeyIsRevoked(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			dataDir := e.DataDir
			if dataDir == "" {
				dataDir = t.TempDir() // the spool's directory on PostgreSQL
			}
			storeArgs := []string{"--data-dir", dataDir}
			if e.DatabaseURL != "" {
				storeArgs = append(storeArgs, "--database-url", e.DatabaseURL)
			}
			mint := func(t *testing.T) string {
				t.Helper()
				stdout, stderr, code := runCarrier(t, nil, append([]string{"admin-key", "create"}, storeArgs...)...)
				m := mintedKey.FindStringSubmatch(stdout)
				if code != 0 || m == nil {
					t.Fatalf("carrier admin-key create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				return m[1]
			}
			createProject := func(t *testing.T, addr, key string) int {
				t.Helper()
				status, _ := callAPI(t, addr, "POST", "/v1/projects", key, `{"name":"after recovery"}`)
				return status
			}

			var minted string
			t.Run("while serving", func(t *testing.T) {
				s := startServe(t, nil, storeArgs...)
				status, body := callAPI(t, s.addr, "DELETE", "/v1/projects/default/keys/"+app.BootstrapKeyID(testKey), testKey, "")
				if status != http.StatusOK {
					t.Fatalf("revoke the only admin key: %d %s", status, body)
				}
				if status := createProject(t, s.addr, testKey); status != http.StatusUnauthorized {
					t.Fatalf("revoked key: %d, want 401", status)
				}
				if e.Name == storetest.SQLite {
					_, stderr, code := runCarrier(t, nil, append([]string{"admin-key", "create"}, storeArgs...)...)
					if code != 1 || !strings.Contains(stderr, "stop `carrier serve`") || !strings.Contains(stderr, "CARRIER_DATA_DIR") {
						t.Errorf("admin-key create next to serve on SQLite: exit %d, stderr %q", code, stderr)
					}
					return
				}
				minted = mint(t)
				if status := createProject(t, s.addr, minted); status != http.StatusCreated {
					t.Errorf("minted key on the running Carrier: %d, want 201", status)
				}
			})
			if minted == "" {
				minted = mint(t)
			}
			if again := mint(t); again == minted {
				t.Errorf("two runs printed the same key")
			}
			// The next start keeps CARRIER_API_KEY revoked and takes the minted key.
			s := startServe(t, nil, storeArgs...)
			if status := createProject(t, s.addr, minted); status != http.StatusCreated {
				t.Errorf("minted key after a restart: %d, want 201", status)
			}
			if status := createProject(t, s.addr, testKey); status != http.StatusUnauthorized {
				t.Errorf("revoked CARRIER_API_KEY after a restart: %d, want 401", status)
			}
		})
	}
}

// TestAdminKeyUsage checks the command's help and its mistakes.
func TestAdminKeyUsage(t *testing.T) {
	for _, args := range [][]string{{"admin-key", "--help"}, {"admin-key", "create", "--help"}} {
		stdout, stderr, code := runCarrier(t, nil, args...)
		if code != 0 || !strings.Contains(stdout, "Usage: carrier admin-key create") || stderr != "" {
			t.Errorf("carrier %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"admin-key"}, {"admin-key", "delete"}} {
		_, stderr, code := runCarrier(t, nil, args...)
		if code == 0 || !strings.Contains(stderr, "Usage: carrier admin-key create") {
			t.Errorf("carrier %v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
