package config

import (
	"io"
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
