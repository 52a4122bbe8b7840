package task

import (
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"strings"

	"carrier/internal/ingest"
)

// RawCallback is a pingback exactly as it arrived, kept so that a dead letter
// can be redriven and a spooled callback replayed.
type RawCallback struct {
	Method      string `json:"method"`
	Query       string `json:"query"`
	Body        string `json:"body"`
	ContentType string `json:"content_type"`
}

// CheckRaw refuses a pingback whose text no store could keep alike (see
// ingest.CheckText): it may become a dead letter, which keeps it verbatim.
func CheckRaw(raw RawCallback) error {
	for _, f := range [...]struct{ name, value string }{
		{"query", raw.Query}, {"body", raw.Body}, {"content_type", raw.ContentType},
	} {
		if err := ingest.CheckText(f.name, f.value); err != nil {
			return err
		}
	}
	return nil
}

// Callback is what a pingback says: which provider task, and its answer (or
// the provider's error string, such as ERROR_CAPTCHA_UNSOLVABLE).
type Callback struct {
	ID   string
	Code string
}

// MaxCallbackBody is the largest pingback body Carrier reads.
const MaxCallbackBody = 64 << 10

// ParseCallback reads a pingback in any of the forms providers send: GET with
// ?id=&code= (CaptchaAI), POST form id=&code= (2captcha), or a JSON object
// {"id", "code"}. Values in the body win over the query.
func ParseCallback(raw RawCallback) (Callback, error) {
	q, err := url.ParseQuery(raw.Query)
	if err != nil {
		return Callback{}, errors.New("query string is not valid URL encoding")
	}
	cb := Callback{ID: q.Get("id"), Code: q.Get("code")}
	if strings.TrimSpace(raw.Body) != "" {
		mt, _, _ := mime.ParseMediaType(raw.ContentType)
		body := strings.TrimSpace(raw.Body)
		switch {
		case mt == "application/json" || (mt == "" && strings.HasPrefix(body, "{")):
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				return Callback{}, errors.New("body is not a JSON object")
			}
			if s := jsonString(v["id"]); s != "" {
				cb.ID = s
			}
			if s := jsonString(v["code"]); s != "" {
				cb.Code = s
			}
		default:
			f, err := url.ParseQuery(body)
			if err != nil {
				return Callback{}, errors.New("body is not valid form encoding")
			}
			if s := f.Get("id"); s != "" {
				cb.ID = s
			}
			if s := f.Get("code"); s != "" {
				cb.Code = s
			}
		}
	}
	cb.ID = strings.TrimSpace(cb.ID)
	switch {
	case cb.ID == "":
		return cb, errors.New("id is missing")
	case len(cb.ID) > 128:
		return cb, errors.New("id is longer than 128 characters")
	case cb.Code == "":
		return cb, errors.New("code is missing")
	}
	return cb, nil
}

func jsonString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return ""
}
