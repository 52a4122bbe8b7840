// Package signing signs SNS messages as Amazon SNS does, so that a subscriber
// that verifies SNS signatures verifies Carrier's: the string to sign is the
// message's fields in SNS's order, each as "Name\nvalue\n"; SignatureVersion
// 1 signs it with SHA1withRSA and 2 with SHA256withRSA (PKCS #1 v1.5), and
// the Signature is the base64 of that. The signing certificate is served by
// Carrier at SigningCertURL, as are the SubscribeURL and UnsubscribeURL
// links the messages carry.
//
// The RSA key and its self-signed certificate live in the store (sealed with
// CARRIER_SECRET_KEY when one is set), created by the first node that needs
// them, so every node signs with the same key and a restart keeps it.
package signing

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"carrier/internal/store"
)

// KeyName is the name of the SNS signing key in the store.
const KeyName = "sns"

// Message types.
const (
	TypeNotification             = "Notification"
	TypeSubscriptionConfirmation = "SubscriptionConfirmation"
	TypeUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// Message is an SNS message as an HTTP subscriber receives it, in SNS's
// field order. Empty optional fields are left out.
type Message struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token,omitempty"`
	SequenceNumber   string `json:"SequenceNumber,omitempty"`
	TopicArn         string `json:"TopicArn"`
	Subject          string `json:"Subject,omitempty"`
	Message          string `json:"Message"`
	SubscribeURL     string `json:"SubscribeURL,omitempty"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	UnsubscribeURL   string `json:"UnsubscribeURL,omitempty"`
	// MessageAttributes are a notification's attributes ("Type", "Value").
	MessageAttributes map[string]Attribute `json:"MessageAttributes,omitempty"`
}

// Attribute is one message attribute of a notification.
type Attribute struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// StringToSign is what SNS signs: for a notification Message, MessageId,
// Subject (when there is one), Timestamp, TopicArn and Type; for the
// confirmations Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn
// and Type; each as its name, a newline, its value and a newline.
func StringToSign(m Message) string {
	var b strings.Builder
	add := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == TypeNotification {
		if m.Subject != "" {
			add("Subject", m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != TypeNotification {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

func digest(version, s string) (crypto.Hash, []byte, error) {
	switch version {
	case "1":
		sum := sha1.Sum([]byte(s))
		return crypto.SHA1, sum[:], nil
	case "2":
		sum := sha256.Sum256([]byte(s))
		return crypto.SHA256, sum[:], nil
	}
	return 0, nil, fmt.Errorf("SignatureVersion %q is neither 1 nor 2", version)
}

// SubscribeURL is the link in a SubscriptionConfirmation that confirms the
// subscription by a GET, served by Carrier at base.
func SubscribeURL(base, topicArn, token string) string {
	return base + "/?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topicArn) + "&Token=" + url.QueryEscape(token)
}

// UnsubscribeURL is the link in a notification that deletes the
// subscription by a GET, served by Carrier at base.
func UnsubscribeURL(base, subscriptionArn string) string {
	return base + "/?Action=Unsubscribe&SubscriptionArn=" + url.QueryEscape(subscriptionArn)
}

// Signer signs with the SNS signing key. It is safe for concurrent use.
type Signer struct {
	key  *rsa.PrivateKey
	cert []byte // PEM
	name string

	// recent caches signatures by digest: an RSA signature costs about a
	// millisecond of CPU, and every subscriber of a publish (and every retry)
	// signs the same string, since the subscription is not part of it.
	mu     sync.Mutex
	recent map[string]string
}

// maxRecent bounds the signature cache; it is emptied when full.
const maxRecent = 4096

// Store is where the key is kept.
type Store interface {
	SigningKey(ctx context.Context, name string) (store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) (store.SigningKey, error)
}

// Load returns the signer of the stored key, creating the key (RSA 2048, a
// self-signed certificate valid for ten years) when there is none.
func Load(ctx context.Context, st Store, now time.Time) (*Signer, error) {
	k, err := st.SigningKey(ctx, KeyName)
	if errors.Is(err, store.ErrNotFound) {
		if k, err = generate(now); err == nil {
			k, err = st.CreateSigningKey(ctx, k)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sns signing key: %w", err)
	}
	return parse(k)
}

func generate(now time.Time) (store.SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return store.SigningKey{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return store.SigningKey{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Carrier SNS message signing", Organization: []string{"Carrier"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{
		Name:        KeyName,
		PrivateKey:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CreatedAt:   now,
	}, nil
}

func parse(k store.SigningKey) (*Signer, error) {
	b, _ := pem.Decode([]byte(k.PrivateKey))
	if b == nil {
		return nil, errors.New("sns signing key: the stored private key is not PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sns signing key: %w", err)
	}
	cert, err := ParseCertificate([]byte(k.Certificate))
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("sns signing key: the stored certificate is not the private key's")
	}
	sum := sha256.Sum256([]byte(k.Certificate))
	return &Signer{key: key, cert: []byte(k.Certificate), name: "SimpleNotificationService-" + hex.EncodeToString(sum[:16]) + ".pem"}, nil
}

// Certificate is the signing certificate, PEM.
func (s *Signer) Certificate() []byte { return s.cert }

// CertPath is the path at which Carrier serves the certificate; it names
// the certificate by its hash, as SNS's certificate file names do.
func (s *Signer) CertPath() string { return "/sns/" + s.name }

// Sign fills in m.Signature with SignatureVersion m.SignatureVersion ("1"
// when empty).
func (s *Signer) Sign(m *Message) error {
	if m.SignatureVersion == "" {
		m.SignatureVersion = "1"
	}
	h, sum, err := digest(m.SignatureVersion, StringToSign(*m))
	if err != nil {
		return err
	}
	cacheKey := m.SignatureVersion + string(sum)
	s.mu.Lock()
	cached, ok := s.recent[cacheKey]
	s.mu.Unlock()
	if ok {
		m.Signature = cached
		return nil
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, h, sum)
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	s.mu.Lock()
	if s.recent == nil || len(s.recent) >= maxRecent {
		s.recent = map[string]string{}
	}
	s.recent[cacheKey] = m.Signature
	s.mu.Unlock()
	return nil
}

// ParseCertificate reads a PEM certificate.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("sns signing certificate: not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// Verify checks m's signature against certPEM, as a subscriber does.
func Verify(m Message, certPEM []byte) error {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the certificate's key is not RSA")
	}
	h, sum, err := digest(m.SignatureVersion, StringToSign(m))
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return fmt.Errorf("Signature is not base64: %w", err)
	}
	return rsa.VerifyPKCS1v15(pub, h, sum, sig)
}
