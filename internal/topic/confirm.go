package topic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"carrier/internal/dest/snshttp"
	"carrier/internal/ingest"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// TokenValidity is how long a confirmation token confirms: two days, as in
// SNS.
const TokenValidity = 48 * time.Hour

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// sendConfirmation gives pending subscription v a new token and sends its
// SubscriptionConfirmation: an event of type snshttp.ConfirmationType
// addressed to v alone, so it is retried, recorded and replayable like any
// delivery. Only the token's hash is kept with the subscription.
func (s *Service) sendConfirmation(ctx context.Context, t store.Topic, v Subscription, topicArn string) (Subscription, error) {
	raw := make([]byte, 64)
	if _, err := rand.Read(raw); err != nil {
		return Subscription{}, err
	}
	token := hex.EncodeToString(raw)
	info := v.SubscriptionInfo
	info.TokenSHA256, info.TokenExpires = tokenHash(token), s.clock().Add(TokenValidity).UTC()
	md, _ := json.Marshal(metadata{SNS: &info})
	sub, err := s.subs.Update(ctx, v.ProjectID, v.ID, subscription.Input{API: subscription.Subscriptions, Metadata: md})
	if err != nil {
		return Subscription{}, err
	}
	data, _ := json.Marshal(snshttp.Confirmation{Token: token, TopicArn: topicArn, SignatureVersion: t.Attributes["SignatureVersion"]})
	if _, err := s.pub.Publish(ctx, ingest.Input{ProjectID: v.ProjectID, Type: snshttp.ConfirmationType, Data: data, OnlySubscription: v.ID}); err != nil {
		return Subscription{}, err
	}
	out, _ := view(sub)
	return out, nil
}

// ConfirmSubscription confirms the subscription to topic name that token
// was sent to: from now on it receives what is published to the topic.
// authenticated says the call was signed (ConfirmSubscription through the
// API) rather than the SubscribeURL's GET; authOnUnsubscribe is the call's
// AuthenticateOnUnsubscribe. Confirming again with a token still valid
// answers the same subscription.
func (s *Service) ConfirmSubscription(ctx context.Context, projectID, name, token string, authenticated, authOnUnsubscribe bool) (Subscription, error) {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return Subscription{}, err
	}
	if token == "" {
		return Subscription{}, invalid("Token", "Invalid parameter: Token")
	}
	subs, err := s.Subscriptions(ctx, projectID, t.Name)
	if err != nil {
		return Subscription{}, err
	}
	hash := tokenHash(token)
	for _, v := range subs {
		if v.TokenSHA256 != hash {
			continue
		}
		if s.clock().After(v.TokenExpires) {
			return Subscription{}, invalid("Token", "Invalid token: it expired (confirmation tokens are valid for 2 days); subscribe again for a new one")
		}
		if !v.Pending {
			return v, nil
		}
		info := v.SubscriptionInfo
		info.Pending, info.Authenticated = false, authenticated
		info.AuthenticateOnUnsubscribe = authenticated && authOnUnsubscribe
		md, _ := json.Marshal(metadata{SNS: &info})
		sub, err := s.subs.Update(ctx, projectID, v.ID, subscription.Input{API: subscription.Subscriptions, Metadata: md,
			EventTypes: &[]string{EventType(t.Name)}})
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return Subscription{}, err
		}
		out, _ := view(sub)
		return out, nil
	}
	return Subscription{}, invalid("Token", "Invalid token")
}

// DeadLetters moves undeliverable messages into queues (the queue destination).
type DeadLetters interface {
	DeadLetter(ctx context.Context, job store.Job, queue, topicArn, code, message string, at time.Time) error
}
