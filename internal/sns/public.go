package sns

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// IsPublicRequest tells whether r is one of the unsigned requests SNS
// serves to the endpoints it delivers to: a GET of a SubscribeURL
// (/?Action=ConfirmSubscription&TopicArn=…&Token=…), of an UnsubscribeURL
// (/?Action=Unsubscribe&SubscriptionArn=…), or of the signing certificate
// (/sns/SimpleNotificationService-….pem).
func IsPublicRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/sns/") {
		return true
	}
	if r.URL.Path != "/" {
		return false
	}
	a := r.URL.Query().Get("Action")
	return a == "ConfirmSubscription" || a == "Unsubscribe"
}

// ServePublic answers a request IsPublicRequest recognises. The token of a
// SubscribeURL is its credential, and the subscription ARN (which holds the
// subscription's random id) that of an UnsubscribeURL, unless the
// subscription was confirmed with AuthenticateOnUnsubscribe.
func (h *Handler) ServePublic(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	w.Header().Set("x-amzn-RequestId", id)
	if strings.HasPrefix(r.URL.Path, "/sns/") {
		if h.Signer == nil || r.URL.Path != h.Signer.CertPath() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(h.Signer.Certificate())
		return
	}
	q := r.URL.Query()
	name := q.Get("Action")
	var out any
	var e *Error
	if name == "ConfirmSubscription" {
		out, e = h.confirmByLink(r, q.Get("TopicArn"), q.Get("Token"))
	} else {
		out, e = h.unsubscribeByLink(r, q.Get("SubscriptionArn"))
	}
	if e != nil {
		e.write(w, id)
		return
	}
	writeResult(w, name, out, id)
}

// arnParts splits an SNS ARN into its region, account and the rest (topic,
// or topic and subscription id).
func arnParts(arn string, n int) (region, account string, rest []string, ok bool) {
	p := strings.Split(arn, ":")
	if len(p) != 5+n || p[0] != "arn" || p[2] != "sns" || p[4] == "" {
		return "", "", nil, false
	}
	for _, v := range p[5:] {
		if v == "" {
			return "", "", nil, false
		}
	}
	return p[3], p[4], p[5:], true
}

func (h *Handler) confirmByLink(r *http.Request, topicArn, token string) (any, *Error) {
	region, account, rest, ok := arnParts(topicArn, 1)
	if !ok {
		return nil, errInvalid("Invalid parameter: TopicArn")
	}
	s, err := h.Topics.ConfirmSubscription(r.Context(), account, rest[0], token, false, false)
	if err != nil {
		return nil, serviceError(err)
	}
	return subscribeResult{SubscriptionArn: "arn:aws:sns:" + region + ":" + account + ":" + s.Topic + ":" + s.ID}, nil
}

func (h *Handler) unsubscribeByLink(r *http.Request, subscriptionArn string) (any, *Error) {
	_, account, rest, ok := arnParts(subscriptionArn, 2)
	if !ok {
		return nil, errInvalid("Invalid parameter: SubscriptionArn")
	}
	s, err := h.Topics.GetSubscription(r.Context(), account, rest[1])
	if err != nil {
		return nil, serviceError(err)
	}
	if s.Topic != rest[0] {
		return nil, errNotFound("Subscription")
	}
	if s.AuthenticateOnUnsubscribe {
		return nil, newErr(403, "AuthorizationError", "This subscription was confirmed with AuthenticateOnUnsubscribe: unsubscribing needs a signed Unsubscribe call.")
	}
	if err := h.Topics.Unsubscribe(r.Context(), account, s.ID); err != nil {
		return nil, serviceError(err)
	}
	return nil, nil
}
