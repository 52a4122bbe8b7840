package topic

import (
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"time"

	"carrier/internal/dest"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/dest/snsemail"
	"carrier/internal/dest/snshttp"
	"carrier/internal/dest/snslambda"
	"carrier/internal/filter"
	"carrier/internal/ingest"
	"carrier/internal/store"
	"carrier/internal/subscription"
)

// Protocols maps the SNS protocols Carrier delivers to the destination kind
// each becomes; the endpoint becomes the setting named. sqs is the queue
// destination with the published message in the envelope; http and https
// are SNS's HTTP delivery with its confirmation flow and signatures
// (internal/dest/snshttp); discord, slack and log are Carrier's own. A new
// protocol is one entry here and, where it needs one, a destination kind
// (internal/dest).
var Protocols = map[string]struct{ Kind, Setting string }{
	"sqs":        {destqueue.Kind, "queue"},
	"http":       {snshttp.Kind, "url"},
	"https":      {snshttp.Kind, "url"},
	"email":      {snsemail.Kind, "to"},
	"email-json": {snsemail.Kind, "to"},
	"lambda":     {snslambda.Kind, "function_arn"},
	"discord":    {"discord", "webhook_url"},
	"slack":      {"slack", "webhook_url"},
	"log":        {"log", "file"},
}

// confirmed reports whether a protocol's subscriptions must be confirmed
// by their endpoint before they receive anything but the confirmation.
func needsConfirmation(protocol string) bool {
	return protocol == "http" || protocol == "https" || protocol == "email" || protocol == "email-json"
}

// snsProtocols are SNS's own protocols, some of which Carrier does not deliver yet.
var snsProtocols = map[string]bool{"http": true, "https": true, "email": true, "email-json": true, "sms": true, "sqs": true,
	"application": true, "lambda": true, "firehose": true}

// SubscriptionInfo is what SNS tells of a subscription, kept in the
// subscription's metadata under "sns".
type SubscriptionInfo struct {
	Topic         string `json:"topic"`
	Protocol      string `json:"protocol"`
	Endpoint      string `json:"endpoint"`
	RedrivePolicy string `json:"redrive_policy,omitempty"`
	// Pending is an http or https subscription that its endpoint has not
	// confirmed: it receives its SubscriptionConfirmation and nothing else.
	Pending bool `json:"pending,omitempty"`
	// TokenSHA256 is the hash of the newest confirmation token, kept until
	// TokenExpires so that confirming again answers the same subscription.
	TokenSHA256  string    `json:"token_sha256,omitempty"`
	TokenExpires time.Time `json:"token_expires,omitzero"`
	// Authenticated: confirmed by a signed ConfirmSubscription call
	// (ConfirmationWasAuthenticated); AuthenticateOnUnsubscribe then
	// refuses an unsigned unsubscribe (the UnsubscribeURL).
	Authenticated             bool `json:"authenticated,omitempty"`
	AuthenticateOnUnsubscribe bool `json:"authenticate_on_unsubscribe,omitempty"`
}

// Subscription is an SNS subscription: the Carrier subscription and its SNS view.
type Subscription struct {
	store.Subscription
	SubscriptionInfo
	// Raw is RawMessageDelivery.
	Raw bool
	// FilterPolicyScope is MessageAttributes or MessageBody.
	FilterPolicyScope string
}

type metadata struct {
	SNS *SubscriptionInfo `json:"sns"`
}

func view(sub store.Subscription) (Subscription, bool) {
	var md metadata
	if json.Unmarshal(sub.Metadata, &md) != nil || md.SNS == nil {
		return Subscription{}, false
	}
	out := Subscription{Subscription: sub, SubscriptionInfo: *md.SNS, FilterPolicyScope: "MessageAttributes"}
	if sub.FilterScope == filter.ScopeBody {
		out.FilterPolicyScope = "MessageBody"
	}
	switch sub.Kind {
	case destqueue.Kind:
		c, _ := destqueue.ParseConfig(sub.Destination)
		out.Raw = c.Raw
	case snshttp.Kind:
		c, _ := snshttp.ParseConfig(sub.Destination)
		out.Raw = c.Raw
	}
	return out, true
}

