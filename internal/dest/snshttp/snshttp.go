// Package snshttp is the destination of SNS http and https subscriptions:
// each delivery is POSTed as Amazon SNS posts to an HTTP endpoint, with SNS's
// JSON message (or the raw message with RawMessageDelivery), its
// x-amz-sns-* headers and its signature (internal/sns/signing), so code
// written for SNS HTTP endpoints (confirming with the SubscribeURL, checking
// the signature against SigningCertURL) works unchanged.
//
// Two kinds of job come here: an SNS publish (an event of type sns.<topic>),
// sent as a Notification, and the subscription's confirmation (an event of
// type ConfirmationType addressed to this subscription alone), sent as a
// SubscriptionConfirmation whose SubscribeURL is served by Carrier.
package snshttp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"carrier/internal/dest"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/dispatch"
	"carrier/internal/sns/signing"
	"carrier/internal/store"
)

// Kind is the name of this destination kind.
const Kind = "sns-http"

// ConfirmationType is the event type of a subscription confirmation. Topic
// names hold no dots (but ".fifo"), so no topic's event type is this one.
const ConfirmationType = "sns.subscription.confirmation"

// UserAgent is the User-Agent SNS sends.
const UserAgent = "Amazon Simple Notification Service Agent"

// Confirmation is the data of a confirmation event.
type Confirmation struct {
	Token            string `json:"token"`
	TopicArn         string `json:"topic_arn"`
	SignatureVersion string `json:"signature_version,omitempty"`
}

// Config is the settings of an sns-http destination.
type Config struct {
	// URL is the subscribed endpoint (SNS's Endpoint).
	URL string `json:"url"`
	// TopicArn is the topic's ARN, as the subscriber knows it.
	TopicArn string `json:"topic_arn"`
	// Raw is RawMessageDelivery: the message itself is the body.
	Raw bool `json:"raw,omitempty"`
}

// ParseConfig reads an sns-http destination's settings.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := dest.DecodeSNSSubscription(raw, &c, &c.TopicArn, "url, topic_arn and raw"); err != nil {
		return c, err
	}
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &dest.FieldError{Field: "url", Message: "must be an http or https URL"}
	}
	if len(c.URL) > 2048 {
		return c, &dest.FieldError{Field: "url", Message: "must be at most 2048 characters"}
	}
	return c, nil
}

// Sender sends SNS HTTP deliveries.
type Sender struct {
	Client *http.Client
	// Signer signs every message.
	Signer *signing.Signer
	// PublicURL returns the base URL at which subscribers reach Carrier
	// (SubscribeURL, UnsubscribeURL, SigningCertURL).
	PublicURL func() string
	// RetryAfterCap bounds a Retry-After header.
	RetryAfterCap time.Duration
}

var (
	_ dest.Kind   = (*Sender)(nil)
	_ dest.Target = (*Sender)(nil)
)

// Name is Kind.
func (s *Sender) Name() string { return Kind }

