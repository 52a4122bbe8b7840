// Package discord delivers events to Discord channels through incoming
// webhooks (https://discord.com/developers/docs/resources/webhook#execute-webhook)
// as one rich embed per event: a templated title, description and fields, a
// color chosen by the event's severity or outcome, the event time as the
// embed timestamp, a "Carrier · <subscription> · <event type>" footer and,
// for the severities that ask for it, a mention in the message content.
//
// Discord's message and embed limits
// (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
// are never a reason to lose an event: anything too long is cut visibly
// ("…" and, where there is room, "(truncated)"), surplus fields are replaced
// by a note, and the whole embed is trimmed (description first, then fields)
// to fit the 6000-character total. Lengths are counted in Unicode code
// points, as Discord's API does.
//
// Answers: 2xx is delivered; 429 is a throttle (Result.Throttled) that waits
// the retry_after Discord asks for, capped at MaxRetryAfter; 404 (the webhook
// was deleted) and 410 disable the subscription; 408, 5xx, timeouts and
// network errors are retried; other 4xx fail with Discord's error recorded.
package discord

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"carrier/internal/dest"
)

// Kind is the destination kind this package sends.
const Kind = "discord"

// MaxConfiguredFields bounds the "fields" setting. More than Discord's 25
// fields per embed are accepted (the surplus is replaced by a note when a
// message is rendered), but not without bound.
const MaxConfiguredFields = 100

// Default colors, as in Carrier's alert examples.
const (
	ColorRed    = 0xE74C3C // failed, expired, error, critical
	ColorOrange = 0xF39C12 // warning
	ColorGreen  = 0x2ECC71 // solved, completed, success
	ColorBlue   = 0x3498DB // everything else
)

// DefaultColors maps severities and outcomes (the last segment of an event
// type, such as "failed" in "task.failed") to embed colors. The "colors"
// setting overrides and extends it; "default" is the fallback.
var DefaultColors = map[string]int{
	"failed":    ColorRed,
	"failure":   ColorRed,
	"expired":   ColorRed,
	"error":     ColorRed,
	"critical":  ColorRed,
	"warning":   ColorOrange,
	"warn":      ColorOrange,
	"solved":    ColorGreen,
	"completed": ColorGreen,
	"success":   ColorGreen,
	"succeeded": ColorGreen,
	"recovered": ColorGreen,
	"info":      ColorBlue,
	"default":   ColorBlue,
}

// DefaultTitle is the title template when none is set.
const DefaultTitle = "{{.type}}"

// DefaultSeverityAttribute is where the severity is read when
// severity_attribute is not set: the event attribute of that name, else the
// top-level data key of that name.
const DefaultSeverityAttribute = "severity"

// Config is the settings of a Discord destination: the subscription's
// "destination" object. Templates are Go text/template over the event:
// {{.type}}, {{.subject}}, {{.id}}, {{.time}} (RFC 3339, UTC), {{.data}} (the
// event's JSON data, so {{.data.balance}}), {{.attributes}},
// {{.delivery_id}} and {{.severity}}; functions json, upper, lower, trim,
// join and default ({{.data.x | default "n/a"}}) are available. A missing
// key renders as nothing.
type Config struct {
	// WebhookURL is the webhook's execute URL,
	// https://discord.com/api/webhooks/{id}/{token} (any host, optionally
	// /api/v{N}/webhooks/..., query such as ?thread_id= kept). It must be
	// https, except that http is accepted for loopback hosts (local
	// stand-ins). The path shape is required: it is what makes the token
	// identifiable (Redact hides it) and it catches pasted non-Discord URLs.
	// On a Discord-compatible server's host (dest.CompatibleHosts) any path
	// is accepted.
	WebhookURL string `json:"webhook_url"`
	// Username overrides the webhook's name (1–80 characters, without
	// "discord" or "clyde", as Discord requires).
	Username string `json:"username,omitempty"`
	// AvatarURL overrides the webhook's avatar (an http(s) URL).
	AvatarURL string `json:"avatar_url,omitempty"`
	// Title is the embed title template; empty means DefaultTitle.
	Title string `json:"title,omitempty"`
	// Description is the embed description template; empty means a short
	// summary of the event (its subject, a message-like data value, or the
	// data itself when it is not an object).
	Description string `json:"description,omitempty"`
	// Fields are the embed fields; none means up to 10 top-level data keys,
	// in the order they appear in the data.
	Fields []Field `json:"fields,omitempty"`
	// Colors maps severities, event types and outcomes (the event type's
	// last segment) to colors, over DefaultColors; the key "default" sets
	// the fallback. Values are integers (0–0xFFFFFF) or "#RRGGBB" strings.
	Colors map[string]Color `json:"colors,omitempty"`
	// SeverityAttribute names the attribute (else top-level data key) that
	// holds the event's severity; empty means DefaultSeverityAttribute.
	SeverityAttribute string `json:"severity_attribute,omitempty"`
	// Mention is put in the message content, such as "<@&123>" (a role),
	// "<@123>" (a user) or "@here". Only the users and roles it names (and
	// @everyone/@here when it contains them) are pinged: allowed_mentions
	// forbids every other mention.
	Mention string `json:"mention,omitempty"`
	// MentionOn lists the severities, event types or outcomes that get the
	// mention; empty means every event.
	MentionOn []string `json:"mention_on,omitempty"`

	// Subscription is the subscription's name, shown in the footer. It is
	// not a setting: Send fills it in from the job.
	Subscription string `json:"-"`

	title, description *dest.Template
	fields             []dest.CompiledField
	compiled           bool
	// secret is the part of WebhookURL hidden from error messages.
	secret string
}

