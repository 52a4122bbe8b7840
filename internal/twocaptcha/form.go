package twocaptcha

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxBody is the largest request the front reads, the REST API's limit too
// (api.MaxBody, the seed's 1 MB payload limit); ERROR_TOO_BIG_CAPTCHA_FILESIZE's
// text names it.
const MaxBody = 1 << 20

// readForm reads a legacy request's parameters: the query, then the body
// as a form, a multipart form (whose files stay in r.MultipartForm) or a JSON
// object, which 2captcha's current API takes too. A JSON body is recognised
// by its content type or, since some clients send it as text/plain, by its
// first byte. JSON numbers keep their text, booleans become 1 and 0, and
// objects and arrays (such as json_cookies) their compact JSON.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, answer, bool) {
	form := r.URL.Query()
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	ct := r.Header.Get("Content-Type")
	var tooBig *http.MaxBytesError
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		if err := r.ParseMultipartForm(MaxBody); err != nil {
			if errors.As(err, &tooBig) {
				return nil, errorAnswer("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, errorAnswer("ERROR_BAD_PARAMETERS"), false
		}
		mergeValues(form, r.MultipartForm.Value)
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.As(err, &tooBig) {
				return nil, errorAnswer("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, errorAnswer("ERROR_BAD_PARAMETERS"), false
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errorWith("ERROR_BAD_PARAMETERS", "The form body is malformed: "+err.Error()), false
		}
		mergeValues(form, vals)
	default:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.As(err, &tooBig) {
				return nil, errorAnswer("ERROR_TOO_BIG_CAPTCHA_FILESIZE"), false
			}
			return nil, errorAnswer("ERROR_BAD_PARAMETERS"), false
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			break
		}
		if strings.HasPrefix(ct, "application/json") || trimmed[0] == '{' {
			vals, err := jsonValues(trimmed)
			if err != nil {
				return nil, errorWith("ERROR_BAD_PARAMETERS", "The JSON body is malformed: "+err.Error()), false
			}
			mergeValues(form, vals)
		}
	}
	return form, answer{}, true
}

// mergeValues lets the body's parameters win over the query's.
func mergeValues(dst url.Values, src map[string][]string) {
	for k, v := range src {
		if len(v) > 0 {
			dst[k] = v
		}
	}
}

// jsonValues flattens a JSON object of parameters into string values.
func jsonValues(body []byte) (url.Values, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	vals := url.Values{}
	for k, v := range obj {
		switch v := v.(type) {
		case nil:
		case string:
			vals.Set(k, v)
		case json.Number:
			vals.Set(k, v.String())
		case bool:
			if v {
				vals.Set(k, "1")
			} else {
				vals.Set(k, "0")
			}
		default:
			b, _ := json.Marshal(v)
			vals.Set(k, string(b))
		}
	}
	return vals, nil
}
