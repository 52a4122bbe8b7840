// Package sign produces the signature headers Carrier attaches to webhook
// deliveries: the Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature) and Carrier's own X-Carrier-Signature.
package sign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix is the prefix every Standard Webhooks secret starts with.
const SecretPrefix = "whsec_"

// Allowed decoded secret lengths, in bytes.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// Header names set by Apply.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	HeaderCarrier   = "X-Carrier-Signature"
)

// NewSecret returns a new Standard Webhooks secret: "whsec_" followed by the
// padded standard base64 encoding of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// DecodeSecret checks that s is a Standard Webhooks secret and returns its
// key bytes. The base64 part may be padded or unpadded and must decode to
// 24-64 bytes.
func DecodeSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New(`secret must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		return nil, errors.New("secret is not valid base64 after the \"whsec_\" prefix")
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("secret must decode to %d-%d bytes, got %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, nil
}

// Standard returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256>" entry per key, signing msgID + "." + unix seconds
// + "." + body, separated by single spaces. Pass the newest key first when
// rotating secrets.
func Standard(msgID string, ts time.Time, body []byte, keys ...[]byte) string {
	sigs := make([]string, len(keys))
	for i, key := range keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msgID + "." + Timestamp(ts) + "."))
		m.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return strings.Join(sigs, " ")
}

// SHA256Hex returns the X-Carrier-Signature header value: "sha256=" followed
// by the lowercase hex HMAC-SHA256 of body under key (the decoded secret).
func SHA256Hex(body []byte, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Timestamp returns the webhook-timestamp header value: ts in unix seconds.
func Timestamp(ts time.Time) string {
	return strconv.FormatInt(ts.Unix(), 10)
}

// Apply sets the webhook-id, webhook-timestamp, webhook-signature and
// X-Carrier-Signature headers on h. The Standard signature covers every key;
// X-Carrier-Signature uses keys[0]. The signature headers are left unset if
// keys is empty.
func Apply(h http.Header, msgID string, ts time.Time, body []byte, keys ...[]byte) {
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, Timestamp(ts))
	if len(keys) == 0 {
		return
	}
	h.Set(HeaderSignature, Standard(msgID, ts, body, keys...))
	h.Set(HeaderCarrier, SHA256Hex(body, keys[0]))
}
