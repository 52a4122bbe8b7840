package dest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Field is one configured message field of a chat destination. Name and
// Value are templates; a field whose value renders empty is left out of
// that message. Inline asks Discord to show the field beside its
// neighbours; Slack accepts it and always shows fields in two columns.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// fieldSettings are the members of a "fields" entry.
var fieldSettings = []string{"name", "value", "inline"}

// DecodeObject decodes a JSON object into its members, with path (such as
// "fields[2]"; "" for the destination object itself) as the prefix of the
// names in errors, which are *FieldError. When known is not nil, a member
// not in it is refused by name; at the top level a "type" member must then
// equal kind and is dropped, so the whole destination object may be passed.
func DecodeObject(raw json.RawMessage, path string, known []string, kind string) (map[string]json.RawMessage, error) {
	field := path
	if field == "" {
		field = "destination"
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &FieldError{Field: field, Message: "must be an object"}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, &FieldError{Field: field, Message: "must be a valid JSON object"}
	}
	if known == nil {
		return obj, nil
	}
	if path == "" {
		if t, ok := obj["type"]; ok {
			var s string
			if json.Unmarshal(t, &s) != nil || s != kind {
				return nil, &FieldError{Field: "type", Message: `must be "` + kind + `"`}
			}
			delete(obj, "type")
		}
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		name := unknown[0]
		if path != "" {
			name = path + "." + name
		}
		return nil, &FieldError{Field: name, Message: "is not a known setting (known: " + strings.Join(known, ", ") + ")"}
	}
	return obj, nil
}

// StringSetting names a string setting and where DecodeStrings puts it.
type StringSetting struct {
	Key string
	Dst *string
}

// DecodeStrings decodes the string settings of obj, in order, into their
// destinations; a missing or null one is left as it is, and one that is not
// a string is a *FieldError.
func DecodeStrings(obj map[string]json.RawMessage, settings ...StringSetting) error {
	for _, s := range settings {
		if v, ok := obj[s.Key]; ok && string(v) != "null" {
			if json.Unmarshal(v, s.Dst) != nil {
				return &FieldError{Field: s.Key, Message: "must be a string"}
			}
		}
	}
	return nil
}

// ParseFields decodes the "fields" setting of obj, when it is there and not
// null: a list of at most maxFields {name, value, inline} objects, name and
// value required. shape describes an entry in the error for a value that is
// not a list, such as "{name, value}". Every error is a *FieldError.
func ParseFields(obj map[string]json.RawMessage, maxFields int, shape string) ([]Field, error) {
	raw, ok := obj["fields"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &FieldError{Field: "fields", Message: "must be a list of " + shape + " objects"}
	}
	if len(items) > maxFields {
		return nil, &FieldError{Field: "fields", Message: fmt.Sprintf("must have at most %d entries (has %d)", maxFields, len(items))}
	}
	var fields []Field
	for i, item := range items {
		path := fmt.Sprintf("fields[%d]", i)
		fo, err := DecodeObject(item, path, fieldSettings, "")
		if err != nil {
			return nil, err
		}
		var f Field
		for _, s := range []StringSetting{{"name", &f.Name}, {"value", &f.Value}} {
			if v, ok := fo[s.Key]; ok && string(v) != "null" {
				if json.Unmarshal(v, s.Dst) != nil {
					return nil, &FieldError{Field: path + "." + s.Key, Message: "must be a string"}
				}
			}
			if strings.TrimSpace(*s.Dst) == "" {
				return nil, &FieldError{Field: path + "." + s.Key, Message: "is required"}
			}
		}
		if v, ok := fo["inline"]; ok && string(v) != "null" {
			if json.Unmarshal(v, &f.Inline) != nil {
				return nil, &FieldError{Field: path + ".inline", Message: "must be true or false"}
			}
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// CheckWebhookURL checks what every chat webhook URL must be and returns it
// parsed, with the segments of its escaped path: present, absolute, https
// (http only for a loopback host, such as a local stand-in), without
// credentials and without a fragment. shape is the error for a URL that is
// not an absolute http(s) URL; it says what the URL should look like.
func CheckWebhookURL(raw, shape string) (*url.URL, []string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil, errors.New("is required")
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return nil, nil, errors.New(shape)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, nil, errors.New("must use https (http is accepted only for loopback hosts)")
		}
	default:
		return nil, nil, errors.New(shape)
	}
	if u.User != nil {
		return nil, nil, errors.New("must not contain credentials before the host")
	}
	if u.Fragment != "" {
		return nil, nil, errors.New("must not have a #fragment")
	}
	return u, strings.Split(strings.Trim(u.EscapedPath(), "/"), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// RedactURLSetting returns settings as the API shows them: the same JSON
// object with the URL setting key passed through redact. A value that is
// not a string, not a URL or without a host becomes "***". Settings that are
// not a JSON object come back as {}.
func RedactURLSetting(raw json.RawMessage, key string, redact func(*url.URL) string) json.RawMessage {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return json.RawMessage(`{}`)
	}
	if v, ok := obj[key]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil {
			obj[key] = json.RawMessage(`"***"`)
		} else if u, err := url.Parse(strings.TrimSpace(s)); err != nil || u.Host == "" {
			obj[key], _ = json.Marshal("***")
		} else {
			obj[key], _ = json.Marshal(redact(u))
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

// ConfigCache keeps parsed settings by their JSON, so that templates are
// not compiled again for every attempt. It is emptied when it grows past
// its size. It is safe for concurrent use.
type ConfigCache[C any] struct {
	parse func(json.RawMessage) (C, error)
	size  int

	mu sync.Mutex
	m  map[string]C
}

// NewConfigCache returns a cache of at most size settings, parsed by parse.
func NewConfigCache[C any](size int, parse func(json.RawMessage) (C, error)) *ConfigCache[C] {
	return &ConfigCache[C]{parse: parse, size: size}
}

// Get returns the parsed settings raw; settings that do not parse are not
// kept, and their error is parse's.
func (c *ConfigCache[C]) Get(raw json.RawMessage) (C, error) {
	key := string(raw)
	c.mu.Lock()
	cfg, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return cfg, nil
	}
	cfg, err := c.parse(raw)
	if err != nil {
		return cfg, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.size {
		c.m = make(map[string]C)
	}
	c.m[key] = cfg
	c.mu.Unlock()
	return cfg, nil
}

// DecodeSNSSubscription decodes the settings of an SNS subscription's
// destination (raw) strictly into v, a struct with a TopicArn field, and
// checks that ARN: what every SNS delivery kind (http, email, lambda) parses
// first. fields names, for the error, the settings an object must have.
func DecodeSNSSubscription(raw json.RawMessage, v any, topicArn *string, fields string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &FieldError{Field: "destination", Message: "must be an object with " + fields + " (" + err.Error() + ")"}
	}
	if *topicArn == "" || len(*topicArn) > 1024 {
		return &FieldError{Field: "topic_arn", Message: "is required (at most 1024 characters)"}
	}
	return nil
}
