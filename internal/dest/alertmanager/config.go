// Package alertmanager sends Carrier's alert notifications to receivers of
// Prometheus Alertmanager's webhook (webhook_config, payload version "4",
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config),
// so that whatever already consumes Alertmanager's webhooks can read them.
// Each delivery is one POST whose body is exactly what Alertmanager's
// notify/webhook sends: its Message (template.Data plus version, groupKey
// and truncatedAlerts), with the same field order, Go's time format,
// HTML-escaped JSON and the trailing newline of json.Encoder.
//
// An alert.firing, alert.resolved or alert.flapping event (data as written
// by internal/alert) becomes one alert:
//
//   - labels: alertname (the rule's name), severity, metric, item (when the
//     rule is scoped to one), rule_id and project; a label whose value would
//     be empty is left out, as Prometheus leaves out empty labels.
//   - annotations: summary (the notice's title), description (the notice's
//     description, **bold** markers removed), value and threshold (as plain
//     decimals; left out when there is no value).
//   - status "resolved" for alert.resolved, with endsAt the event's ends_at;
//     "firing" otherwise, with endsAt Alertmanager's zero time
//     "0001-01-01T00:00:00Z", as Alertmanager shows every alert still firing.
//     alert.flapping is "firing", with the alert's own labels: Alertmanager
//     has no flapping state. (When a flapping alert settles in the state last
//     notified before it flapped, internal/alert sends nothing more, so a
//     consumer keeps it firing until the alert's next notification.)
//   - startsAt the alert's starts_at; fingerprint the FNV-1a hash of the
//     labels, computed as model.LabelSet.Fingerprint computes it, so it
//     matches what Alertmanager would show for the same labels.
//
// Severity is a label, as in Prometheus, so each severity of an alert is an
// alert of its own to a consumer. An escalation or de-escalation (an event
// with previous_severity) therefore carries two alerts: the new severity
// firing and the previous one resolved at the event's time, ordered as
// Alertmanager orders a group's alerts (by labels), so that the previous one
// is not left firing at the consumer forever.
//
// Any other event routed here (report.daily, or anything else a
// subscription sends this way) is one firing alert whose alertname is the
// event type, with labels project, severity (the event's severity attribute,
// else a top-level "severity" string of its data) and subject (the event's
// subject), each when not empty; its annotations are summary and
// description from the event's notice when it has one, and none otherwise;
// startsAt is the event's time. It is never resolved: Carrier has no end for
// it.
//
// Each message is one alert group of its own: groupLabels are alertname,
// project and item (alerts) or subject (other events), each when not empty,
// and groupKey is Alertmanager's "<route>:<group labels>" for the root route,
// such as {}:{alertname="Low balance", project="p1"}. Consumers that
// deduplicate incidents by groupKey (as Alertmanager's PagerDuty and Opsgenie
// integrations do) thus keep one incident per alert, and resolving one item
// does not close another's. truncatedAlerts is always 0. receiver is the
// "receiver" setting, else the subscription's name, else "carrier", escaped
// with regexp.QuoteMeta as Alertmanager escapes receiver names in its
// payloads. externalURL is Carrier's public URL (CARRIER_PUBLIC_URL) and
// generatorURL links to the alert (/v1/alerts/{id}) or event
// (/v1/events/{id}) there; both are "" when no public URL is configured.
//
// Requests are sent as the webhook kind sends them: through Carrier's
// SSRF-guarded client (the URL is checked when the subscription is saved
// and again on every dial), with the subscription's timeout, Content-Type
// application/json, Carrier's User-Agent and X-Webhook-Delivery-Id, the
// "headers" setting, and "Authorization: Bearer <bearer_token>" when a
// bearer token is set. Alertmanager does not sign its webhooks, and neither
// does this kind. Answers are classified as the webhook's are: 2xx is
// delivered; 408, 429 (after its Retry-After) and 5xx are retried; 410
// deactivates the subscription; redirects are not followed; any other answer
// fails without a retry.
package alertmanager

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"carrier/internal/dest"
	"carrier/internal/dest/webhook"
)

// Kind is the destination kind this package sends.
const Kind = "alertmanager"

// Limits of the settings, as for a webhook's URL and custom headers.
const (
	MaxURLLength      = 2048
	MaxHeaders        = 20
	MaxHeaderValue    = 4096
	MaxReceiverLength = 255
)

// DefaultReceiver is the receiver of a subscription with neither a
// "receiver" setting nor a name.
const DefaultReceiver = "carrier"

// Config is the settings of an Alertmanager-webhook destination.
type Config struct {
	// URL is where every message is posted: an http or https URL.
	URL string `json:"url"`
	// Receiver is the payload's receiver; "" means the subscription's name.
	Receiver string `json:"receiver,omitempty"`
	// Headers are sent with every request. They are hidden when shown, as a
	// webhook's custom header values are (they are often credentials).
	Headers map[string]string `json:"headers,omitempty"`
	// BearerToken, when set, is sent as "Authorization: Bearer <token>", as
	// Alertmanager's http_config.authorization sends it. Hidden when shown.
	BearerToken string `json:"bearer_token,omitempty"`
}