// SubscribeInput is a Subscribe call.
type SubscribeInput struct {
	Protocol string
	Endpoint string
	// Attributes: FilterPolicy, FilterPolicyScope, RawMessageDelivery, RedrivePolicy.
	Attributes map[string]string
	// TopicArn is the envelope's TopicArn in what the subscription delivers.
	TopicArn string
}

var subscriptionAttributes = map[string]bool{"FilterPolicy": true, "FilterPolicyScope": true, "RawMessageDelivery": true, "RedrivePolicy": true,
	"DeliveryPolicy": true, "SubscriptionRoleArn": true, "ReplayPolicy": true}

// QueueName returns the queue an sqs endpoint names: an SQS queue ARN of the
// project (the SNS account), arn:aws:sqs:<region>:<project>:<queue>.
func QueueName(projectID, arn string) (string, bool) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[4] != projectID || p[5] == "" {
		return "", false
	}
	return p[5], true
}

// Subscribe subscribes an endpoint to topic name. Subscribing the same
// protocol and endpoint again returns the existing subscription (with the
// given attributes applied), as SNS does.
func (s *Service) Subscribe(ctx context.Context, projectID, name string, in SubscribeInput) (Subscription, error) {
	t, err := s.Get(ctx, projectID, name)
	if err != nil {
		return Subscription{}, err
	}
	p, ok := Protocols[in.Protocol]
	if !ok {
		if in.Protocol == "" {
			return Subscription{}, invalid("Protocol", "Invalid parameter: Protocol")
		}
		if !snsProtocols[in.Protocol] {
			return Subscription{}, invalid("Protocol", "Invalid parameter: Amazon SNS does not support this protocol string: %s", in.Protocol)
		}
		return Subscription{}, invalid("Protocol", "Unsupported protocol %q: Carrier delivers sqs, http, https, email, email-json, lambda, discord, slack and log", in.Protocol)
	}
	if in.Endpoint == "" {
		return Subscription{}, invalid("Endpoint", "Invalid parameter: Endpoint")
	}
	for k := range in.Attributes {
		if !subscriptionAttributes[k] {
			return Subscription{}, invalid("Attributes", "Attribute Name %s is not valid", k)
		}
	}
	settings := map[string]any{"type": p.Kind, p.Setting: in.Endpoint}
	if in.Protocol == "sqs" {
		q, ok := QueueName(projectID, in.Endpoint)
		if !ok {
			return Subscription{}, invalid("Endpoint", "Invalid SQS endpoint ARN: it must be the ARN of a queue of this account (arn:aws:sqs:<region>:%s:<queue>)", projectID)
		}
		queue, err := s.store.QueueByName(ctx, projectID, q)
		if errors.Is(err, store.ErrNotFound) {
			return Subscription{}, invalid("Endpoint", "Invalid SQS endpoint: queue %s does not exist", q)
		}
		if err != nil {
			return Subscription{}, err
		}
		if t.FIFO != queue.FIFO {
			return Subscription{}, invalid("Endpoint", "FIFO topics deliver only to FIFO queues, and FIFO queues take only FIFO topics")
		}
		settings = map[string]any{"type": p.Kind, "queue": q, "message": destqueue.MessagePublished, "topic_arn": in.TopicArn}
	} else if t.FIFO {
		return Subscription{}, invalid("Protocol", "FIFO topics deliver only to SQS FIFO queues")
	} else {
		switch in.Protocol {
		case "http", "https":
			if !strings.HasPrefix(strings.ToLower(in.Endpoint), in.Protocol+"://") {
				return Subscription{}, invalid("Endpoint", "Invalid parameter: Endpoint must match the specified protocol")
			}
			settings = map[string]any{"type": p.Kind, "url": in.Endpoint, "topic_arn": in.TopicArn}
		case "email", "email-json":
			if !s.EmailEnabled {
				return Subscription{}, invalid("Protocol", "Invalid parameter: %s subscriptions need an SMTP server: set CARRIER_SNS_EMAIL_SMTP", in.Protocol)
			}
			if a, err := mail.ParseAddress(in.Endpoint); err != nil || a.Name != "" || a.Address != in.Endpoint {
				return Subscription{}, invalid("Endpoint", "Invalid parameter: Email address")
			}
			settings = map[string]any{"type": p.Kind, "to": in.Endpoint, "topic_arn": in.TopicArn, "json": in.Protocol == "email-json"}
		case "lambda":
			if !snslambda.CheckFunctionArn(in.Endpoint) {
				return Subscription{}, invalid("Endpoint", "Invalid parameter: Lambda endpoint ARN (arn:aws:lambda:<region>:<account>:function:<name>)")
			}
			settings = map[string]any{"type": p.Kind, "function_arn": in.Endpoint, "topic_arn": in.TopicArn}
		}
	}
	existing, err := s.Subscriptions(ctx, projectID, name)
	if err != nil {
		return Subscription{}, err
	}
	for _, e := range existing {
		if e.Protocol == in.Protocol && e.Endpoint == in.Endpoint {
			for _, k := range sortedKeys(in.Attributes) {
				if e, err = s.SetSubscriptionAttribute(ctx, projectID, e.ID, k, in.Attributes[k]); err != nil {
					return Subscription{}, err
				}
			}
			if e.Pending {
				// Subscribing again sends a new confirmation, as SNS does.
				return s.sendConfirmation(ctx, t, e, in.TopicArn)
			}
			return e, nil
		}
	}
	info := SubscriptionInfo{Topic: name, Protocol: in.Protocol, Endpoint: in.Endpoint, Pending: needsConfirmation(in.Protocol)}
	sin := subscription.Input{API: subscription.Subscriptions, Name: ptr(subscriptionName(name, in.Protocol)),
		EventTypes: &[]string{EventType(name)}, NoEventTypes: info.Pending}
	if t.FIFO {
		sin.Ordering = ptr("fifo")
	}
	if err := applySubscriptionAttributes(projectID, &sin, &info, settings, in.Protocol, in.Attributes); err != nil {
		return Subscription{}, err
	}
	sub, err := s.subs.Create(ctx, projectID, sin)
	if err != nil {
		return Subscription{}, fieldError(err)
	}
	v, _ := view(sub)
	if v.Pending {
		out, err := s.sendConfirmation(ctx, t, v, in.TopicArn)
		if err != nil {
			// Without its confirmation the subscription could never be
			// confirmed: take it back, and let the caller subscribe again.
			if derr := s.subs.Delete(ctx, projectID, v.ID, subscription.Subscriptions); derr != nil {
				return Subscription{}, errors.Join(err, derr)
			}
			return Subscription{}, err
		}
		return out, nil
	}
	if in.Protocol == "lambda" && s.LambdaFunctions[in.Endpoint] == "" {
		// Accepted, as SNS accepts any function: its deliveries wait as
		// "lambda_unmapped" until the operator maps the function. Say so
		// where operators look: an event of the project.
		data, _ := json.Marshal(map[string]string{"subscription_id": v.ID, "subscription_arn": in.TopicArn + ":" + v.ID,
			"function_arn": in.Endpoint, "topic": name,
			"message": "lambda subscription to a function CARRIER_SNS_LAMBDA_FUNCTIONS does not map: its deliveries fail as lambda_unmapped until it does"})
		if _, err := s.pub.Publish(ctx, ingest.Input{ProjectID: projectID, Type: snslambda.UnmappedType, Subject: v.ID, Data: data}); err != nil {
			return Subscription{}, err
		}
	}
	return v, nil
}

