// Package sns speaks the Amazon SNS query protocol (form-encoded POST / with
// Action=…&Version=2010-03-31, XML answers) for Carrier's topics
// (internal/topic), authenticated with AWS Signature Version 4 (service sns)
// against the same Carrier SQS credentials as the SQS front, so an SNS
// application switches to Carrier by changing its endpoint URL and
// credentials.
//
// The account of every ARN is the credential's project id, as in the SQS
// front's queue ARNs; the region is the request's SigV4 scope.
package sns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"carrier/internal/sigv4"
	"carrier/internal/sns/signing"
	"carrier/internal/store"
	"carrier/internal/topic"
)

const (
	// Version is the SNS API version the query protocol names.
	Version = "2010-03-31"
	// Namespace is the XML namespace of SNS answers.
	Namespace = "http://sns.amazonaws.com/doc/2010-03-31/"
	// MaxRequestBytes bounds a request body (a 256 KiB batch, form-encoded).
	MaxRequestBytes = 2 << 20
	formType        = "application/x-www-form-urlencoded"
)

// Credentials finds the SQS credential an access key id names (the SNS front
// shares them with the SQS front).
type Credentials interface {
	SQSCredential(ctx context.Context, accessKeyID string) (store.SQSCredential, error)
}

// Handler answers SNS requests.
type Handler struct {
	Credentials Credentials
	Topics      *topic.Service
	// Signer signs the messages of http and https subscriptions; its
	// certificate is served at its CertPath.
	Signer *signing.Signer
	Log    *slog.Logger
	// Now is the clock for signature dates (time.Now when nil).
	Now func() time.Time
}

// IsRequest tells whether r is an SNS query-protocol request: a POST to /
// signed for service sns, or, unsigned or otherwise, a form naming
// Version=2010-03-31. It leaves r's body to be read again.
func IsRequest(r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if a, err := sigv4.ParseAuthorization(r.Header.Get("Authorization")); err == nil && a.Service == "sns" {
		return true
	}
	if r.URL.Query().Get("Version") == Version {
		return true
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != formType || r.Body == nil {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil {
		return false
	}
	form, err := url.ParseQuery(string(head))
	return err == nil && form.Get("Version") == Version
}

// call is one authenticated request.
type call struct {
	ctx     context.Context
	h       *Handler
	project string
	region  string
	form    url.Values
}

type action func(c *call) (any, *Error)

var actions map[string]action

func init() {
	actions = map[string]action{
		"CreateTopic":               createTopic,
		"DeleteTopic":               deleteTopic,
		"ListTopics":                listTopics,
		"GetTopicAttributes":        getTopicAttributes,
		"SetTopicAttributes":        setTopicAttributes,
		"Subscribe":                 subscribe,
		"ConfirmSubscription":       confirmSubscription,
		"Unsubscribe":               unsubscribe,
		"ListSubscriptions":         listSubscriptions,
		"ListSubscriptionsByTopic":  listSubscriptionsByTopic,
		"GetSubscriptionAttributes": getSubscriptionAttributes,
		"SetSubscriptionAttributes": setSubscriptionAttributes,
		"Publish":                   publish,
		"PublishBatch":              publishBatch,
		"TagResource":               tagResource,
		"UntagResource":             untagResource,
		"ListTagsForResource":       listTagsForResource,
	}
}

// ServeHTTP answers one SNS request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	name, out, e := h.serve(r)
	if e != nil {
		if e.Status >= 500 && h.Log != nil {
			h.Log.Error("sns request failed", "action", name, "message", e.Message)
		}
		e.write(w, id)
		return
	}
	writeResult(w, name, out, id)
}

func (h *Handler) serve(r *http.Request) (string, any, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return "", nil, errInvalid("could not read the request body")
	}
	if len(body) > MaxRequestBytes {
		return "", nil, newErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than %d bytes.", MaxRequestBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", nil, errInvalid("Could not parse the request body as a form: %v", err)
	}
	for k, vs := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = vs
		}
	}
	name := form.Get("Action")
	c, e := h.authenticate(r, body)
	if e != nil {
		return name, nil, e
	}
	c.form = form
	act, ok := actions[name]
	if !ok {
		return name, nil, newErr(400, "InvalidAction", "The action %s is not valid for this endpoint.", name)
	}
	if v := form.Get("Version"); v != "" && v != Version {
		return name, nil, newErr(400, "InvalidParameter", "Invalid parameter: Version %s is not supported (only %s)", v, Version)
	}
	out, e := act(c)
	return name, out, e
}

func (h *Handler) authenticate(r *http.Request, body []byte) (*call, *Error) {
	auth, err := sigv4.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, sigError(err)
	}
	cred, err := h.Credentials.SQSCredential(r.Context(), auth.AccessKeyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, newErr(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
	}
	if err != nil {
		return nil, errInternal()
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && !strings.EqualFold(claimed, payload) {
		return nil, newErr(403, "SignatureDoesNotMatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	} else if claimed != "" {
		payload = claimed
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	req := sigv4.Request{Method: r.Method, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header,
		ContentLength: r.ContentLength, PayloadHash: payload}
	if err := sigv4.Verify(cred.Secret, "sns", auth, req, now); err != nil {
		return nil, sigError(err)
	}
	return &call{ctx: r.Context(), h: h, project: cred.ProjectID, region: auth.Region}, nil
}