var settingNames = []string{"url", "receiver", "headers", "bearer_token"}

// headerName is an HTTP header name (an RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// ParseConfig decodes and checks the settings (a "type" member equal to Kind
// is accepted, so the whole destination object may be passed). Unknown
// settings are refused by name, and every error is a *dest.FieldError naming
// the setting. Whether the URL's address may be reached is the SSRF guard's
// decision (see Sender.Target), not this one.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	obj, err := dest.DecodeObject(raw, "", settingNames, Kind)
	if err != nil {
		return c, err
	}
	if err := dest.DecodeStrings(obj,
		dest.StringSetting{Key: "url", Dst: &c.URL},
		dest.StringSetting{Key: "receiver", Dst: &c.Receiver},
		dest.StringSetting{Key: "bearer_token", Dst: &c.BearerToken},
	); err != nil {
		return c, err
	}
	c.URL = strings.TrimSpace(c.URL)
	if err := checkURL(c.URL); err != nil {
		return c, &dest.FieldError{Field: "url", Message: err.Error()}
	}
	if v, ok := obj["receiver"]; ok && string(v) != "null" {
		switch n := utf8.RuneCountInString(c.Receiver); {
		case strings.TrimSpace(c.Receiver) == "":
			return c, &dest.FieldError{Field: "receiver", Message: "must not be blank (leave it out to use the subscription's name)"}
		case n > MaxReceiverLength:
			return c, &dest.FieldError{Field: "receiver", Message: fmt.Sprintf("must be at most %d characters (has %d)", MaxReceiverLength, n)}
		case strings.ContainsFunc(c.Receiver, isControl):
			return c, &dest.FieldError{Field: "receiver", Message: "must not contain control characters"}
		}
	}
	if c.BearerToken != "" {
		if len(c.BearerToken) > MaxHeaderValue {
			return c, &dest.FieldError{Field: "bearer_token", Message: fmt.Sprintf("must be at most %d characters", MaxHeaderValue)}
		}
		if err := webhook.CheckHeaderValue(c.BearerToken); err != nil {
			return c, &dest.FieldError{Field: "bearer_token", Message: err.Error()}
		}
	}
	if v, ok := obj["headers"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &c.Headers); err != nil {
			return c, &dest.FieldError{Field: "headers", Message: "must be an object of header names and string values"}
		}
		if err := checkHeaders(c.Headers, c.BearerToken != ""); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkURL checks what the URL must be before the SSRF guard sees it.
func checkURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("is required")
	}
	if len(raw) > MaxURLLength {
		return fmt.Errorf("must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http or https URL, such as https://alerts.example.com/webhook")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain credentials before the host (use bearer_token or headers)")
	}
	return nil
}

// checkHeaders checks the "headers" setting as the webhook rules check
// custom headers; Authorization is Carrier's own when a bearer token is set.
func checkHeaders(h map[string]string, bearer bool) error {
	if len(h) > MaxHeaders {
		return &dest.FieldError{Field: "headers", Message: fmt.Sprintf("must have at most %d headers (has %d)", MaxHeaders, len(h))}
	}
	for name, value := range h {
		field := "headers." + name
		switch {
		case !headerName.MatchString(name):
			return &dest.FieldError{Field: field, Message: "is not a valid HTTP header name"}
		case webhook.IsReserved(name):
			return &dest.FieldError{Field: field, Message: "is set by Carrier and cannot be overridden"}
		case webhook.IsForbidden(name):
			return &dest.FieldError{Field: field, Message: "cannot be set: it is a hop-by-hop header or changes how the request is framed, routed or answered"}
		case bearer && http.CanonicalHeaderKey(name) == "Authorization":
			return &dest.FieldError{Field: field, Message: "cannot be set together with bearer_token, which is sent as the Authorization header"}
		case len(value) > MaxHeaderValue:
			return &dest.FieldError{Field: field, Message: fmt.Sprintf("must be at most %d characters", MaxHeaderValue)}
		}
		if err := webhook.CheckHeaderValue(value); err != nil {
			return &dest.FieldError{Field: field, Message: err.Error()}
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Redact returns the settings as the API shows them: bearer_token and the
// whole headers object replaced by dest.Hidden when set. Headers are hidden
// whole, not value by value, so that settings read from the API and sent
// back unchanged keep the stored headers (dest.HiddenSettings works on whole
// settings). Settings that are not a JSON object come back as {}.
func Redact(raw json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return json.RawMessage(`{}`)
	}
	hidden, _ := json.Marshal(dest.Hidden)
	for _, k := range []string{"bearer_token", "headers"} {
		if v, ok := m[k]; ok && !isEmptyJSON(v) {
			m[k] = hidden
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

// isEmptyJSON reports whether v is null, "" or {}: a setting that holds no
// secret.
func isEmptyJSON(v json.RawMessage) bool {
	switch strings.Join(strings.Fields(string(v)), "") {
	case "null", `""`, "{}":
		return true
	}
	return false
}