// Validate checks the settings.
func (s *Sender) Validate(raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// Redact shows the settings: they hold no secret.
func (s *Sender) Redact(sub store.Subscription) json.RawMessage {
	return append(json.RawMessage(nil), sub.Destination...)
}

// Summary is the endpoint.
func (s *Sender) Summary(raw json.RawMessage) string { return dest.SettingString(raw, "url") }

// Target is the endpoint, for the SSRF rules.
func (s *Sender) Target(raw json.RawMessage) (string, string) {
	return "url", dest.SettingString(raw, "url")
}

// ConfirmationText is the Message of a SubscriptionConfirmation.
func ConfirmationText(topicArn string) string {
	return "You have chosen to subscribe to the topic " + topicArn +
		".\nTo confirm the subscription, visit the SubscribeURL included in this message."
}

// NewMessage returns the signed SNS message of event ev for subscription
// subscriptionID of topic topicArn, subscribed with protocol (which picks
// the member of a MessageStructure=json message): a SubscriptionConfirmation
// for a confirmation event, else a Notification. base is the URL at which
// subscribers reach Carrier.
func NewMessage(ev store.Event, subscriptionID, topicArn, protocol, base string, signer *signing.Signer) (signing.Message, error) {
	ts := ev.CreatedAt.UTC().Format(destqueue.TimeFormat)
	var m signing.Message
	if ev.Type == ConfirmationType {
		var conf Confirmation
		if err := json.Unmarshal(ev.Data, &conf); err != nil {
			return m, err
		}
		m = signing.Message{Type: signing.TypeSubscriptionConfirmation, MessageID: ev.ID, Token: conf.Token, TopicArn: conf.TopicArn,
			Message: ConfirmationText(conf.TopicArn), SubscribeURL: signing.SubscribeURL(base, conf.TopicArn, conf.Token), Timestamp: ts,
			SignatureVersion: conf.SignatureVersion}
	} else {
		m = signing.Message{Type: signing.TypeNotification, MessageID: ev.ID, TopicArn: topicArn, Subject: ev.Subject,
			Message: destqueue.Published(ev, protocol), Timestamp: ts, SignatureVersion: ev.Attributes[destqueue.AttrSignatureVersion],
			UnsubscribeURL: signing.UnsubscribeURL(base, topicArn+":"+subscriptionID)}
		if attrs := destqueue.PublicAttributes(ev.Attributes); len(attrs) > 0 {
			m.MessageAttributes = map[string]signing.Attribute{}
			for k, a := range attrs {
				m.MessageAttributes[k] = signing.Attribute{Type: a.Type, Value: a.Value}
			}
		}
	}
	m.SigningCertURL = base + signer.CertPath()
	err := signer.Sign(&m)
	return m, err
}

// Build returns the body and headers a job is sent with.
func (s *Sender) Build(job store.Job, c Config) (body []byte, header http.Header, err error) {
	ev := job.Event
	header = http.Header{}
	header.Set("Content-Type", "text/plain; charset=UTF-8")
	header.Set("User-Agent", UserAgent)
	header.Set("x-amz-sns-message-id", ev.ID)
	if ev.Type != ConfirmationType {
		header.Set("x-amz-sns-subscription-arn", c.TopicArn+":"+job.Subscription.ID)
		if c.Raw {
			header.Set("x-amz-sns-message-type", signing.TypeNotification)
			header.Set("x-amz-sns-topic-arn", c.TopicArn)
			header.Set("x-amz-sns-rawdelivery", "true")
			return []byte(destqueue.Published(ev, protocol(c.URL))), header, nil
		}
	}
	m, err := NewMessage(ev, job.Subscription.ID, c.TopicArn, protocol(c.URL), s.PublicURL(), s.Signer)
	if err != nil {
		return nil, nil, err
	}
	header.Set("x-amz-sns-message-type", m.Type)
	header.Set("x-amz-sns-topic-arn", m.TopicArn)
	body, err = json.Marshal(m)
	return body, header, err
}

// protocol is the SNS protocol an endpoint URL is subscribed with, which
// picks its member of a MessageStructure=json message.
func protocol(u string) string {
	if strings.HasPrefix(strings.ToLower(u), "https:") {
		return "https"
	}
	return "http"
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	c, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: err.Error()}
	}
	body, header, err := s.Build(job, c)
	if err != nil {
		return dispatch.Result{ErrorCode: "payload_error", ErrorMessage: err.Error()}
	}
	return dest.Attempt(ctx, s.Client, dest.Post{URL: c.URL, Body: body, Header: header,
		Timeout: time.Duration(job.Subscription.TimeoutSeconds) * time.Second},
		func(resp *http.Response, _ []byte) dispatch.Result {
			return dest.ClassifyAnswer(resp, at, "endpoint", "", s.RetryAfterCap)
		})
}
