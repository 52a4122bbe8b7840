// Package sigv4 verifies AWS Signature Version 4 (the Authorization header
// form, AWS4-HMAC-SHA256) as a pure function of a request's parts, for the
// SQS and SNS fronts, which share Carrier's SQS credentials.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	// MaxClockSkew is how far X-Amz-Date may be from the server's clock.
	MaxClockSkew = 15 * time.Minute
)

// Authorization is a parsed Authorization header.
type Authorization struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string // lower case, sorted as sent
	Signature     string   // hex
}

// Scope is the credential scope: date/region/service/aws4_request.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// Request is what a signature covers.
type Request struct {
	Method      string
	EscapedPath string // as sent (r.URL.EscapedPath())
	RawQuery    string
	Host        string
	Header      http.Header
	// ContentLength is used when content-length is signed but not in Header
	// (Go's server keeps it in the request, not always in the header).
	ContentLength int64
	// PayloadHash is the hex SHA-256 of the body.
	PayloadHash string
}

// Error is a refused signature, with its AWS common error code.
type Error struct {
	Code    string // IncompleteSignature, SignatureDoesNotMatch, MissingAuthenticationToken, …
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ParseAuthorization parses an AWS4-HMAC-SHA256 Authorization header.
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	if strings.TrimSpace(h) == "" {
		return a, &Error{"MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	rest, ok := strings.CutPrefix(h, sigAlgorithm+" ")
	if !ok {
		return a, &Error{"IncompleteSignature", "Unsupported Authorization header: only " + sigAlgorithm + " is accepted"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, &Error{"IncompleteSignature", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"}
		}
		fields[k] = v
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return a, &Error{"IncompleteSignature", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"}
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return a, &Error{"IncompleteSignature", "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request"}
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	a.SignedHeaders = strings.Split(signed, ";")
	a.Signature = strings.ToLower(sig)
	return a, nil
}

// uriEncode encodes s per SigV4: every byte but A-Z a-z 0-9 - _ . ~ is %XX
// (upper case); '/' is kept when keepSlash.
func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	vals, _ := url.ParseQuery(raw)
	var pairs []string
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k, false)+"="+uriEncode(v, false))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func canonicalHeaderValue(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// CanonicalRequest builds the SigV4 canonical request for the signed headers.
// The path is encoded once more, as every AWS service but S3 expects.
func CanonicalRequest(r Request, signedHeaders []string) (string, error) {
	path := r.EscapedPath
	if path == "" {
		path = "/"
	}
	var hb strings.Builder
	for _, name := range signedHeaders {
		var v string
		switch name {
		case "host":
			v = r.Host
		case "content-length":
			if vs := r.Header.Values(name); len(vs) > 0 {
				v = canonicalHeaderValue(vs)
			} else {
				v = strconv.FormatInt(r.ContentLength, 10)
			}
		default:
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return "", &Error{"SignatureDoesNotMatch", "signed header " + name + " is not in the request"}
			}
			v = canonicalHeaderValue(vs)
		}
		hb.WriteString(name + ":" + v + "\n")
	}
	return strings.Join([]string{r.Method, uriEncode(path, true), canonicalQuery(r.RawQuery), hb.String(),
		strings.Join(signedHeaders, ";"), r.PayloadHash}, "\n"), nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Signature computes the hex signature of r with secret, for the scope and
// signed headers of auth, at amzDate (yyyymmddThhmmssZ).
func Signature(secret string, auth Authorization, amzDate string, r Request) (string, error) {
	creq, err := CanonicalRequest(r, auth.SignedHeaders)
	if err != nil {
		return "", err
	}
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + auth.Scope() + "\n" + sha256Hex(creq)
	k := hmacSHA256([]byte("AWS4"+secret), auth.Date)
	k = hmacSHA256(k, auth.Region)
	k = hmacSHA256(k, auth.Service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, toSign)), nil
}

// Verify checks r's signature with secret: header form, the given service,
// any region, the date within MaxClockSkew of now. auth comes from
// ParseAuthorization of r's Authorization header.
func Verify(secret, service string, auth Authorization, r Request, now time.Time) error {
	if auth.Service != service {
		return &Error{"SignatureDoesNotMatch", fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)}
	}
	signed := map[string]bool{}
	for i, h := range auth.SignedHeaders {
		if h != strings.ToLower(h) || (i > 0 && auth.SignedHeaders[i-1] >= h) {
			return &Error{"SignatureDoesNotMatch", "SignedHeaders must be lower case and sorted"}
		}
		signed[h] = true
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return &Error{"IncompleteSignature", "X-Amz-Date header is required"}
	}
	if name := unsignedRequired(signed, r.Header); name != "" {
		return &Error{"SignatureDoesNotMatch", "'" + name + "' must be a signed header"}
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return &Error{"IncompleteSignature", "X-Amz-Date must have the form yyyyMMddTHHmmssZ"}
	}
	if d := now.Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return &Error{"SignatureDoesNotMatch", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-MaxClockSkew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat))}
	}
	if auth.Date != amzDate[:8] {
		return &Error{"SignatureDoesNotMatch", "Credential date does not match X-Amz-Date"}
	}
	want, err := Signature(secret, auth, amzDate, r)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(want), []byte(auth.Signature)) {
		return &Error{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return nil
}

// unsignedRequired returns the first header that must be signed but is not,
// or "". A header outside the signature can be changed by anyone who captured
// the request: X-Amz-Target picks the action (a signed ListQueues replayed as
// DeleteQueue) and Content-Type how the body is read, so both are required
// when sent, as are Host and X-Amz-Date always. The AWS SDKs (aws-sdk-go-v2's
// v4 signer, botocore) sign every header but a few such as User-Agent, so
// their requests always pass.
func unsignedRequired(signed map[string]bool, h http.Header) string {
	switch {
	case !signed["host"]:
		return "Host"
	case !signed["x-amz-date"]:
		return "X-Amz-Date"
	case len(h.Values("X-Amz-Target")) > 0 && !signed["x-amz-target"]:
		return "X-Amz-Target"
	case len(h.Values("Content-Type")) > 0 && !signed["content-type"]:
		return "Content-Type"
	}
	return ""
}

// AsError tells whether err is a refused signature, and which.
func AsError(err error) (*Error, bool) {
	var se *Error
	ok := errors.As(err, &se)
	return se, ok
}