// Field is one configured embed field. Name and Value are templates; a field
// whose value renders empty is left out of that message.
type Field = dest.Field

// Color is a 24-bit RGB color. In JSON it is an integer or a "#RRGGBB" (or
// "0xRRGGBB") string.
type Color int

// UnmarshalJSON accepts an integer or a "#RRGGBB"/"0xRRGGBB" string.
func (c *Color) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || v < 0 || v > 0xFFFFFF {
			return fmt.Errorf("must be an integer from 0 to 16777215 (0xFFFFFF)")
		}
		*c = Color(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be an integer or a \"#RRGGBB\" string")
	}
	h := strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "#"), "0x")
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil || len(h) != 6 {
		return fmt.Errorf("must be an integer or a \"#RRGGBB\" string")
	}
	*c = Color(v)
	return nil
}

var topLevelSettings = []string{"webhook_url", "username", "avatar_url", "title", "description", "fields", "colors", "severity_attribute", "mention", "mention_on"}

// ParseConfig decodes and validates a Discord destination. Unknown settings
// are refused by name, templates are compiled (a template error names its
// setting, such as "fields[2].value"), and every error is a
// *dest.FieldError. A "type" key equal to "discord" is tolerated, so the
// whole destination object may be passed. A webhook URL on one of the
// compatible hosts need not have Discord's shape.
func ParseConfig(raw json.RawMessage, compatible dest.CompatibleHosts) (Config, error) {
	var cfg Config
	obj, err := dest.DecodeObject(raw, "", topLevelSettings, Kind)
	if err != nil {
		return cfg, err
	}
	if err := dest.DecodeStrings(obj,
		dest.StringSetting{Key: "webhook_url", Dst: &cfg.WebhookURL},
		dest.StringSetting{Key: "username", Dst: &cfg.Username},
		dest.StringSetting{Key: "avatar_url", Dst: &cfg.AvatarURL},
		dest.StringSetting{Key: "title", Dst: &cfg.Title},
		dest.StringSetting{Key: "description", Dst: &cfg.Description},
		dest.StringSetting{Key: "severity_attribute", Dst: &cfg.SeverityAttribute},
		dest.StringSetting{Key: "mention", Dst: &cfg.Mention},
	); err != nil {
		return cfg, err
	}

	if cfg.secret, err = checkWebhookURL(cfg.WebhookURL, compatible); err != nil {
		return cfg, &dest.FieldError{Field: "webhook_url", Message: err.Error()}
	}
	if cfg.Username != "" {
		n := utf8.RuneCountInString(cfg.Username)
		low := strings.ToLower(cfg.Username)
		switch {
		case strings.TrimSpace(cfg.Username) == "":
			return cfg, &dest.FieldError{Field: "username", Message: "must not be blank"}
		case n > 80:
			return cfg, &dest.FieldError{Field: "username", Message: fmt.Sprintf("must be at most 80 characters (has %d)", n)}
		case strings.Contains(low, "discord") || strings.Contains(low, "clyde"):
			return cfg, &dest.FieldError{Field: "username", Message: `must not contain "discord" or "clyde" (Discord refuses such webhook names)`}
		}
	}
	if cfg.AvatarURL != "" {
		u, err := url.Parse(cfg.AvatarURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return cfg, &dest.FieldError{Field: "avatar_url", Message: "must be an absolute http(s) URL"}
		}
	}
	if n := utf8.RuneCountInString(cfg.Mention); n > MaxContent {
		return cfg, &dest.FieldError{Field: "mention", Message: fmt.Sprintf("must be at most %d characters (has %d)", MaxContent, n)}
	}
	if v, ok := obj["severity_attribute"]; ok && string(v) != "null" && strings.TrimSpace(cfg.SeverityAttribute) == "" {
		return cfg, &dest.FieldError{Field: "severity_attribute", Message: "must not be empty"}
	}

	if v, ok := obj["mention_on"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &cfg.MentionOn); err != nil {
			return cfg, &dest.FieldError{Field: "mention_on", Message: "must be a list of strings"}
		}
		for i, s := range cfg.MentionOn {
			if strings.TrimSpace(s) == "" {
				return cfg, &dest.FieldError{Field: fmt.Sprintf("mention_on[%d]", i), Message: "must not be empty"}
			}
		}
	}

	if v, ok := obj["colors"]; ok && string(v) != "null" {
		colors, err := dest.DecodeObject(v, "colors", nil, "")
		if err != nil {
			return cfg, err
		}
		cfg.Colors = make(map[string]Color, len(colors))
		for k, cv := range colors {
			if strings.TrimSpace(k) == "" {
				return cfg, &dest.FieldError{Field: "colors", Message: "keys must not be empty"}
			}
			var c Color
			if err := c.UnmarshalJSON(cv); err != nil {
				return cfg, &dest.FieldError{Field: "colors." + k, Message: err.Error()}
			}
			cfg.Colors[k] = c
		}
	}

	if cfg.Fields, err = dest.ParseFields(obj, MaxConfiguredFields, "{name, value, inline}"); err != nil {
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
	c.description = nil
	if strings.TrimSpace(c.Description) != "" {
		if c.description, err = dest.ParseTemplate("description", c.Description); err != nil {
			return err
		}
	}
	if c.fields, err = dest.CompileFields(c.Fields); err != nil {
		return err
	}
	c.compiled = true
	return nil
}

