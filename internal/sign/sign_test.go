package sign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func secretOf(n int) string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, n))
}

func TestNewSecret(t *testing.T) {
	s1, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 {
		t.Errorf("two calls returned the same secret %q", s1)
	}
	if !strings.HasPrefix(s1, SecretPrefix) {
		t.Errorf("got %q, want prefix %q", s1, SecretPrefix)
	}
	key, err := DecodeSecret(s1)
	if err != nil {
		t.Fatalf("DecodeSecret(%q): %v", s1, err)
	}
	if got, want := len(key), 32; got != want {
		t.Errorf("decoded length: got %d, want %d", got, want)
	}
	if got, want := SecretPrefix+base64.StdEncoding.EncodeToString(key), s1; got != want {
		t.Errorf("re-encoded: got %q, want %q", got, want)
	}
}

func TestDecodeSecret(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantLen int
		wantErr string
	}{
		{"24 bytes", secretOf(24), 24, ""},
		{"64 bytes", secretOf(64), 64, ""},
		{"unpadded", SecretPrefix + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), 32, ""},
		{"missing prefix", strings.TrimPrefix(secretOf(32), SecretPrefix), 0, `secret must start with "whsec_"`},
		{"bad base64", SecretPrefix + "not*base64!", 0, "secret is not valid base64"},
		{"too short", secretOf(10), 0, "secret must decode to 24-64 bytes, got 10"},
		{"too long", secretOf(65), 0, "secret must decode to 24-64 bytes, got 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := DecodeSecret(tt.secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got err %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got, want := len(key), tt.wantLen; got != want {
				t.Errorf("got %d bytes, want %d", got, want)
			}
		})
	}
}

func newKey(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := DecodeSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

func refWebhook(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func headers(msgID string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, Timestamp(ts))
	h.Set(HeaderSignature, sig)
	return h
}

func TestStandardVerifiesWithReference(t *testing.T) {
	secret, key := newKey(t)
	msgID := "msg_2b9bQ3"
	ts := time.Now()
	body := []byte(`{"type":"order.created","id":42}`)

	sig := Standard(msgID, ts, body, key)
	wh := refWebhook(t, secret)
	if err := wh.Verify(body, headers(msgID, ts, sig)); err != nil {
		t.Errorf("reference Verify: %v", err)
	}
	if err := wh.Verify([]byte(`{"type":"order.created","id":43}`), headers(msgID, ts, sig)); err == nil {
		t.Error("reference Verify accepted a tampered body")
	}
}

func TestStandardRotation(t *testing.T) {
	newSecret, newK := newKey(t)
	oldSecret, oldK := newKey(t)
	msgID := "msg_rotate"
	ts := time.Now()
	body := []byte(`{"rotate":true}`)

	sig := Standard(msgID, ts, body, newK, oldK)
	if got, want := len(strings.Split(sig, " ")), 2; got != want {
		t.Fatalf("got %d signatures in %q, want %d", got, sig, want)
	}
	for name, secret := range map[string]string{"new": newSecret, "old": oldSecret} {
		wh := refWebhook(t, secret)
		if err := wh.Verify(body, headers(msgID, ts, sig)); err != nil {
			t.Errorf("%s secret: reference Verify: %v", name, err)
		}
		if err := wh.Verify(append([]byte("x"), body...), headers(msgID, ts, sig)); err == nil {
			t.Errorf("%s secret: reference Verify accepted a tampered body", name)
		}
	}
	_, otherK := newKey(t)
	other := refWebhook(t, SecretPrefix+base64.StdEncoding.EncodeToString(otherK))
	if err := other.Verify(body, headers(msgID, ts, sig)); err == nil {
		t.Error("reference Verify accepted a signature from an unrelated secret")
	}
}

func TestStandardMatchesReferenceSign(t *testing.T) {
	tests := []struct {
		msgID string
		ts    time.Time
		body  []byte
	}{
		{"msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)},
		{"msg_1", time.Unix(1700000000, 999999999), []byte{}},
		{"msg_2", time.Now(), []byte("line1\nline2\x00binary")},
	}
	secret, key := newKey(t)
	wh := refWebhook(t, secret)
	for _, tt := range tests {
		want, err := wh.Sign(tt.msgID, tt.ts, tt.body)
		if err != nil {
			t.Fatal(err)
		}
		if got := Standard(tt.msgID, tt.ts, tt.body, key); got != want {
			t.Errorf("Standard(%q, %v): got %q, want %q", tt.msgID, tt.ts, got, want)
		}
	}
}

func TestSHA256Hex(t *testing.T) {
	key := []byte("key")
	body := []byte("The quick brown fox jumps over the lazy dog")
	if got, want := SHA256Hex(body, key), "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"; got != want {
		t.Errorf("known vector: got %q, want %q", got, want)
	}

	_, k := newKey(t)
	body = []byte(`{"hello":"world"}`)
	m := hmac.New(sha256.New, k)
	m.Write(body)
	if got, want := SHA256Hex(body, k), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTimestamp(t *testing.T) {
	if got, want := Timestamp(time.Unix(1614265330, 500)), "1614265330"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestApply(t *testing.T) {
	secret, key := newKey(t)
	_, old := newKey(t)
	msgID := "msg_apply"
	ts := time.Now()
	body := []byte(`{"apply":1}`)

	h := http.Header{}
	Apply(h, msgID, ts, body, key, old)

	tests := []struct{ name, want string }{
		{HeaderID, msgID},
		{HeaderTimestamp, Timestamp(ts)},
		{HeaderSignature, Standard(msgID, ts, body, key, old)},
		{HeaderCarrier, SHA256Hex(body, key)},
	}
	for _, tt := range tests {
		if got := h.Get(tt.name); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if err := refWebhook(t, secret).Verify(body, h); err != nil {
		t.Errorf("reference Verify of Apply headers: %v", err)
	}
}
