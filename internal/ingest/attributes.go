package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Attributes are an event's message attributes, as in SNS: names mapped to
// string values, which filter policies (internal/filter) match in their
// "attributes" scope.
//
// In JSON a value may be a string, a number or a boolean. SNS publishers
// commonly send Number attributes, and JSON clients write them as numbers;
// they are kept as their string form, a number exactly as written (5, 5.50,
// -1e3) and a boolean as true or false. That form is what filter policies
// already treat as a number (numeric conditions, exact numeric values) or
// as the string "true". Anything else (null, an object, an array) is a
// *ValidationError naming the attribute, such as "attributes.price".
//
// Every way an event enters decodes its attributes through this type: the
// REST publish and the replay of spooled publishes (whose records hold the
// string form already, which decodes to itself).
type Attributes map[string]string

// UnmarshalJSON decodes a JSON object of attribute values (see Attributes).
// null leaves the attributes as they are, as encoding/json does for maps.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return &ValidationError{"attributes", "must be an object of string, number or boolean values"}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &ValidationError{"attributes", "must be an object of string, number or boolean values"}
	}
	// Decode in name order, so that of several bad values the same one is
	// reported every time.
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(Attributes, len(raw))
	for _, k := range names {
		v, err := attributeValue(raw[k])
		if err != nil {
			return &ValidationError{"attributes." + k, err.Error()}
		}
		out[k] = v
	}
	*a = out
	return nil
}

// attributeValue is the string form of one JSON attribute value, or, when
// the value has none, the rule it breaks (for the ValidationError).
func attributeValue(v json.RawMessage) (string, error) {
	got := "another kind of value"
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s, nil
		}
	case c == '-' || ('0' <= c && c <= '9'):
		// The literal as the client wrote it: the decoder has checked that
		// it is a JSON number, and formatting it anew could change what an
		// exact-match filter sees (5.50 would become 5.5).
		return string(v), nil
	case string(v) == "true", string(v) == "false":
		return string(v), nil
	case string(v) == "null":
		got = "null"
	case c == '{':
		got = "an object"
	case c == '[':
		got = "an array"
	}
	return "", fmt.Errorf("must be a string, a number or a boolean (numbers and booleans are kept as text), not %s", got)
}
