package email

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/netip"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"carrier/internal/dest"
)

// Security modes of the connection to the SMTP server.
const (
	// SecurityStartTLS connects in plain text and requires STARTTLS before
	// anything is sent (the default; port 587).
	SecurityStartTLS = "starttls"
	// SecurityTLS speaks TLS from the first byte (implicit TLS; port 465).
	SecurityTLS = "tls"
	// SecurityNone never encrypts. Credentials are refused with it.
	SecurityNone = "none"
)

// DefaultPort is the port used when settings name none, except with
// security "tls", whose default is DefaultTLSPort.
const DefaultPort = 587

// DefaultTLSPort is the default port with security "tls".
const DefaultTLSPort = 465

// DefaultSubject is the subject template used when settings name none.
const DefaultSubject = "[Carrier] {{.type}} {{.subject}}"

// MaxRecipients is how many "to" addresses one destination may have.
const MaxRecipients = 50

// MaxSubjectTemplate is the longest subject template accepted, in bytes.
const MaxSubjectTemplate = 1000

// HiddenPassword replaces the password in settings shown by the API.
const HiddenPassword = "***hidden***"

// Config is the settings of an email destination.
type Config struct {
	// Host is the SMTP server's host name or IP address.
	Host string `json:"host"`
	// Port defaults to DefaultPort (DefaultTLSPort with security "tls").
	Port int `json:"port"`
	// Security is SecurityStartTLS (the default), SecurityTLS or SecurityNone.
	Security string `json:"security"`
	// Username and Password authenticate (SMTP AUTH) when set; both or
	// neither.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// From is the sender address, optionally with a display name.
	From string `json:"from"`
	// To lists 1 to MaxRecipients recipient addresses.
	To []string `json:"to"`
	// Subject is a text/template over {type, subject, id, time, data,
	// attributes}; ParseConfig fills in DefaultSubject when it is empty.
	Subject string `json:"subject"`

	subject *dest.Template
}

var knownFields = []string{"host", "port", "security", "username", "password", "from", "to", "subject"}

