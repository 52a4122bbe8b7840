// Package tc3 signs TencentCloud API 3.0 requests with TC3-HMAC-SHA256
// ("Signature v3", tencentcloud.com/document/api/267/37447, the same page
// under every product), written from that document rather than taken from
// Tencent's SDK:
//
//	CanonicalRequest = Method \n URI \n Query \n CanonicalHeaders \n SignedHeaders \n hex(sha256(payload))
//	StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n Date/service/tc3_request \n hex(sha256(CanonicalRequest))
//	SecretDate       = HMAC("TC3"+SecretKey, Date); SecretService = HMAC(SecretDate, service)
//	SecretSigning    = HMAC(SecretService, "tc3_request")
//	Signature        = hex(HMAC(SecretSigning, StringToSign))
//	Authorization    = "TC3-HMAC-SHA256 Credential=" SecretId/scope ", SignedHeaders=" ... ", Signature=" ...
//
// Date is the UTC date of the timestamp. Both the Carrier client and the
// local stand-in that checks its signatures use this package, which is why
// it imports nothing of Carrier.
package tc3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signature algorithm of API 3.0's v3 signing.
const Algorithm = "TC3-HMAC-SHA256"

// Request is what a signature covers.
type Request struct {
	Method string // "POST"
	URI    string // the URL's path; "/" for API 3.0
	Query  string // the URL's query; "" for a POST
	// Headers are the headers signed, by name; the document requires at
	// least content-type and host. Names and values are signed lower-cased
	// and trimmed.
	Headers map[string]string
	Payload []byte
}

// SignedHeaders is the ";"-joined, sorted, lower-case list of the signed
// header names.
func (r Request) SignedHeaders() string { return strings.Join(r.names(), ";") }

func (r Request) names() []string {
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, strings.ToLower(strings.TrimSpace(k)))
	}
	sort.Strings(names)
	return names
}

func (r Request) header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	return ""
}

// CanonicalRequest is step 1 of the document.
func (r Request) CanonicalRequest() string {
	uri := r.URI
	if uri == "" {
		uri = "/"
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(r.Query)
	b.WriteByte('\n')
	for _, n := range r.names() {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(r.header(n))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(r.SignedHeaders())
	b.WriteByte('\n')
	b.WriteString(sha256Hex(r.Payload))
	return b.String()
}

// Date is the UTC date of a request timestamp, as the credential scope
// names it.
func Date(timestamp int64) string { return time.Unix(timestamp, 0).UTC().Format("2006-01-02") }

// Scope is the credential scope Date/service/tc3_request.
func Scope(timestamp int64, service string) string {
	return Date(timestamp) + "/" + service + "/tc3_request"
}

// StringToSign is step 2 of the document.
func StringToSign(timestamp int64, service string, r Request) string {
	return Algorithm + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + Scope(timestamp, service) + "\n" +
		sha256Hex([]byte(r.CanonicalRequest()))
}

// Signature is step 3 of the document: the hex signature of r at timestamp
// for service with secretKey.
func Signature(secretKey, service string, timestamp int64, r Request) string {
	secretDate := hmacSHA256([]byte("TC3"+secretKey), Date(timestamp))
	secretService := hmacSHA256(secretDate, service)
	secretSigning := hmacSHA256(secretService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(secretSigning, StringToSign(timestamp, service, r)))
}

// Authorization is step 4 of the document: the Authorization header value.
func Authorization(secretID, secretKey, service string, timestamp int64, r Request) string {
	return Algorithm + " Credential=" + secretID + "/" + Scope(timestamp, service) +
		", SignedHeaders=" + r.SignedHeaders() + ", Signature=" + Signature(secretKey, service, timestamp, r)
}

// Auth is a parsed Authorization header.
type Auth struct {
	SecretID      string
	Date          string
	Service       string
	SignedHeaders []string
	Signature     string
}

// ErrMalformed is returned for an Authorization header that is not a TC3
// one.
var ErrMalformed = errors.New("tc3: malformed Authorization header")

// Parse reads an Authorization header as Authorization writes it.
func Parse(header string) (Auth, error) {
	rest, ok := strings.CutPrefix(header, Algorithm+" ")
	if !ok {
		return Auth{}, ErrMalformed
	}
	var a Auth
	var scope string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Auth{}, ErrMalformed
		}
		switch k {
		case "Credential":
			scope = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		default:
			return Auth{}, ErrMalformed
		}
	}
	parts := strings.Split(scope, "/")
	if len(parts) != 4 || parts[3] != "tc3_request" || parts[0] == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
		return Auth{}, ErrMalformed
	}
	a.SecretID, a.Date, a.Service = parts[0], parts[1], parts[2]
	return a, nil
}

// Equal compares two hex signatures in constant time.
func Equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
