// Package secret keeps secrets encrypted at rest. With CARRIER_SECRET_KEY
// set, Wrap puts a layer over the store that seals every secret (webhook
// signing secrets, current and previous; webhook custom header values; SQS
// credential secrets; chat webhook URLs, which hold their tokens; email
// passwords; Alertmanager bearer tokens; CAPTCHA sites' vendor keys) with
// AES-256-GCM before it is written and opens it when read, and keys API key hashes with
// an HMAC, so a copy of the database yields neither secrets nor a way to
// test guessed API keys. Without a key the store is used as it is.
//
// A sealed value is "sealed:v1:<key id>:<base64url(nonce ‖ ciphertext)>";
// the key id (the first 8 hex digits of SHA-256 of the key) says which key
// sealed it, so values sealed with CARRIER_SECRET_KEY_PREVIOUS still open
// during a rotation, and Reseal rewrites them with the current key. The
// ciphertext is bound to its record and field (additional data), so a sealed
// value copied into another row does not open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

const prefix = "sealed:v1:"

// ParseKey reads a key given as 32 bytes in base64 (standard or URL
// alphabet, padded or not) or in hex.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be %d bytes in base64 or hex (for example: openssl rand -base64 32)", KeySize)
}

// Keys seal with the current key and open with it or the previous one.
type Keys struct {
	current, previous *key
}

type key struct {
	id   string
	aead cipher.AEAD
	hmac []byte // keys API key hashes
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes", KeySize)
	}
	// Separate keys for separate uses, derived from the one configured.
	derive := func(use string) []byte { m := hmac.New(sha256.New, raw); m.Write([]byte(use)); return m.Sum(nil) }
	block, err := aes.NewCipher(derive("carrier at-rest encryption v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return &key{id: hex.EncodeToString(sum[:4]), aead: aead, hmac: derive("carrier api key hash v1")}, nil
}

// NewKeys returns the keys for current and, when not nil, previous.
func NewKeys(current, previous []byte) (*Keys, error) {
	c, err := newKey(current)
	if err != nil {
		return nil, err
	}
	k := &Keys{current: c}
	if previous != nil {
		if k.previous, err = newKey(previous); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// IsSealed reports whether a stored value is sealed.
func IsSealed(v string) bool { return strings.HasPrefix(v, prefix) }

// Seal encrypts plain with the current key, bound to ad (the record and
// field). The empty string and values already sealed are returned as they are.
func (k *Keys) Seal(plain, ad string) (string, error) {
	if plain == "" || IsSealed(plain) {
		return plain, nil
	}
	nonce := make([]byte, k.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.current.aead.Seal(nonce, nonce, []byte(plain), []byte(ad))
	return prefix + k.current.id + ":" + base64.RawURLEncoding.EncodeToString(ct), nil
}

// ErrUnknownKey says a value was sealed with neither configured key.
var ErrUnknownKey = errors.New("sealed with a key that is neither CARRIER_SECRET_KEY nor CARRIER_SECRET_KEY_PREVIOUS")

// Open decrypts a sealed value; a value that is not sealed (stored before a
// key was configured) is returned as it is. stale tells that it was not
// sealed with the current key, so Reseal should rewrite it.
func (k *Keys) Open(stored, ad string) (plain string, stale bool, err error) {
	if !IsSealed(stored) {
		return stored, stored != "", nil
	}
	id, data, ok := strings.Cut(strings.TrimPrefix(stored, prefix), ":")
	if !ok {
		return "", false, errors.New("malformed sealed value")
	}
	var use *key
	switch {
	case id == k.current.id:
		use = k.current
	case k.previous != nil && id == k.previous.id:
		use, stale = k.previous, true
	default:
		return "", false, ErrUnknownKey
	}
	ct, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(ct) < use.aead.NonceSize() {
		return "", false, errors.New("malformed sealed value")
	}
	pt, err := use.aead.Open(nil, ct[:use.aead.NonceSize()], ct[use.aead.NonceSize():], []byte(ad))
	if err != nil {
		return "", false, errors.New("sealed value does not open (altered, or moved from another record)")
	}
	return string(pt), stale, nil
}

// APIKeyHashes returns the stored forms an API key hash (the hex SHA-256
// the API computes) may have, the current one first: keyed with the current
// key, then with the previous one, then the plain hash of keys created
// before a key was configured, which keep working.
func (k *Keys) APIKeyHashes(hash string) []string {
	out := []string{k.current.keyHash(hash)}
	if k.previous != nil {
		out = append(out, k.previous.keyHash(hash))
	}
	return append(out, hash)
}

func (c *key) keyHash(hash string) string {
	m := hmac.New(sha256.New, c.hmac)
	m.Write([]byte(hash))
	return "hmac:" + hex.EncodeToString(m.Sum(nil))
}
