// Package snslambda is the destination of SNS lambda subscriptions. Carrier
// cannot invoke AWS Lambda; instead the operator maps function ARNs to
// HTTP(S) URLs (CARRIER_SNS_LAMBDA_FUNCTIONS) and each delivery is POSTed
// there as the event Lambda hands an SNS-triggered function:
// {"Records":[{"EventSource":"aws:sns","EventVersion":"1.0",
// "EventSubscriptionArn":…,"Sns":{…}}]}, so a handler written for Lambda
// (event.Records[0].Sns.Message) runs behind any HTTP front.
//
// A subscription to a function that is not mapped is accepted (Publish
// never fails because of it); its attempts fail as "lambda_unmapped",
// retried, so adding the mapping and restarting delivers what waits.
package snslambda

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dest/snshttp"
	"carrier/internal/dispatch"
	"carrier/internal/sns/signing"
	"carrier/internal/store"
)

// Kind is the name of this destination kind.
const Kind = "sns-lambda"

// UnmappedType is the event type Carrier publishes when a lambda
// subscription names a function CARRIER_SNS_LAMBDA_FUNCTIONS does not map.
const UnmappedType = "lambda.function.unmapped"

// Config is the settings of an sns-lambda destination.
type Config struct {
	// FunctionArn is the subscribed function (SNS's Endpoint).
	FunctionArn string `json:"function_arn"`
	// TopicArn is the topic's ARN.
	TopicArn string `json:"topic_arn"`
}

// CheckFunctionArn checks the shape arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>].
func CheckFunctionArn(arn string) bool {
	p := strings.Split(arn, ":")
	return (len(p) == 7 || len(p) == 8) && p[0] == "arn" && p[2] == "lambda" && p[3] != "" && p[5] == "function" && p[6] != "" && len(arn) <= 256
}

// ParseConfig reads an sns-lambda destination's settings.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := dest.DecodeSNSSubscription(raw, &c, &c.TopicArn, "function_arn and topic_arn"); err != nil {
		return c, err
	}
	if !CheckFunctionArn(c.FunctionArn) {
		return c, &dest.FieldError{Field: "function_arn", Message: "must be a Lambda function ARN, arn:aws:lambda:<region>:<account>:function:<name>"}
	}
	return c, nil
}

// Sender sends SNS events to the URLs of mapped functions.
type Sender struct {
	Client *http.Client
	// Functions maps function ARNs to URLs (CARRIER_SNS_LAMBDA_FUNCTIONS).
	Functions map[string]string
	Signer    *signing.Signer
	// PublicURL is the base of SigningCertUrl and UnsubscribeUrl.
	PublicURL     func() string
	RetryAfterCap time.Duration
}

var _ dest.Kind = (*Sender)(nil)

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

// Summary is the function ARN.
func (s *Sender) Summary(raw json.RawMessage) string { return dest.SettingString(raw, "function_arn") }

// Event is what Lambda passes an SNS-triggered function.
type Event struct {
	Records []Record `json:"Records"`
}

// Record is one SNS record of an Event.
type Record struct {
	EventSource          string `json:"EventSource"`
	EventVersion         string `json:"EventVersion"`
	EventSubscriptionArn string `json:"EventSubscriptionArn"`
	Sns                  Sns    `json:"Sns"`
}

// Sns is a record's message, with Lambda's spelling of SigningCertUrl and
// UnsubscribeUrl, a null Subject when the publish had none, and
// MessageAttributes always present.
type Sns struct {
	Type              string                       `json:"Type"`
	MessageID         string                       `json:"MessageId"`
	TopicArn          string                       `json:"TopicArn"`
	Subject           *string                      `json:"Subject"`
	Message           string                       `json:"Message"`
	Timestamp         string                       `json:"Timestamp"`
	SignatureVersion  string                       `json:"SignatureVersion"`
	Signature         string                       `json:"Signature"`
	SigningCertURL    string                       `json:"SigningCertUrl"`
	UnsubscribeURL    string                       `json:"UnsubscribeUrl"`
	MessageAttributes map[string]signing.Attribute `json:"MessageAttributes"`
}

// Build returns the event a job is sent as.
func (s *Sender) Build(job store.Job, c Config) (Event, error) {
	m, err := snshttp.NewMessage(job.Event, job.Subscription.ID, c.TopicArn, "lambda", s.PublicURL(), s.Signer)
	if err != nil {
		return Event{}, err
	}
	sns := Sns{Type: m.Type, MessageID: m.MessageID, TopicArn: m.TopicArn, Message: m.Message, Timestamp: m.Timestamp,
		SignatureVersion: m.SignatureVersion, Signature: m.Signature, SigningCertURL: m.SigningCertURL, UnsubscribeURL: m.UnsubscribeURL,
		MessageAttributes: m.MessageAttributes}
	if m.Subject != "" {
		sns.Subject = &m.Subject
	}
	if sns.MessageAttributes == nil {
		sns.MessageAttributes = map[string]signing.Attribute{}
	}
	return Event{Records: []Record{{EventSource: "aws:sns", EventVersion: "1.0", EventSubscriptionArn: c.TopicArn + ":" + job.Subscription.ID, Sns: sns}}}, nil
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	c, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_destination", ErrorMessage: err.Error()}
	}
	target, ok := s.Functions[c.FunctionArn]
	if !ok {
		return dispatch.Result{Retryable: true, ErrorCode: "lambda_unmapped",
			ErrorMessage: "function " + c.FunctionArn + " has no URL in CARRIER_SNS_LAMBDA_FUNCTIONS; add one and restart to deliver"}
	}
	ev, err := s.Build(job, c)
	if err != nil {
		return dispatch.Result{ErrorCode: "payload_error", ErrorMessage: err.Error()}
	}
	body, _ := json.Marshal(ev)
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", dest.UserAgent)
	return dest.Attempt(ctx, s.Client, dest.Post{URL: target, Body: body, Header: header,
		Timeout: time.Duration(job.Subscription.TimeoutSeconds) * time.Second},
		func(resp *http.Response, _ []byte) dispatch.Result {
			return dest.ClassifyAnswer(resp, at, "function", "", s.RetryAfterCap)
		})
}