func ptr[T any](v T) *T { return &v }

// subscriptionName is the Carrier name of an SNS subscription, within the
// 255 characters names may have.
func subscriptionName(topicName, protocol string) string {
	n := "sns:" + protocol + ":" + topicName
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// applySubscriptionAttributes maps SNS subscription attributes onto in,
// whose destination becomes settings.
func applySubscriptionAttributes(projectID string, in *subscription.Input, info *SubscriptionInfo, settings map[string]any, protocol string, attrs map[string]string) error {
	if v, ok := attrs["FilterPolicyScope"]; ok {
		switch v {
		case "MessageAttributes":
			in.FilterScope = ptr(filter.ScopeAttributes)
		case "MessageBody":
			in.FilterScope = ptr(filter.ScopeBody)
		default:
			return invalid("Attributes", "FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", v)
		}
	}
	if v, ok := attrs["FilterPolicy"]; ok {
		if strings.TrimSpace(v) == "" {
			in.FilterPolicy = json.RawMessage("null")
		} else {
			if !json.Valid([]byte(v)) {
				return invalid("Attributes", "FilterPolicy: failed to parse JSON")
			}
			in.FilterPolicy = json.RawMessage(v)
		}
	}
	if v, ok := attrs["RawMessageDelivery"]; ok {
		raw, err := boolAttr("Attributes", v)
		if err != nil {
			return invalid("Attributes", "RawMessageDelivery: Invalid value [%s]. Must be true or false.", v)
		}
		rawCapable := protocol == "sqs" || protocol == "http" || protocol == "https"
		if raw && !rawCapable {
			return invalid("Attributes", "Delivery protocol [%s] does not support raw message delivery.", protocol)
		}
		if rawCapable {
			settings["raw"] = raw
		}
	}
	if v, ok := attrs["RedrivePolicy"]; ok {
		if v != "" {
			if _, err := checkRedrivePolicy(projectID, v); err != nil {
				return err
			}
		}
		info.RedrivePolicy = v
	}
	b, _ := json.Marshal(settings)
	in.Destination = b
	md, _ := json.Marshal(metadata{SNS: info})
	in.Metadata = md
	return nil
}

// fieldError names SNS's parameters in a subscription service error.
func fieldError(err error) error {
	var fe *dest.FieldError
	if errors.As(err, &fe) {
		switch {
		case strings.HasPrefix(fe.Field, "filter_policy"):
			return invalid("Attributes", "FilterPolicy: %s", fe.Message)
		case strings.HasPrefix(fe.Field, "destination"), fe.Field == "webhook_url", fe.Field == "file", fe.Field == "queue", fe.Field == "url",
			fe.Field == "to", fe.Field == "function_arn":
			return invalid("Endpoint", "%s", fe.Message)
		}
		return invalid("Attributes", "%s: %s", fe.Field, fe.Message)
	}
	return err
}

// Subscriptions lists the SNS subscriptions of topic name ("": of every topic).
func (s *Service) Subscriptions(ctx context.Context, projectID, name string) ([]Subscription, error) {
	subs, err := s.subs.List(ctx, projectID, subscription.Subscriptions)
	if err != nil {
		return nil, err
	}
	out := []Subscription{}
	for _, sub := range subs {
		if v, ok := view(sub); ok && (name == "" || v.Topic == name) {
			out = append(out, v)
		}
	}
	return out, nil
}

// GetSubscription returns SNS subscription id.
func (s *Service) GetSubscription(ctx context.Context, projectID, id string) (Subscription, error) {
	sub, err := s.subs.Get(ctx, projectID, id, subscription.Subscriptions)
	if errors.Is(err, store.ErrNotFound) {
		return Subscription{}, &NotFoundError{What: "Subscription"}
	}
	if err != nil {
		return Subscription{}, err
	}
	v, ok := view(sub)
	if !ok {
		return Subscription{}, &NotFoundError{What: "Subscription"}
	}
	return v, nil
}

// Unsubscribe deletes SNS subscription id.
func (s *Service) Unsubscribe(ctx context.Context, projectID, id string) error {
	if _, err := s.GetSubscription(ctx, projectID, id); err != nil {
		return err
	}
	err := s.subs.Delete(ctx, projectID, id, subscription.Subscriptions)
	if errors.Is(err, store.ErrNotFound) {
		return &NotFoundError{What: "Subscription"}
	}
	return err
}

// SetSubscriptionAttribute changes one attribute of SNS subscription id.
func (s *Service) SetSubscriptionAttribute(ctx context.Context, projectID, id, name, value string) (Subscription, error) {
	v, err := s.GetSubscription(ctx, projectID, id)
	if err != nil {
		return Subscription{}, err
	}
	if !subscriptionAttributes[name] {
		return Subscription{}, invalid("AttributeName", "Invalid parameter: AttributeName")
	}
	settings := map[string]any{}
	json.Unmarshal(v.Destination, &settings)
	settings["type"] = v.Kind
	in := subscription.Input{API: subscription.Subscriptions}
	info := v.SubscriptionInfo
	if err := applySubscriptionAttributes(projectID, &in, &info, settings, v.Protocol, map[string]string{name: value}); err != nil {
		return Subscription{}, err
	}
	if in.FilterScope != nil && in.FilterPolicy == nil && len(v.FilterPolicy) > 0 {
		// A new scope is checked against the policy already there.
		in.FilterPolicy = v.FilterPolicy
	}
	sub, err := s.subs.Update(ctx, projectID, id, in)
	if err != nil {
		return Subscription{}, fieldError(err)
	}
	out, _ := view(sub)
	return out, nil
}