var (
	snowflake = regexp.MustCompile(`^[0-9]{1,20}$`)
	tokenRe   = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,200}$`)
	apiVer    = regexp.MustCompile(`^v[0-9]{1,2}$`)
)

// shape is the error for a URL that does not look like a Discord webhook URL.
const shape = "must be a Discord webhook URL, https://discord.com/api/webhooks/{id}/{token}"

// checkWebhookURL validates a Discord webhook URL (or a compatible server's)
// and returns its secret part: the token of a Discord URL.
func checkWebhookURL(raw string, compatible dest.CompatibleHosts) (secret string, err error) {
	return dest.CheckChatWebhookURL(raw, shape, compatible, "Discord", webhookToken)
}

// webhookToken checks the path segments of a Discord webhook URL and returns
// its token.
func webhookToken(segs []string) (string, error) {
	if len(segs) == 5 && segs[0] == "api" && apiVer.MatchString(segs[1]) {
		segs = append(segs[:1], segs[2:]...)
	}
	if len(segs) != 4 || segs[0] != "api" || segs[1] != "webhooks" {
		return "", fmt.Errorf("%s", shape)
	}
	if !snowflake.MatchString(segs[2]) {
		return "", fmt.Errorf("%s: the id must be a number", shape)
	}
	if !tokenRe.MatchString(segs[3]) {
		return "", fmt.Errorf("%s: the token is missing or malformed", shape)
	}
	return segs[3], nil
}

// redactURL replaces a webhook URL's token by "***"; a URL that is not a
// webhook URL keeps only where it points.
func redactURL(u *url.URL) string {
	u.User = nil
	u.Fragment = ""
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	i := -1
	for j, s := range segs {
		if s == "webhooks" {
			i = j
		}
	}
	if i < 0 || i+2 >= len(segs) {
		// Not the expected shape: keep only where it points.
		return u.Scheme + "://" + u.Host + "/***"
	}
	segs = segs[:i+3]
	segs[i+2] = "***"
	out := u.Scheme + "://" + u.Host + "/" + strings.Join(segs, "/")
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// Redact returns the settings as the API shows them: the same object with
// the webhook URL's token replaced by "***", such as
// https://discord.com/api/webhooks/123/***. Settings that are not a JSON
// object come back as {}.
func Redact(raw json.RawMessage) json.RawMessage {
	return dest.RedactURLSetting(raw, "webhook_url", redactURL)
}
