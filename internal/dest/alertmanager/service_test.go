package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/dest/alertmanager"
	"carrier/internal/netguard"
	"carrier/internal/store"
	"carrier/internal/store/sqlite"
	"carrier/internal/subscription"
)

// publicURL is an address the SSRF guard lets through without a DNS lookup;
// nothing is sent to it.
const publicURL = "https://93.184.216.34/alerts"

// service is the subscription service over a fresh SQLite store, with this
// kind registered and the SSRF guard given.
func service(t *testing.T, guard *netguard.Guard) *subscription.Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(ctx, store.Project{ID: "p1", Name: "p1", CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	reg := dest.NewRegistry("webhook")
	reg.Register(&alertmanager.Sender{})
	return subscription.New(subscription.Deps{Store: st, Destinations: reg, Guard: guard})
}

func create(svc *subscription.Service, destination string) (store.Subscription, error) {
	name := "ops"
	return svc.Create(context.Background(), "p1", subscription.Input{API: subscription.Subscriptions, Name: &name,
		EventTypes: &[]string{"alert.*"}, Destination: json.RawMessage(destination)})
}

func update(svc *subscription.Service, id, destination string) (store.Subscription, error) {
	return svc.Update(context.Background(), "p1", id, subscription.Input{API: subscription.Subscriptions, Destination: json.RawMessage(destination)})
}

func fieldOf(err error) string {
	var ferr *dest.FieldError
	if errors.As(err, &ferr) {
		return ferr.Field
	}
	return ""
}

// Saving a subscription names the setting at fault as the API does, and
// refuses a loopback or private URL unless private networks are allowed, as
// for a webhook.
func TestSaveChecksSettingsAndAddress(t *testing.T) {
	strict := service(t, &netguard.Guard{})
	for _, c := range []struct{ destination, field string }{
		{`{"type": "alertmanager"}`, "destination.url"},
		{`{"type": "alertmanager", "url": "ftp://93.184.216.34/"}`, "destination.url"},
		{`{"type": "alertmanager", "url": "` + publicURL + `", "token": "x"}`, "destination.token"},
		{`{"type": "alertmanager", "url": "` + publicURL + `", "headers": {"Host": "x"}}`, "destination.headers.Host"},
	} {
		if _, err := create(strict, c.destination); fieldOf(err) != c.field {
			t.Errorf("create %s: %v; want an error on %s", c.destination, err, c.field)
		}
	}
	for _, private := range []string{"http://127.0.0.1:9093/hook", "http://10.1.2.3/hook", "http://[::1]:5001/", "http://169.254.169.254/"} {
		_, err := create(strict, `{"type": "alertmanager", "url": "`+private+`"}`)
		if fieldOf(err) != "destination.url" || !errors.Is(err, netguard.ErrBlocked) ||
			!strings.Contains(err.Error(), "CARRIER_ALLOW_PRIVATE_NETWORKS") {
			t.Errorf("create with url %s: %v; want destination.url refused by the SSRF rules", private, err)
		}
	}
	if _, err := create(strict, `{"type": "alertmanager", "url": "`+publicURL+`"}`); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	allowed := service(t, &netguard.Guard{AllowPrivate: true})
	if _, err := create(allowed, `{"type": "alertmanager", "url": "http://127.0.0.1:9093/hook"}`); err != nil {
		t.Errorf("loopback refused with private networks allowed: %v", err)
	}
}

// The settings as the API shows them can be sent back: the hidden bearer
// token and headers keep their stored values while the URL stays the same,
// and must be sent again when it changes.
func TestHiddenSecretsRoundTrip(t *testing.T) {
	svc := service(t, &netguard.Guard{})
	k := &alertmanager.Sender{}
	sub, err := create(svc, `{"type": "alertmanager", "url": "`+publicURL+`", "bearer_token": "s3cret", "headers": {"X-Api-Key": "k3y"}}`)
	if err != nil {
		t.Fatal(err)
	}
	shown := k.Redact(sub)
	if strings.Contains(string(shown), "s3cret") || strings.Contains(string(shown), "k3y") || strings.Contains(sub.URL, "s3cret") {
		t.Fatalf("secrets shown: %s (summary %s)", shown, sub.URL)
	}
	var obj map[string]any
	json.Unmarshal(shown, &obj)
	obj["type"] = alertmanager.Kind
	obj["receiver"] = "ops-renamed"
	back, _ := json.Marshal(obj)
	kept, err := update(svc, sub.ID, string(back))
	if err != nil {
		t.Fatalf("sending the shown settings back: %v", err)
	}
	cfg, err := alertmanager.ParseConfig(kept.Destination)
	if err != nil || cfg.BearerToken != "s3cret" || cfg.Headers["X-Api-Key"] != "k3y" || cfg.Receiver != "ops-renamed" {
		t.Errorf("after the round trip: %+v, %v", cfg, err)
	}

	obj["url"] = "https://93.184.216.35/elsewhere"
	moved, _ := json.Marshal(obj)
	if _, err := update(svc, sub.ID, string(moved)); fieldOf(err) != "destination.bearer_token" && fieldOf(err) != "destination.headers" {
		t.Errorf("hidden secrets with a new url: %v; want them required again", err)
	}
	if _, err := create(svc, `{"type": "alertmanager", "url": "`+publicURL+`", "bearer_token": "`+dest.Hidden+`"}`); fieldOf(err) != "destination.bearer_token" {
		t.Errorf("create with a hidden token: %v; want destination.bearer_token refused", err)
	}
}
