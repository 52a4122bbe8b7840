// Package sink is a local webhook receiver for development (`carrier sink`):
// it prints every request it receives and checks its Standard Webhooks
// signature, so that a first delivery can be seen, and shown to be signed
// with the secret its subscriber holds, without a public endpoint.
//
// Signatures are checked with the reference Standard Webhooks library rather
// than with Carrier's own signer, so that "signature verified" means what it
// would mean in any receiver built on that library.
package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"carrier/internal/sign"
)

// The verdict printed after each request.
const (
	Verified  = "signature verified"
	Invalid   = "signature INVALID"
	Unchecked = "signature not checked: the sink has no secret (start it with --secret whsec_… or CARRIER_SINK_SECRET)"
)

// MaxBody is the largest request body read. Carrier's own payloads are under
// about 1 MiB (its event limit plus the envelope); anything larger is refused.
const MaxBody = 4 << 20

// Receiver is the sink's HTTP handler.
type Receiver struct {
	// verifier is nil when no secret was given: nothing to check against.
	verifier *standardwebhooks.Webhook
	out      io.Writer
	// mu keeps the lines of one request together when deliveries arrive
	// concurrently.
	mu sync.Mutex
}

// NewReceiver returns a receiver that prints to out and, when secret is not
// empty, verifies signatures with it. The secret must be a Standard Webhooks
// secret ("whsec_" and base64), as Carrier's webhook create answer shows it.
func NewReceiver(secret string, out io.Writer) (*Receiver, error) {
	r := &Receiver{out: out}
	if secret == "" {
		return r, nil
	}
	key, err := sign.DecodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if r.verifier, err = standardwebhooks.NewWebhookRaw(key); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return r, nil
}

// Verifies reports whether the receiver checks signatures.
func (r *Receiver) Verifies() bool { return r.verifier != nil }

// ServeHTTP prints the request and its verdict. It answers 200, or 401 when
// a secret is set and the signature does not verify, so that Carrier does not
// count a delivery the receiver could not trust as delivered: it keeps it as
// failed, to be replayed once the sink has the right secret.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		r.print(req, nil, fmt.Sprintf("body not read: %v", err))
		http.Error(w, "body not read", http.StatusRequestEntityTooLarge)
		return
	}
	status, verdict := http.StatusOK, Unchecked
	if r.verifier != nil {
		if err := r.verifier.Verify(body, req.Header); err != nil {
			status, verdict = http.StatusUnauthorized, Invalid+": "+reason(err)
		} else {
			verdict = Verified
		}
	}
	r.print(req, body, verdict)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	// Carrier keeps the start of the answer with the attempt, so the verdict
	// is visible in the delivery's history too.
	io.WriteString(w, verdict+"\n")
}

// reason explains a verification error in the receiver's terms.
func reason(err error) string {
	switch {
	case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
		return "the webhook-id, webhook-timestamp or webhook-signature header is missing"
	case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
		return "the webhook-timestamp header is not a number of seconds"
	case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
		return "webhook-timestamp is more than 5 minutes away from this machine's clock"
	case errors.Is(err, standardwebhooks.ErrNoMatchingSignature):
		return "no signature matches the secret (a different webhook's secret, or the body was changed)"
	}
	return err.Error()
}

// eventType is the X-Webhook-Event header, or the body's "type" for senders
// that only follow Standard Webhooks.
func eventType(req *http.Request, body []byte) string {
	if t := req.Header.Get("X-Webhook-Event"); t != "" {
		return t
	}
	var payload struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &payload) == nil && payload.Type != "" {
		return payload.Type
	}
	return "(none)"
}

func (r *Receiver) print(req *http.Request, body []byte, verdict string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s  event %s  webhook-id %s\n", time.Now().Format("15:04:05"), req.Method, req.URL.RequestURI(),
		eventType(req, body), orNone(req.Header.Get(sign.HeaderID)))
	if len(body) > 0 {
		// Indented for reading; the signature was checked on the bytes as received.
		var indented bytes.Buffer
		if json.Indent(&indented, body, "", "  ") == nil {
			b.Write(indented.Bytes())
		} else {
			b.Write(body)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%s\n\n", verdict)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.Write(b.Bytes())
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Serve answers requests on ln until ctx is done, then shuts down, giving
// requests in progress a few seconds to finish.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("sink: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("sink: shut down: %w", err)
	}
	return nil
}
