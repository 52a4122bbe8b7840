package signing_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"carrier/internal/sns/signing"
	"carrier/internal/store"
)

// memStore keeps signing keys in memory for the signer's own tests (the
// stores' conformance suite checks the real engines).
type memStore struct {
	mu   sync.Mutex
	keys map[string]store.SigningKey
}

func (m *memStore) SigningKey(_ context.Context, name string) (store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[name]
	if !ok {
		return k, store.ErrNotFound
	}
	return k, nil
}

func (m *memStore) CreateSigningKey(_ context.Context, k store.SigningKey) (store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.keys[k.Name]; ok {
		return old, nil
	}
	m.keys[k.Name] = k
	return k, nil
}

func TestStringToSign(t *testing.T) {
	// The orders SNS documents ("Verifying the signatures of Amazon SNS messages").
	n := signing.Message{Type: "Notification", MessageID: "m1", TopicArn: "arn:aws:sns:us-east-1:123:t", Subject: "s",
		Message: "hello", Timestamp: "2026-12-07T10:00:00.000Z", SignatureVersion: "1", SigningCertURL: "x", UnsubscribeURL: "y"}
	got, want := signing.StringToSign(n), "Message\nhello\nMessageId\nm1\nSubject\ns\nTimestamp\n2026-12-07T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:123:t\nType\nNotification\n"
	if got != want {
		t.Errorf("notification:\n got %q\nwant %q", got, want)
	}
	n.Subject = ""
	got, want = signing.StringToSign(n), "Message\nhello\nMessageId\nm1\nTimestamp\n2026-12-07T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:123:t\nType\nNotification\n"
	if got != want {
		t.Errorf("notification without subject:\n got %q\nwant %q", got, want)
	}
	c := signing.Message{Type: "SubscriptionConfirmation", MessageID: "m2", Token: "tok", TopicArn: "arn", Message: "confirm",
		SubscribeURL: "https://c/?Action=ConfirmSubscription", Timestamp: "ts"}
	got, want = signing.StringToSign(c), "Message\nconfirm\nMessageId\nm2\nSubscribeURL\nhttps://c/?Action=ConfirmSubscription\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
	if got != want {
		t.Errorf("confirmation:\n got %q\nwant %q", got, want)
	}
}

// TestSignVerifiedByOpenSSL checks both signature versions with an
// independent implementation: the openssl command verifies the signature
// over the string to sign with the served certificate's public key.
func TestSignVerifiedByOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	st := &memStore{keys: map[string]store.SigningKey{}}
	s, err := signing.Load(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, s.Certificate(), 0o600)
	pub, err := exec.Command(openssl, "x509", "-in", cert, "-pubkey", "-noout").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pub.pem"), pub, 0o600)
	for _, tc := range []struct{ version, digest string }{{"1", "-sha1"}, {"2", "-sha256"}} {
		m := signing.Message{Type: "Notification", MessageID: "id-" + tc.version, TopicArn: "arn:aws:sns:eu-west-1:p:t", Message: `{"a":"ü"}`,
			Timestamp: "2026-12-07T10:00:00.000Z", SignatureVersion: tc.version}
		if err := s.Sign(&m); err != nil {
			t.Fatal(err)
		}
		if err := signing.Verify(m, s.Certificate()); err != nil {
			t.Fatalf("version %s: Verify: %v", tc.version, err)
		}
		sig, _ := base64.StdEncoding.DecodeString(m.Signature)
		os.WriteFile(filepath.Join(dir, "sig"), sig, 0o600)
		os.WriteFile(filepath.Join(dir, "data"), []byte(signing.StringToSign(m)), 0o600)
		out, err := exec.Command(openssl, "dgst", tc.digest, "-verify", filepath.Join(dir, "pub.pem"), "-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "data")).CombinedOutput()
		if err != nil {
			t.Fatalf("version %s: openssl: %v %s", tc.version, err, out)
		}
		// A changed field fails both verifiers.
		m.Message = `{"a":"u"}`
		if signing.Verify(m, s.Certificate()) == nil {
			t.Errorf("version %s: a changed message verified", tc.version)
		}
		os.WriteFile(filepath.Join(dir, "data"), []byte(signing.StringToSign(m)), 0o600)
		if exec.Command(openssl, "dgst", tc.digest, "-verify", filepath.Join(dir, "pub.pem"), "-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "data")).Run() == nil {
			t.Errorf("version %s: openssl verified a changed message", tc.version)
		}
	}
	if m := (signing.Message{Type: "Notification", SignatureVersion: "3"}); s.Sign(&m) == nil {
		t.Error("SignatureVersion 3 was signed")
	}
}

// TestLoadKeepsKey: a second Load (a restart, another node) signs with the
// same key and serves the same certificate.
func TestLoadKeepsKey(t *testing.T) {
	st := &memStore{keys: map[string]store.SigningKey{}}
	a, err := signing.Load(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := signing.Load(context.Background(), st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Certificate()) != string(b.Certificate()) || a.CertPath() != b.CertPath() {
		t.Fatal("a second Load made another key")
	}
	m := signing.Message{Type: "Notification", MessageID: "x", TopicArn: "t", Message: "m", Timestamp: "ts"}
	if err := a.Sign(&m); err != nil {
		t.Fatal(err)
	}
	if err := signing.Verify(m, b.Certificate()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSign(b *testing.B) {
	st := &memStore{keys: map[string]store.SigningKey{}}
	s, err := signing.Load(context.Background(), st, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		m := signing.Message{Type: "Notification", MessageID: strconv.Itoa(i), TopicArn: "t", Message: "m", Timestamp: "ts"}
		if err := s.Sign(&m); err != nil {
			b.Fatal(err)
		}
	}
}
