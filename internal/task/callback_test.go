package task

import (
	"strings"
	"testing"
)

func TestParseCallback(t *testing.T) {
	cases := []struct {
		name     string
		raw      RawCallback
		id, code string
		err      string
	}{
		{"captchaai GET", RawCallback{Method: "GET", Query: "id=7000000001&code=03AGdBq2"}, "7000000001", "03AGdBq2", ""},
		{"2captcha POST form", RawCallback{Method: "POST", Body: "id=7000000001&code=abc%7Cdef", ContentType: "application/x-www-form-urlencoded"}, "7000000001", "abc|def", ""},
		{"JSON body", RawCallback{Method: "POST", Body: `{"id": 7000000001, "code": "xyz"}`, ContentType: "application/json"}, "7000000001", "xyz", ""},
		{"JSON without content type", RawCallback{Method: "POST", Body: `{"id":"1","code":"x"}`}, "1", "x", ""},
		{"body wins over query", RawCallback{Method: "POST", Query: "id=1&code=old", Body: "code=new", ContentType: "application/x-www-form-urlencoded"}, "1", "new", ""},
		{"error code as answer", RawCallback{Method: "GET", Query: "id=5&code=ERROR_CAPTCHA_UNSOLVABLE"}, "5", "ERROR_CAPTCHA_UNSOLVABLE", ""},
		{"missing id", RawCallback{Method: "GET", Query: "code=x"}, "", "", "id is missing"},
		{"missing code", RawCallback{Method: "GET", Query: "id=5"}, "", "", "code is missing"},
		{"bad query", RawCallback{Method: "GET", Query: "id=%zz"}, "", "", "query string"},
		{"bad JSON", RawCallback{Method: "POST", Body: `{"id":`, ContentType: "application/json"}, "", "", "JSON object"},
		{"long id", RawCallback{Method: "GET", Query: "id=" + strings.Repeat("1", 129) + "&code=x"}, "", "", "longer than 128"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseCallback(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.ID != c.id || got.Code != c.code {
				t.Errorf("got id %q code %q, want %q %q", got.ID, got.Code, c.id, c.code)
			}
		})
	}
}

// FuzzParseCallback checks that no pingback, however malformed, panics the
// parser, and that whatever it accepts has an id and a code.
func FuzzParseCallback(f *testing.F) {
	f.Add("id=1&code=x", "", "")
	f.Add("", "id=1&code=x", "application/x-www-form-urlencoded")
	f.Add("", `{"id":1,"code":"x"}`, "application/json")
	f.Add("id=%zz", "{", "application/json; charset=utf-8")
	f.Add("", "--b\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1\r\n--b--", "multipart/form-data; boundary=b")
	f.Fuzz(func(t *testing.T, query, body, contentType string) {
		cb, err := ParseCallback(RawCallback{Method: "POST", Query: query, Body: body, ContentType: contentType})
		if err == nil && (cb.ID == "" || cb.Code == "" || len(cb.ID) > 128) {
			t.Fatalf("accepted an incomplete callback: %+v", cb)
		}
	})
}

func TestValidate(t *testing.T) {
	ok := NewTask{Method: "userrecaptcha", Params: map[string]string{"googlekey": "k", "pageurl": "https://x"}}
	if err := Validate(ok); err != nil {
		t.Fatalf("valid task refused: %v", err)
	}
	cases := []struct {
		in    NewTask
		field string
	}{
		{NewTask{}, "method"},
		{NewTask{Method: "a b"}, "method"},
		{NewTask{Method: "turnstile", Params: map[string]string{"pageurl": "https://x"}}, "params.sitekey"},
		{NewTask{Method: "base64", Params: map[string]string{"pingback": "https://evil"}}, "params.pingback"},
		{NewTask{Method: "base64", Params: map[string]string{"JSON": "0"}}, "params.JSON"},
		{NewTask{Method: "base64", Metadata: []byte(`"text"`)}, "metadata"},
	}
	for _, c := range cases {
		err := Validate(c.in)
		verr, isV := err.(*ValidationError)
		if !isV || verr.Field != c.field {
			t.Errorf("%+v: err = %v, want a validation error naming %s", c.in, err, c.field)
		}
	}
}
