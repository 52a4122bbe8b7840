package ingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAttributesDecode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Attributes
	}{
		{`{"price":5}`, Attributes{"price": "5"}},
		{`{"price":5.50,"small":-1e3,"big":1E+21,"zero":0}`, Attributes{"price": "5.50", "small": "-1e3", "big": "1E+21", "zero": "0"}},
		{`{"vip":true,"gift":false}`, Attributes{"vip": "true", "gift": "false"}},
		{`{"name":"tea","esc":"a\"b\u00e9","empty":""}`, Attributes{"name": "tea", "esc": `a"bé`, "empty": ""}},
		{`{"list":"[\"a\",\"b\"]"}`, Attributes{"list": `["a","b"]`}}, // a String.Array attribute is a string
		{`{ "spaced" : 7 }`, Attributes{"spaced": "7"}},
		{`{}`, Attributes{}},
		{`null`, nil},
	} {
		var got Attributes
		if err := json.Unmarshal([]byte(c.in), &got); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

func TestAttributesDecodeErrors(t *testing.T) {
	for _, c := range []struct{ in, field, got string }{
		{`{"price":null}`, "attributes.price", "not null"},
		{`{"size":{"w":1}}`, "attributes.size", "not an object"},
		{`{"tags":["a"]}`, "attributes.tags", "not an array"},
		{`{"b":null,"a":[]}`, "attributes.a", "not an array"}, // the first by name
		{`"price"`, "attributes", "must be an object"},
		{`[1]`, "attributes", "must be an object"},
	} {
		var got Attributes
		err := json.Unmarshal([]byte(c.in), &got)
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.Field != c.field || !strings.Contains(verr.Message, c.got) {
			t.Errorf("%s: error %v, want a ValidationError on %s saying %q", c.in, err, c.field, c.got)
		}
	}
}

// TestSpooledInputKeepsAttributes: a spooled publish is an Input as JSON;
// its attributes, already in string form, decode to themselves on replay.
func TestSpooledInputKeepsAttributes(t *testing.T) {
	var in Input
	if err := json.Unmarshal([]byte(`{"Type":"a.b","Attributes":{"price":5}}`), &in); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var replayed Input
	if err := json.Unmarshal(b, &replayed); err != nil || !reflect.DeepEqual(replayed.Attributes, Attributes{"price": "5"}) {
		t.Errorf("replayed attributes %#v, %v; want price \"5\" (spooled as %s)", replayed.Attributes, err, b)
	}
}
