package filter

import (
	"encoding/json"
	"errors"
	"testing"
)

var fuzzAttrs = []map[string]string{
	nil,
	{"status": "failed", "price": "0.5", "method": "user.create"},
	{"a": `["x", 1, true, null, "\u00e9"]`, "b": "[", "c": "", "ip": "10.0.0.1"},
	{"$or": "a", "data": `{"status":"failed"}`},
}

var fuzzBodies = []string{
	`{}`,
	`{"status":"failed","price":0.5,"data":{"status":"failed","items":[{"sku":"a"},{"sku":null}]}}`,
	`{"a":[1,"1",true,null,[2,[3]],{"b":{"c":"d"}}],"ip":"::1","$or":"x"}`,
	`[1,2]`,
	`not json`,
}

func FuzzCompile(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"status":["failed","error"],"price":[{"numeric":[">",0,"<=",150]}]}`,
		`{"a":["x",5,null,true,{"prefix":"p"},{"suffix":"s"},{"equals-ignore-case":"E"}]}`,
		`{"a":[{"anything-but":["x",1]}],"b":[{"anything-but":{"prefix":"p"}}],"c":[{"exists":false}]}`,
		`{"ip":[{"cidr":"10.0.0.0/24"}],"v6":[{"cidr":"::/0"}]}`,
		`{"$or":[{"a":["1"]},{"b":{"c":["2"]}}],"d":{"$or":[{"e":[1]},{"f":[2]}]}}`,
		`{"data":{"status":["failed"],"items":{"sku":[{"exists":true}]}}}`,
		`{"$or":["a","b"]}`,
		`{"a":[{"numeric":["=",1.5e-6]}]}`,
		`{"a":[[1]]}`,
		`{"a":{"b":{"c":{"d":{"e":{"f":["x"]}}}}}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, body bool) {
		scope := ScopeAttributes
		if body {
			scope = ScopeBody
		}
		p, err := Compile(raw, scope)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if p != nil {
				t.Fatal("non-nil policy with an error")
			}
			// Deterministic: the same input gives the same error.
			_, err2 := Compile(raw, scope)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("non-deterministic error: %v then %v", err, err2)
			}
			return
		}
		for _, a := range fuzzAttrs {
			p.MatchAttributes(a)
			p.Match(a, nil)
		}
		for _, b := range fuzzBodies {
			p.Match(nil, []byte(b))
			var v any
			if json.Unmarshal([]byte(b), &v) == nil {
				p.MatchBody(v)
			}
		}
		// The policy JSON itself as data and as attribute values.
		p.Match(map[string]string{"a": string(raw)}, raw)
	})
}
