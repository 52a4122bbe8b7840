package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// Kinds of jv: the policy JSON, parsed keeping key order (for deterministic
// errors) and rejecting duplicate keys.
const (
	jNull uint8 = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

type jv struct {
	kind uint8
	b    bool
	str  string // string, or number literal
	keys []string
	vals []*jv // object values or array elements
}

func (v *jv) kindName() string {
	switch v.kind {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	}
	return "an object"
}

func parseJSON(raw []byte) (*jv, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readValue(dec, nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errf("", "invalid JSON: unexpected data after the policy object")
	}
	return v, nil
}

// where is the location of a JSON value in the policy, rendered (as in
// Error.Key) only when an error needs it.
type where struct {
	up  *where
	key string
	idx int // >= 0: array element idx of up; < 0: member key of up
}

func (w *where) String() string {
	if w == nil {
		return ""
	}
	if w.idx >= 0 {
		return w.up.String() + "[" + strconv.Itoa(w.idx) + "]"
	}
	return joinKey(w.up.String(), w.key)
}

func syntaxErr(err error) *Error {
	if errors.Is(err, io.EOF) {
		return errf("", "invalid JSON: unexpected end of input")
	}
	return errf("", "invalid JSON: %v", err)
}

func readValue(dec *json.Decoder, at *where, depth int) (*jv, error) {
	if depth > maxDepth {
		return nil, errf(at.String(), "policy nests more than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	switch t := tok.(type) {
	case nil:
		return &jv{kind: jNull}, nil
	case bool:
		return &jv{kind: jBool, b: t}, nil
	case json.Number:
		return &jv{kind: jNumber, str: string(t)}, nil
	case string:
		return &jv{kind: jString, str: t}, nil
	case json.Delim:
		switch t {
		case '{':
			o := &jv{kind: jObject}
			var seen map[string]bool // once the object is large
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxErr(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errf(at.String(), "invalid JSON: object key is not a string")
				}
				member := where{up: at, key: k, idx: -1}
				dup := false
				if seen != nil {
					dup = seen[k]
				} else {
					for _, prev := range o.keys {
						dup = dup || prev == k
					}
					if len(o.keys) >= 16 {
						seen = make(map[string]bool, 2*len(o.keys))
						for _, prev := range o.keys {
							seen[prev] = true
						}
					}
				}
				if dup {
					return nil, errf(member.String(), "duplicate key")
				}
				if seen != nil {
					seen[k] = true
				}
				v, err := readValue(dec, &member, depth+1)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k)
				o.vals = append(o.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxErr(err)
			}
			return o, nil
		case '[':
			a := &jv{kind: jArray}
			for i := 0; dec.More(); i++ {
				elem := where{up: at, idx: i}
				v, err := readValue(dec, &elem, depth+1)
				if err != nil {
					return nil, err
				}
				a.vals = append(a.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxErr(err)
			}
			return a, nil
		}
	}
	return nil, errf(at.String(), "invalid JSON: unexpected %v", tok)
}
