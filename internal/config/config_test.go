package config

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./carrier-data" || c.DatabaseURL != "" || c.AllowPrivateNetworks {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if got, want := c.RetryBase, time.Minute; got != want {
		t.Errorf("RetryBase = %v, want %v", got, want)
	}
	if got, want := c.SecretRotationOverlap, 24*time.Hour; got != want {
		t.Errorf("SecretRotationOverlap = %v, want %v", got, want)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	c, err := Load("serve", []string{"--retry-base=100ms", "--allow-private-networks"}, env(map[string]string{
		"CARRIER_RETRY_BASE":   "5s",
		"CARRIER_DATABASE_URL": "postgres://u@localhost/db",
		"CARRIER_LISTEN":       ":9999",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RetryBase, 100*time.Millisecond; got != want {
		t.Errorf("flag should win over env: RetryBase = %v, want %v", got, want)
	}
	if !c.AllowPrivateNetworks {
		t.Error("--allow-private-networks without a value should mean true")
	}
	if c.DatabaseURL != "postgres://u@localhost/db" || c.Listen != ":9999" {
		t.Errorf("env not applied: %+v", c)
	}
}

func TestBadSettingsNameTheSetting(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CARRIER_RETRY_BASE": "soon"}, "CARRIER_RETRY_BASE"},
		{map[string]string{"CARRIER_MAX_FANOUT_PER_EVENT": "-1"}, "CARRIER_MAX_FANOUT_PER_EVENT"},
		{map[string]string{"CARRIER_PUBLISH_RATE": "fast"}, "CARRIER_PUBLISH_RATE"},
		{map[string]string{"CARRIER_PUBLISH_BURST": "50"}, "CARRIER_PUBLISH_BURST (--publish-burst): needs CARRIER_PUBLISH_RATE"},
		{map[string]string{"CARRIER_PUBLISH_RATE": "5", "CARRIER_PUBLISH_BURST": "3"}, "CARRIER_PUBLISH_BURST (--publish-burst) = 3: must be 0 or at least 10"},
		{map[string]string{"CARRIER_RETRY_BASE": "0s"}, "CARRIER_RETRY_BASE"},
		{map[string]string{"CARRIER_LISTEN": "8080"}, "CARRIER_LISTEN"},
		{map[string]string{"CARRIER_DATABASE_URL": "mysql://x"}, "CARRIER_DATABASE_URL"},
		{map[string]string{"CARRIER_ALLOW_PRIVATE_NETWORKS": "yes please"}, "CARRIER_ALLOW_PRIVATE_NETWORKS"},
		{map[string]string{"CARRIER_API_KEY": "short"}, "CARRIER_API_KEY"},
		{map[string]string{"CARRIER_LANE_CONCURRENCY": "0"}, "CARRIER_LANE_CONCURRENCY"},
		{map[string]string{"CARRIER_LOG_LEVEL": "loud"}, "CARRIER_LOG_LEVEL"},
		{map[string]string{"CARRIER_RETENTION": "-1h"}, "CARRIER_RETENTION"},
	}
	for _, tt := range tests {
		_, err := Load("serve", nil, env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: err = %v, want it to name %s", tt.env, err, tt.want)
		}
	}
	if _, err := Load("serve", []string{"--no-such-flag"}, env(nil), io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}

// TestDevModeAllowsPrivateNetworks checks that --dev and CARRIER_DEV=true
// both turn on deliveries to loopback and private addresses, which is what
// lets the quickstart's local receiver be reached.
func TestDevModeAllowsPrivateNetworks(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"--dev"}, nil},
		{"environment", nil, map[string]string{"CARRIER_DEV": "true"}},
		{"flag over an explicit false", []string{"--dev"}, map[string]string{"CARRIER_ALLOW_PRIVATE_NETWORKS": "false"}},
	}
	for _, tt := range tests {
		c, err := Load("serve", tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !c.Dev || !c.AllowPrivateNetworks {
			t.Errorf("%s: Dev = %v, AllowPrivateNetworks = %v, want both true", tt.name, c.Dev, c.AllowPrivateNetworks)
		}
	}
	c, err := Load("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev || c.AllowPrivateNetworks {
		t.Errorf("default: Dev = %v, AllowPrivateNetworks = %v, want both false", c.Dev, c.AllowPrivateNetworks)
	}
}

// TestAPIKeyMinimumLength checks the rule and that its message names the
// setting and the rule, without showing the key.
func TestAPIKeyMinimumLength(t *testing.T) {
	short := strings.Repeat("k", MinAPIKeyLength-1)
	_, err := Load("serve", nil, env(map[string]string{"CARRIER_API_KEY": short}), io.Discard)
	if err == nil {
		t.Fatalf("a %d-character CARRIER_API_KEY was accepted", len(short))
	}
	for _, want := range []string{"CARRIER_API_KEY", "at least 16 characters"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), short) {
		t.Errorf("error %q shows the key", err)
	}
	exact := strings.Repeat("k", MinAPIKeyLength)
	c, err := Load("serve", nil, env(map[string]string{"CARRIER_API_KEY": exact}), io.Discard)
	if err != nil || c.APIKey != exact {
		t.Errorf("a %d-character key: APIKey = %q, err = %v", MinAPIKeyLength, c.APIKey, err)
	}
}

// TestREADMEDocumentsEverySetting checks the README's configuration table
// against Settings: every variable has a row with its flag and default, and
// the CARRIER_API_KEY row states the minimum length that Load enforces.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `CARRIER_") {
			env, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			rows[env] = line
		}
	}
	for _, s := range Settings {
		row, ok := rows[s.Env]
		if !ok {
			t.Errorf("README has no configuration row for %s", s.Env)
			continue
		}
		cells := strings.Split(row, "|")
		if len(cells) < 5 {
			t.Errorf("%s row has %d cells: %s", s.Env, len(cells), row)
			continue
		}
		if got, want := strings.TrimSpace(cells[2]), "`--"+s.Flag+"`"; got != want {
			t.Errorf("%s row names flag %s, want %s", s.Env, got, want)
		}
		// Settings without a fixed default document a derived one (such as
		// <data-dir>/spool) or none; only fixed defaults must match.
		if s.Default != "" {
			if got, want := strings.TrimSpace(cells[3]), "`"+s.Default+"`"; got != want {
				t.Errorf("%s row documents default %s, want %s", s.Env, got, want)
			}
		}
	}
	if want := fmt.Sprintf("at least %d characters", MinAPIKeyLength); !strings.Contains(rows["CARRIER_API_KEY"], want) {
		t.Errorf("CARRIER_API_KEY row does not say %q: %s", want, rows["CARRIER_API_KEY"])
	}
}
