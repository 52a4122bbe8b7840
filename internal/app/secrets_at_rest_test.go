package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/secret"
	"carrier/internal/sign"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// rawStore is the store under the at-rest encryption layer, as a copy of
// the database would show it.
func rawStore(t *testing.T, c *apptest.Carrier) store.Store {
	t.Helper()
	sealed, ok := c.App.Store.(*secret.Store)
	if !ok {
		t.Fatalf("store is %T, want the sealing layer", c.App.Store)
	}
	return sealed.Store
}

func plainHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// verifies reports whether a delivery is signed with the webhook secret.
func verifies(r apptest.Request, secretText string) bool {
	key, err := sign.DecodeSecret(secretText)
	if err != nil {
		return false
	}
	return strings.Contains(r.Header.Get("X-Carrier-Signature"), sign.SHA256Hex(r.Body, key))
}

// TestSecretsSealedAtRest: with CARRIER_SECRET_KEY, what the database holds
// of a webhook secret, an SQS secret, a chat webhook URL, an email password
// and an API key hash is sealed or keyed; what was stored before the key was
// set is sealed at the next start and keeps working (keys, signatures), and
// a rotation through CARRIER_SECRET_KEY_PREVIOUS loses nothing.
func TestSecretsSealedAtRest(t *testing.T) {
	keyA, keyB := strings.Repeat("a", 64), strings.Repeat("b", 64) // hex
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			ep := apptest.NewEndpoint(t, nil)
			withKeys := func(cur, prev string) apptest.Options {
				return apptest.Options{Configure: func(cfg *config.Config) {
					cfg.SecretKey, cfg.SecretKeyPrevious = nil, nil
					if cur != "" {
						cfg.SecretKey, _ = secret.ParseKey(cur)
					}
					if prev != "" {
						cfg.SecretKeyPrevious, _ = secret.ParseKey(prev)
					}
				}}
			}

			// Before any key: plain text, as today.
			c := apptest.Start(t, e, withKeys("", ""))
			_, oldKey := c.NewProject("tenant")
			oldHook, oldSecret := c.CreateWebhook(oldKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.*"}})
			c.Stop()

			// With a key: old data is sealed at start and still works.
			c = apptest.Start(t, e, withKeys(keyA, ""))
			raw := rawStore(t, c)
			if r := c.Do("GET", "/v1/webhooks", oldKey, nil); r.Status != http.StatusOK {
				t.Fatalf("a key made before CARRIER_SECRET_KEY: %d %s", r.Status, r.Body)
			}
			subs, err := raw.AllSubscriptions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subs {
				if s.ID == oldHook && !secret.IsSealed(s.Secret) {
					t.Errorf("the old webhook secret is still plain: %q", s.Secret)
				}
			}
			_, newKey := c.NewProject("second")
			if _, err := raw.APIKeyByHash(ctx, plainHash(newKey)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a new key's plain SHA-256 is stored: %v", err)
			}
			newHook, newSecret := c.CreateWebhook(newKey, map[string]any{"webhook_url": ep.URL, "event_types": []string{"a.*"},
				"custom_headers": map[string]string{"X-Endpoint-Token": "hdrtoken123"}})
			site := c.Do("POST", "/v1/captcha/sites", newKey, map[string]any{"name": "login", "vendor": "turnstile",
				"keys": map[string]any{"site_key": "0x4AAAAsitekey", "secret": "0x4AAAAcaptchasecret123"}})
			if site.Status != http.StatusCreated {
				t.Fatalf("create captcha site: %d %s", site.Status, site.Body)
			}
			chat := c.Do("POST", "/v1/subscriptions", newKey, map[string]any{"name": "chat", "event_types": []string{"z"},
				"destination": map[string]any{"type": "slack", "webhook_url": "http://127.0.0.1:9/services/T000/B000/slacktoken123"}})
			mail := c.Do("POST", "/v1/subscriptions", newKey, map[string]any{"name": "mail", "event_types": []string{"z"},
				"destination": map[string]any{"type": "email", "host": "smtp.example.com", "username": "u", "password": "mailpass123",
					"from": "a@example.com", "to": []string{"b@example.com"}}})
			cred := c.Do("POST", "/v1/sqs-credentials", newKey, nil)
			if chat.Status != http.StatusCreated || mail.Status != http.StatusCreated || cred.Status != http.StatusCreated {
				t.Fatalf("create: %s %s %s", chat.Body, mail.Body, cred.Body)
			}
			projectSubs, _ := raw.AllSubscriptions(ctx)
			for _, s := range projectSubs {
				dump := s.Secret + s.PreviousSecret + string(s.Destination)
				for _, v := range s.Headers {
					dump += v
				}
				for _, plain := range []string{newSecret, oldSecret, "slacktoken123", "mailpass123", "hdrtoken123"} {
					if strings.Contains(dump, plain) || strings.Contains(dump, strings.TrimPrefix(plain, "whsec_")) {
						t.Errorf("subscription %s holds %q in plain text", s.Name, plain)
					}
				}
			}
			rc, err := raw.SQSCredential(ctx, cred.Data()["access_key_id"].(string))
			if err != nil || !secret.IsSealed(rc.Secret) {
				t.Errorf("SQS secret at rest: %q %v", rc.Secret, err)
			}
			if got := c.Do("GET", "/v1/subscriptions/"+chat.Data()["subscription_id"].(string), newKey, nil); !strings.Contains(string(got.Body), "127.0.0.1:9/services/T000/B000/***") {
				t.Errorf("chat subscription shown as %s", got.Body)
			}
			// The signing keys (SNS messages, console sessions), created in
			// plain text before the key was set, are sealed too.
			signing, err := raw.AllSigningKeys(ctx)
			if err != nil || len(signing) != 2 {
				t.Errorf("signing keys: %+v %v", signing, err)
			}
			for _, k := range signing {
				if !secret.IsSealed(k.PrivateKey) {
					t.Errorf("signing key %s at rest is not sealed", k.Name)
				}
			}
			sites, err := raw.AllCaptchaSites(ctx)
			if err != nil || len(sites) != 1 || !secret.IsSealed(sites[0].Keys) || strings.Contains(sites[0].Keys, "captchasecret123") {
				t.Errorf("captcha site keys at rest: %+v %v", sites, err)
			}
			c.Publish(oldKey, map[string]any{"type": "a.b"})
			c.Publish(newKey, map[string]any{"type": "a.b"})
			got := ep.WaitRequests(t, 2, 15*time.Second)
			headers := 0
			for _, r := range got {
				if !verifies(r, oldSecret) && !verifies(r, newSecret) {
					t.Errorf("a delivery is not signed with its webhook's secret: %v", r.Header)
				}
				if r.Header.Get("X-Endpoint-Token") == "hdrtoken123" {
					headers++
				}
			}
			if headers != 1 {
				t.Errorf("%d deliveries carried the custom header in plain text, want 1", headers)
			}
			c.Stop()

			// Rotation: the new key with the old one as previous opens and reseals.
			// API keys are moved to the new key when used in the meantime.
			c = apptest.Start(t, e, withKeys(keyB, keyA))
			for _, k := range []string{oldKey, newKey} {
				if r := c.Do("GET", "/v1/webhooks", k, nil); r.Status != http.StatusOK {
					t.Errorf("key during rotation: %d %s", r.Status, r.Body)
				}
			}
			c.Stop()
			// The old key is gone: everything still opens, keys still work.
			c = apptest.Start(t, e, withKeys(keyB, ""))
			for _, k := range []string{oldKey, newKey, apptest.AdminKey} {
				if r := c.Do("GET", "/v1/webhooks", k, nil); r.Status != http.StatusOK {
					t.Errorf("key after rotation: %d %s", r.Status, r.Body)
				}
			}
			c.Publish(newKey, map[string]any{"type": "a.b"})
			last := ep.WaitRequests(t, 3, 15*time.Second)[2]
			if !verifies(last, newSecret) {
				t.Errorf("after rotation the delivery of %s is not signed with its secret", newHook)
			}
			if last.Header.Get("X-Endpoint-Token") != "hdrtoken123" {
				t.Errorf("after rotation the custom header is %q", last.Header.Get("X-Endpoint-Token"))
			}
			// The SQS credential and the CAPTCHA site were sealed again too:
			// they open without the previous key.
			cl := sqsClient(c.URL, cred.Data()["access_key_id"].(string), cred.Data()["secret_access_key"].(string), 0)
			if _, err := cl.ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
				t.Errorf("SQS with the credential after rotation: %v", err)
			}
			if r := c.Do("GET", "/v1/captcha/sites/"+site.Data()["id"].(string), newKey, nil); r.Status != http.StatusOK {
				t.Errorf("captcha site after rotation: %d %s", r.Status, r.Body)
			}
			if resp, err := http.Get(c.URL + c.App.SNSSigner.CertPath()); err != nil || resp.StatusCode != 200 {
				t.Errorf("SNS signing certificate after rotation: %v %v", resp, err)
			}
		})
	}
}
