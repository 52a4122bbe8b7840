package ingest

import (
	"errors"
	"testing"
)

// TestCheckJSONNamesThePath checks that every string of a document, keys
// included, is checked for NUL (raw or escaped) and invalid UTF-8, and that
// the error names the path at fault.
func TestCheckJSONNamesThePath(t *testing.T) {
	for _, c := range []struct {
		field, doc string
		want       string // field of the error; "" for none
		msg        string
	}{
		{"", `{"a": "x", "b": [1, "ok", {"c": "x"}]}`, "", ""},
		{"", `{"a": "\\u0000 is text here"}`, "", ""},
		{"", `{"subject": "a\u0000b"}`, "subject", msgNUL},
		{"", `{"name": "x", "tags": ["ok", "b\u0000"]}`, "tags[1]", msgNUL},
		{"", `{"metadata": {"k": {"deep": "\u0000"}}}`, "metadata.k.deep", msgNUL},
		{"", `{"attributes": {"a\u0000": "v"}}`, `attributes.a\u0000`, msgNUL},
		{"", "{\"description\": \"bad \xff byte\"}", "description", msgUTF8},
		{"", "{\"a\": [\"x\", {\"k\xfe\": 1}]}", "a[1].k\uFFFD", msgUTF8},
		{"data", `{"x": ["a", "\u0000"]}`, "data.x[1]", msgNUL},
		{"data", `["\u0000"]`, "data[0]", msgNUL},
		{"data", `"\u0000"`, "data", msgNUL},
		{"", `{"a": 1} trailing "\u0000"`, "", ""}, // the decoder reports trailing data
	} {
		err := CheckJSON(c.field, []byte(c.doc))
		var verr *ValidationError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want none", c.doc, err)
		case c.want == "":
		case !errors.As(err, &verr):
			t.Errorf("%s: %v, want a validation error on %s", c.doc, err, c.want)
		case verr.Field != c.want || verr.Message != c.msg:
			t.Errorf("%s: %s %q, want %s %q", c.doc, verr.Field, verr.Message, c.want, c.msg)
		}
	}
}
