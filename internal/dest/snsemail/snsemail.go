// Package snsemail is the destination of SNS email and email-json
// subscriptions: mail sent through the one SMTP server configured for them
// (CARRIER_SNS_EMAIL_SMTP), as SNS mails its subscribers. A confirmation job
// becomes SNS's "Subscription Confirmation" mail with the SubscribeURL to
// visit; a publish becomes the message itself (email) or the signed JSON
// notification (email-json), with the UnsubscribeURL.
package snsemail

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"

	"carrier/internal/dest"
	"carrier/internal/dest/email"
	"carrier/internal/dest/snshttp"
	"carrier/internal/dispatch"
	"carrier/internal/sns/signing"
	"carrier/internal/store"
)

// Kind is the name of this destination kind.
const Kind = "sns-email"

// Config is the settings of an sns-email destination.
type Config struct {
	// To is the subscribed address (SNS's Endpoint).
	To string `json:"to"`
	// TopicArn is the topic's ARN.
	TopicArn string `json:"topic_arn"`
	// JSON is the email-json protocol: the body is the signed JSON message.
	JSON bool `json:"json,omitempty"`
}

// ParseConfig reads an sns-email destination's settings.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := dest.DecodeSNSSubscription(raw, &c, &c.TopicArn, "to, topic_arn and json"); err != nil {
		return c, err
	}
	if a, err := mail.ParseAddress(c.To); err != nil || a.Name != "" || len(c.To) > 254 {
		return c, &dest.FieldError{Field: "to", Message: "must be one email address"}
	}
	return c, nil
}

// Sender sends SNS mail.
type Sender struct {
	// Mail sends through SMTP.
	Mail *email.Sender
	// SMTP is the server and sender address of every SNS mail (its To is
	// replaced); nil: not configured, and every attempt fails saying so.
	SMTP *email.Config
	// Signer signs email-json messages.
	Signer *signing.Signer
	// PublicURL is the base of SubscribeURL, UnsubscribeURL and SigningCertURL.
	PublicURL func() string
}

var _ dest.Kind = (*Sender)(nil)

// Name is Kind.
func (s *Sender) Name() string { return Kind }

// Validate checks the settings.
func (s *Sender) Validate(raw json.RawMessage) error {
	_, err := ParseConfig(raw)
	return err
}

// Redact shows the settings: they hold no secret (the SMTP login is the
// process's, not the subscription's).
func (s *Sender) Redact(sub store.Subscription) json.RawMessage {
	return append(json.RawMessage(nil), sub.Destination...)
}

// Summary is the address.
func (s *Sender) Summary(raw json.RawMessage) string {
	return "mailto:" + dest.SettingString(raw, "to")
}

// Subject of a confirmation, and of a notification published without one, as SNS writes them.
const (
	ConfirmationSubject = "AWS Notification - Subscription Confirmation"
	DefaultSubject      = "AWS Notification Message"
)

// Compose returns the subject and body of a job's mail.
func (s *Sender) Compose(job store.Job, c Config) (subject, body string, err error) {
	protocol := "email"
	if c.JSON {
		protocol = "email-json"
	}
	m, err := snshttp.NewMessage(job.Event, job.Subscription.ID, c.TopicArn, protocol, s.PublicURL(), s.Signer)
	if err != nil {
		return "", "", err
	}
	subject = m.Subject
	if m.Type == signing.TypeSubscriptionConfirmation {
		subject = ConfirmationSubject
	} else if subject == "" {
		subject = DefaultSubject
	}
	if c.JSON {
		b, err := json.Marshal(m)
		return subject, string(b), err
	}
	if m.Type == signing.TypeSubscriptionConfirmation {
		return subject, fmt.Sprintf("You have chosen to subscribe to the topic:\n%s\n\n"+
			"To confirm this subscription, click or visit the link below (If this was in error no action is necessary):\n%s\n\n"+
			"Please do not reply directly to this email. Mail sent by Carrier on behalf of the topic's owner.\n", m.TopicArn, m.SubscribeURL), nil
	}
	return subject, m.Message + "\n\n--\nIf you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:\n" +
		m.UnsubscribeURL + "\n\nPlease do not reply directly to this email. Mail sent by Carrier on behalf of the topic's owner.\n", nil
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	if s.SMTP == nil {
		return dispatch.Result{ErrorCode: "not_configured", ErrorMessage: "SNS email subscriptions need CARRIER_SNS_EMAIL_SMTP (the SMTP server to send through)"}
	}
	c, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: err.Error()}
	}
	subject, body, err := s.Compose(job, c)
	if err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: err.Error()}
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.SMTP.From); err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: "CARRIER_SNS_EMAIL_SMTP from: " + err.Error()}
	}
	if err := msg.To(c.To); err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: err.Error()}
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(email.MessageIDValue(job.Delivery.ID, s.SMTP.From))
	msg.SetDateWithValue(at)
	msg.SetUserAgent("Carrier")
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Amz-Sns-Message-Id", job.Event.ID)
	msg.SetBodyString(gomail.TypeTextPlain, body)
	return s.Mail.Deliver(ctx, *s.SMTP, msg)
}
