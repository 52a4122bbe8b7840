// Package slack delivers events to Slack channels through incoming webhooks
// (https://api.slack.com/messaging/webhooks) as a Block Kit message: a
// header (the event type by default), a section with the templated mrkdwn
// text and the fields, more sections when there are more than ten fields,
// and a context line with the event time and the subscription. The
// top-level "text" carries the same text as the notification fallback.
//
// Slack's block limits (at most 50 blocks, header text 150 characters,
// section text 3000, ten fields per section of 2000 each, context text 3000)
// are met by visible truncation ("…" and, where there is room,
// "(truncated)") and a note for fields that do not fit; an event is never
// refused for its size. Lengths are counted in UTF-16 code units, which is
// never less than the code-point count, so the limits hold either way Slack
// counts. Values taken from the event are escaped for mrkdwn (&, < and >),
// so event data cannot inject mentions or links; the templates' own text is
// not, so a template may contain <!here> or <https://…|links>.
//
// Answers: 2xx ("ok") is delivered; 429 is a throttle that waits its
// Retry-After; 404 and 410 (no_service, channel_not_found,
// channel_is_archived, team_disabled) and an invalid or revoked token
// disable the subscription; 408, 5xx, timeouts and network errors are
// retried; other 4xx (invalid_payload, invalid_blocks, action_prohibited…)
// fail with Slack's answer recorded.
package slack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"carrier/internal/dest"
)

// Kind is the destination kind this package sends.
const Kind = "slack"

// MaxConfiguredFields bounds the "fields" setting.
const MaxConfiguredFields = 100

// DefaultTitle is the header template when none is set.
const DefaultTitle = "{{.type}}"

// DefaultText is the text template when none is set.
const DefaultText = "*{{.type}}* {{.subject}}"

// Config is the settings of a Slack destination: the subscription's
// "destination" object. Templates are Go text/template over the event:
// {{.type}}, {{.subject}}, {{.id}}, {{.time}} (RFC 3339, UTC), {{.data}} (the
// event's JSON data, so {{.data.balance}}), {{.attributes}} and
// {{.delivery_id}}; functions json, upper, lower, trim, join and default
// ({{.data.x | default "n/a"}}) are available. A missing key renders as
// nothing.
type Config struct {
	// WebhookURL is the incoming webhook URL,
	// https://hooks.slack.com/services/T…/B…/{secret} (any host, so
	// hooks.slack-gov.com works too). It must be https, except that http is
	// accepted for loopback hosts (local stand-ins). The path shape is
	// required: it makes the secret identifiable (Redact hides it) and
	// catches pasted workflow or non-Slack URLs, which expect other payloads.
	// On a Slack-compatible server's host (Mattermost, Rocket.Chat;
	// dest.CompatibleHosts) any path is accepted.
	WebhookURL string `json:"webhook_url"`
	// Title is the header block's template (plain text, up to 150
	// characters); empty means DefaultTitle.
	Title string `json:"title,omitempty"`
	// Text is the mrkdwn template of the main section, also the message's
	// notification text; empty means DefaultText.
	Text string `json:"text,omitempty"`
	// Fields are the section fields (name in bold above the value); none
	// means up to 10 top-level data keys, in the order they appear.
	Fields []Field `json:"fields,omitempty"`

	// Subscription is the subscription's name, shown in the context line.
	// It is not a setting: Send fills it in from the job.
	Subscription string `json:"-"`

	title, text *dest.Template
	fields      []dest.CompiledField
	compiled    bool
	// secret is the part of WebhookURL hidden from error messages.
	secret string
}

// Field is one configured field. Name and Value are mrkdwn templates; a
// field whose value renders empty is left out of that message. Inline is
// accepted for settings shared with Discord; Slack always shows section
// fields in two columns.
type Field = dest.Field

var topLevelSettings = []string{"webhook_url", "title", "text", "fields"}

// ParseConfig decodes and validates a Slack destination. Unknown settings
// are refused by name, templates are compiled (a template error names its
// setting, such as "fields[2].value"), and every error is a
// *dest.FieldError. A "type" key equal to "slack" is tolerated, so the whole
// destination object may be passed. A webhook URL on one of the compatible
// hosts need not have Slack's shape.
func ParseConfig(raw json.RawMessage, compatible dest.CompatibleHosts) (Config, error) {
	var cfg Config
	obj, err := dest.DecodeObject(raw, "", topLevelSettings, Kind)
	if err != nil {
		return cfg, err
	}
	if err := dest.DecodeStrings(obj,
		dest.StringSetting{Key: "webhook_url", Dst: &cfg.WebhookURL},
		dest.StringSetting{Key: "title", Dst: &cfg.Title},
		dest.StringSetting{Key: "text", Dst: &cfg.Text},
	); err != nil {
		return cfg, err
	}
	if cfg.secret, err = checkWebhookURL(cfg.WebhookURL, compatible); err != nil {
		return cfg, &dest.FieldError{Field: "webhook_url", Message: err.Error()}
	}
	if cfg.Fields, err = dest.ParseFields(obj, MaxConfiguredFields, "{name, value}"); err != nil {
		return cfg, err
	}
	if err := cfg.compile(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// compile parses the templates; it is idempotent.
func (c *Config) compile() error {
	if c.compiled {
		return nil
	}
	var err error
	if c.title, err = dest.ParseTemplateOr("title", c.Title, DefaultTitle); err != nil {
		return err
	}
	if c.text, err = dest.ParseTemplateOr("text", c.Text, DefaultText); err != nil {
		return err
	}
	if c.fields, err = dest.CompileFields(c.Fields); err != nil {
		return err
	}
	c.compiled = true
	return nil
}

var idSegment = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,200}$`)

// shape is the error for a URL that does not look like a Slack incoming webhook URL.
const shape = "must be a Slack incoming webhook URL, https://hooks.slack.com/services/T…/B…/{secret}"

// checkWebhookURL validates a Slack incoming webhook URL (or a compatible
// server's) and returns its secret part.
func checkWebhookURL(raw string, compatible dest.CompatibleHosts) (secret string, err error) {
	return dest.CheckChatWebhookURL(raw, shape, compatible, "Slack", webhookSecret)
}

// webhookSecret checks the path segments of a Slack incoming webhook URL
// and returns its secret (the last of them: services, team, bot, secret).
func webhookSecret(segs []string) (string, error) {
	if len(segs) != 4 || segs[0] != "services" {
		return "", fmt.Errorf("%s", shape)
	}
	for _, s := range segs[1:] {
		if !idSegment.MatchString(s) {
			return "", fmt.Errorf("%s", shape)
		}
	}
	return segs[3], nil
}

// redactURL replaces a webhook URL's secret by "***"; a URL that is not a
// webhook URL keeps only its scheme and host.
func redactURL(u *url.URL) string {
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) < 4 || segs[0] != "services" {
		return u.Scheme + "://" + u.Host + "/***"
	}
	return u.Scheme + "://" + u.Host + "/services/" + segs[1] + "/" + segs[2] + "/***"
}

// Redact returns the settings as the API shows them: the same object with
// the webhook URL's secret replaced by "***", such as
// https://hooks.slack.com/services/T000/B000/***. Settings that are not a
// JSON object come back as {}.
func Redact(raw json.RawMessage) json.RawMessage {
	return dest.RedactURLSetting(raw, "webhook_url", redactURL)
}