// ParseConfig reads and validates an email destination's settings and fills
// in defaults. Unknown settings are refused by name. Errors are
// *dest.FieldError.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	fields := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return c, &dest.FieldError{Field: "destination", Message: "must be a JSON object"}
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // the same settings always give the same error
	for _, name := range names {
		v := fields[name]
		if string(v) == "null" {
			continue
		}
		var err error
		switch name {
		case "host":
			err = decodeString(v, &c.Host)
		case "security":
			err = decodeString(v, &c.Security)
		case "username":
			err = decodeString(v, &c.Username)
		case "password":
			err = decodeString(v, &c.Password)
		case "from":
			err = decodeString(v, &c.From)
		case "subject":
			err = decodeString(v, &c.Subject)
		case "port":
			var f float64
			if json.Unmarshal(v, &f) != nil || f != math.Trunc(f) || f < 1 || f > 65535 {
				err = errors.New("must be a whole number from 1 to 65535")
			}
			c.Port = int(f)
		case "to":
			if json.Unmarshal(v, &c.To) != nil {
				err = errors.New("must be an array of email addresses")
			}
		default:
			return c, &dest.FieldError{Field: name, Message: "is not a setting of email destinations (known: " + strings.Join(knownFields, ", ") + ")"}
		}
		if err != nil {
			return c, &dest.FieldError{Field: name, Message: err.Error()}
		}
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func decodeString(v json.RawMessage, dst *string) error {
	if json.Unmarshal(v, dst) != nil {
		return errors.New("must be a string")
	}
	return nil
}

func (c *Config) validate() error {
	if c.Host == "" {
		return &dest.FieldError{Field: "host", Message: "is required: the SMTP server's host name"}
	}
	if err := checkHost(c.Host); err != nil {
		return &dest.FieldError{Field: "host", Message: err.Error()}
	}
	switch c.Security {
	case "":
		c.Security = SecurityStartTLS
	case SecurityStartTLS, SecurityTLS, SecurityNone:
	default:
		return &dest.FieldError{Field: "security", Message: `must be "starttls", "tls" or "none"`}
	}
	if c.Port == 0 {
		c.Port = DefaultPort
		if c.Security == SecurityTLS {
			c.Port = DefaultTLSPort
		}
	}
	if (c.Username == "") != (c.Password == "") {
		field := "password"
		if c.Username == "" {
			field = "username"
		}
		return &dest.FieldError{Field: field, Message: "is required when the other of username and password is set"}
	}
	if c.Password != "" && c.Security == SecurityNone {
		return &dest.FieldError{Field: "security", Message: `must be "starttls" or "tls" when a password is set: credentials are never sent unencrypted`}
	}
	if strings.ContainsAny(c.Username+c.Password, "\r\n\x00") {
		return &dest.FieldError{Field: "username", Message: "must not contain line breaks or NUL"}
	}
	if c.From == "" {
		return &dest.FieldError{Field: "from", Message: "is required: the sender's email address"}
	}
	if _, err := parseAddress(c.From); err != nil {
		return &dest.FieldError{Field: "from", Message: err.Error()}
	}
	switch {
	case len(c.To) == 0:
		return &dest.FieldError{Field: "to", Message: "is required: at least one recipient address"}
	case len(c.To) > MaxRecipients:
		return &dest.FieldError{Field: "to", Message: fmt.Sprintf("may list at most %d addresses", MaxRecipients)}
	}
	for i, a := range c.To {
		if _, err := parseAddress(a); err != nil {
			return &dest.FieldError{Field: fmt.Sprintf("to[%d]", i), Message: err.Error()}
		}
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	t, err := parseSubject(c.Subject)
	if err != nil {
		return &dest.FieldError{Field: "subject", Message: err.Error()}
	}
	c.subject = t
	return nil
}

// checkHost accepts a DNS host name or an IP address, nothing else: no
// scheme, port, path or "unix://" socket.
func checkHost(h string) error {
	const msg = "must be a host name or IP address, without scheme or port"
	if len(h) > 253 {
		return errors.New(msg)
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return errors.New(msg)
		}
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New(msg)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New(msg)
			}
		}
	}
	return nil
}

// parseAddress accepts one address, with or without a display name
// ("ops@example.com", "Ops <ops@example.com>").
func parseAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid email address", s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 || len(a.Address) > 254 {
		return nil, fmt.Errorf("%q is not a valid email address", s)
	}
	return a, nil
}

// parseSubject compiles a subject template. Only what a subject line needs
// is allowed: actions, pipelines, if and with. range, define, block and
// template are refused, which keeps rendering linear in the template's size
// (no loops, no recursion). It runs as every settings template does, under
// a dest.Budget, which also bounds what printf and the escapers may build.
func parseSubject(src string) (*dest.Template, error) {
	if len(src) > MaxSubjectTemplate {
		return nil, fmt.Errorf("must be at most %d characters", MaxSubjectTemplate)
	}
	t, err := template.New("subject").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("is not a valid template: %s", strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates")
	}
	if err := checkNodes(t.Tree.Root); err != nil {
		return nil, err
	}
	bounded, err := dest.ParseTemplate("subject", src)
	if err != nil {
		var fe *dest.FieldError
		if errors.As(err, &fe) {
			return nil, errors.New(fe.Message)
		}
		return nil, err
	}
	return bounded, nil
}

func checkNodes(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode)
	case *parse.RangeNode:
		return errors.New("must not use range")
	case *parse.TemplateNode:
		return errors.New("must not use template or block")
	}
	return nil
}

func checkBranch(b *parse.BranchNode) error {
	if err := checkNodes(b.List); err != nil {
		return err
	}
	return checkNodes(b.ElseList)
}

// Redact returns the settings as the API shows them: the password, when
// there is one, is replaced by HiddenPassword.
func Redact(raw json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return json.RawMessage(`{}`)
	}
	if p, ok := m["password"]; ok && string(p) != `""` && string(p) != "null" {
		m["password"] = json.RawMessage(`"` + HiddenPassword + `"`)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}
