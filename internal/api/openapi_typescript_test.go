package api

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAPITypeScriptClient generates TypeScript types from the served
// GET /v1/openapi.json with openapi-typescript (pinned in
// testdata/openapi_ts/package.json, installed from the npm registry) and
// type-checks testdata/openapi_ts/client.ts against them with tsc --strict:
// a client that creates a webhook, lists its deliveries and publishes an
// event, and assertions of what the types must refuse.
func TestOpenAPITypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs openapi-typescript and typescript from the npm registry")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("node and npm are needed:", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "client.ts"} {
		b, err := os.ReadFile(filepath.Join("testdata", "openapi_ts", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(timeout time.Duration, name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		t.Logf("%s: %s", filepath.Base(name), out)
	}
	run(2*time.Minute, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error")

	srv := httptest.NewServer(fullServer()) // 127.0.0.1
	defer srv.Close()
	bin := filepath.Join(dir, "node_modules", ".bin")
	run(time.Minute, filepath.Join(bin, "openapi-typescript"), srv.URL+"/v1/openapi.json", "-o", "schema.d.ts")
	run(time.Minute, filepath.Join(bin, "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
		"--moduleResolution", "bundler", "client.ts")
}
