package filter

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// nums returns a JSON array of the numbers 1..n.
func nums(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = strconv.Itoa(i + 1)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func mustCompile(t testing.TB, policy, scope string) *Policy {
	t.Helper()
	p, err := Compile([]byte(policy), scope)
	if err != nil {
		t.Fatalf("Compile(%s, %s): %v", policy, scope, err)
	}
	return p
}

func TestMatchAttributes(t *testing.T) {
	type M = map[string]string
	cases := []struct {
		name   string
		policy string
		attrs  M
		want   bool
	}{
		{"empty policy, no attributes", `{}`, nil, true},
		{"empty policy, attributes", `{}`, M{"a": "b"}, true},

		{"exact", `{"status":["failed"]}`, M{"status": "failed"}, true},
		{"exact is case-sensitive", `{"status":["failed"]}`, M{"status": "FAILED"}, false},
		{"exact no match", `{"status":["failed"]}`, M{"status": "ok"}, false},
		{"OR within a key", `{"status":["failed","error"]}`, M{"status": "error"}, true},
		{"AND across keys", `{"status":["failed"],"kind":["captcha"]}`, M{"status": "failed", "kind": "captcha"}, true},
		{"AND across keys, one fails", `{"status":["failed"],"kind":["captcha"]}`, M{"status": "failed", "kind": "other"}, false},
		{"missing key never matches", `{"status":["failed"]}`, M{"other": "failed"}, false},
		{"other attributes are ignored", `{"status":["failed"]}`, M{"status": "failed", "x": "y"}, true},

		{"number matches numeric string", `{"n":[5]}`, M{"n": "5"}, true},
		{"number matches numerically", `{"n":[5]}`, M{"n": "5.0"}, true},
		{"number matches exponent form", `{"n":[301.5]}`, M{"n": "3.015e2"}, true},
		{"number vs non-number", `{"n":[5]}`, M{"n": "five"}, false},
		{"number vs non-JSON number", `{"n":[5]}`, M{"n": "05"}, false},
		{"string is compared as a string", `{"n":["5"]}`, M{"n": "5.0"}, false},
		{"string equal", `{"n":["5"]}`, M{"n": "5"}, true},
		{"boolean as string", `{"ok":[true]}`, M{"ok": "true"}, true},
		{"boolean as string, no", `{"ok":[true]}`, M{"ok": "false"}, false},

		{"mixed types: string", `{"v":["a",5,{"prefix":"x"}]}`, M{"v": "a"}, true},
		{"mixed types: number", `{"v":["a",5,{"prefix":"x"}]}`, M{"v": "5.00"}, true},
		{"mixed types: prefix", `{"v":["a",5,{"prefix":"x"}]}`, M{"v": "xyz"}, true},
		{"mixed types: none", `{"v":["a",5,{"prefix":"x"}]}`, M{"v": "b"}, false},

		{"prefix", `{"m":[{"prefix":"user."}]}`, M{"m": "user.create"}, true},
		{"prefix no", `{"m":[{"prefix":"user."}]}`, M{"m": "admin.user."}, false},
		{"suffix", `{"m":[{"suffix":"ball"}]}`, M{"m": "baseball"}, true},
		{"suffix no", `{"m":[{"suffix":"ball"}]}`, M{"m": "rugby"}, false},
		{"equals-ignore-case", `{"m":[{"equals-ignore-case":"Tennis"}]}`, M{"m": "tENNIS"}, true},
		{"equals-ignore-case no", `{"m":[{"equals-ignore-case":"Tennis"}]}`, M{"m": "tennis2"}, false},

		{"anything-but string", `{"s":[{"anything-but":"ok"}]}`, M{"s": "failed"}, true},
		{"anything-but string, excluded", `{"s":[{"anything-but":"ok"}]}`, M{"s": "ok"}, false},
		{"anything-but list", `{"s":[{"anything-but":["rugby","tennis"]}]}`, M{"s": "baseball"}, true},
		{"anything-but list, excluded", `{"s":[{"anything-but":["rugby","tennis"]}]}`, M{"s": "tennis"}, false},
		{"anything-but does not match a missing key", `{"s":[{"anything-but":["rugby"]}]}`, M{"other": "x"}, false},
		{"anything-but with exists false matches a missing key", `{"s":[{"anything-but":["rugby"]},{"exists":false}]}`, M{"other": "x"}, true},
		{"anything-but with exists false, excluded value", `{"s":[{"anything-but":["rugby"]},{"exists":false}]}`, M{"s": "rugby"}, false},
		{"anything-but numbers", `{"p":[{"anything-but":[100,500]}]}`, M{"p": "101"}, true},
		{"anything-but numbers, excluded", `{"p":[{"anything-but":[100,500]}]}`, M{"p": "100"}, false},
		{"anything-but numbers, excluded numerically", `{"p":[{"anything-but":[100,500]}]}`, M{"p": "1e2"}, false},
		{"anything-but numbers, string value", `{"p":[{"anything-but":[100,500]}]}`, M{"p": "cheap"}, true},
		{"anything-but prefix", `{"e":[{"anything-but":{"prefix":"order-"}}]}`, M{"e": "product-created"}, true},
		{"anything-but prefix, excluded", `{"e":[{"anything-but":{"prefix":"order-"}}]}`, M{"e": "order-cancelled"}, false},
		{"anything-but suffix", `{"e":[{"anything-but":{"suffix":"ball"}}]}`, M{"e": "rugby"}, true},
		{"anything-but suffix, excluded", `{"e":[{"anything-but":{"suffix":"ball"}}]}`, M{"e": "baseball"}, false},

		{"numeric =", `{"p":[{"numeric":["=",301.5]}]}`, M{"p": "301.5"}, true},
		{"numeric = exponent", `{"p":[{"numeric":["=",301.5]}]}`, M{"p": "3.015e2"}, true},
		{"numeric = no", `{"p":[{"numeric":["=",301.5]}]}`, M{"p": "301.4"}, false},
		{"numeric <", `{"p":[{"numeric":["<",0]}]}`, M{"p": "-0.5"}, true},
		{"numeric < boundary", `{"p":[{"numeric":["<",0]}]}`, M{"p": "0"}, false},
		{"numeric <= boundary", `{"p":[{"numeric":["<=",0]}]}`, M{"p": "0"}, true},
		{"numeric range inside", `{"p":[{"numeric":[">",0,"<=",150]}]}`, M{"p": "150"}, true},
		{"numeric range lower bound excluded", `{"p":[{"numeric":[">",0,"<=",150]}]}`, M{"p": "0"}, false},
		{"numeric range above", `{"p":[{"numeric":[">",0,"<=",150]}]}`, M{"p": "150.00001"}, false},
		{"numeric range >= lower bound", `{"p":[{"numeric":[">=",0,"<",1]}]}`, M{"p": "0"}, true},
		{"numeric on a non-number", `{"p":[{"numeric":[">",0]}]}`, M{"p": "abc"}, false},
		{"numeric on NaN text", `{"p":[{"numeric":[">",0]}]}`, M{"p": "Inf"}, false},
		{"two numeric ranges OR", `{"p":[{"numeric":["<",0]},{"numeric":[">",100]}]}`, M{"p": "101"}, true},

		{"exists true, present", `{"store":[{"exists":true}]}`, M{"store": "fans"}, true},
		{"exists true, missing", `{"store":[{"exists":true}]}`, M{"x": "fans"}, false},
		{"exists true, empty value", `{"store":[{"exists":true}]}`, M{"store": ""}, false},
		{"exists false, missing", `{"store":[{"exists":false}]}`, M{"x": "fans"}, true},
		{"exists false, present", `{"store":[{"exists":false}]}`, M{"store": "fans"}, false},
		{"exists false, no attributes at all", `{"store":[{"exists":false}]}`, M{}, false},
		{"exists false, nil attributes", `{"store":[{"exists":false}]}`, nil, false},

		{"String.Array exact", `{"ci":["rugby","tennis"]}`, M{"ci": `["rugby", "tennis"]`}, true},
		{"String.Array exact, one element", `{"ci":["rugby","tennis"]}`, M{"ci": `["soccer","rugby"]`}, true},
		{"String.Array exact, none", `{"ci":["rugby","tennis"]}`, M{"ci": `["baseball"]`}, false},
		{"String.Array anything-but, any element", `{"ci":[{"anything-but":["rugby","tennis"]}]}`, M{"ci": `["rugby","baseball"]`}, true},
		{"String.Array anything-but, all excluded", `{"ci":[{"anything-but":["rugby","tennis"]}]}`, M{"ci": `["rugby","tennis"]`}, false},
		{"String.Array anything-but suffix", `{"ci":[{"anything-but":{"suffix":"ball"}}]}`, M{"ci": `["baseball","basketball"]`}, false},
		{"String.Array numbers", `{"p":[{"numeric":[">",60]}]}`, M{"p": `[10, 50, 70]`}, true},
		{"String.Array numbers, none", `{"p":[{"numeric":[">",60]}]}`, M{"p": `[10, 50]`}, false},
		{"String.Array escaped string", `{"q":["say \"hi\""]}`, M{"q": `["say \"hi\""]`}, true},
		{"String.Array unicode escape", `{"q":["é"]}`, M{"q": `["\u00e9"]`}, true},
		{"String.Array empty does not exist", `{"q":[{"exists":true}]}`, M{"q": `[]`}, false},
		{"String.Array null element", `{"q":[{"anything-but":"x"}]}`, M{"q": `[null]`}, false},
		{"malformed array is a plain string", `{"q":["[abc"]}`, M{"q": "[abc"}, true},
		{"array with object is a plain string", `{"q":[{"prefix":"[{"}]}`, M{"q": `[{"a":1}]`}, true},
		{"array with trailing comma is a plain string", `{"q":["[1,]"]}`, M{"q": `[1,]`}, true},

		{"cidr v4", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, M{"ip": "10.0.0.255"}, true},
		{"cidr v4 outside", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, M{"ip": "10.0.1.0"}, false},
		{"cidr not an ip", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, M{"ip": "localhost"}, false},
		{"cidr unmasked network", `{"ip":[{"cidr":"10.0.0.7/24"}]}`, M{"ip": "10.0.0.1"}, true},
		{"cidr v6", `{"ip":[{"cidr":"2001:db8::/32"}]}`, M{"ip": "2001:db8::1"}, true},
		{"cidr v6 outside", `{"ip":[{"cidr":"2001:db8::/32"}]}`, M{"ip": "2001:db9::1"}, false},

		{"$or first", `{"source":["cw"],"$or":[{"metric":["cpu"]},{"ns":["ec2"]}]}`, M{"source": "cw", "metric": "cpu"}, true},
		{"$or second", `{"source":["cw"],"$or":[{"metric":["cpu"]},{"ns":["ec2"]}]}`, M{"source": "cw", "ns": "ec2"}, true},
		{"$or neither", `{"source":["cw"],"$or":[{"metric":["cpu"]},{"ns":["ec2"]}]}`, M{"source": "cw", "ns": "rds"}, false},
		{"$or AND outside fails", `{"source":["cw"],"$or":[{"metric":["cpu"]},{"ns":["ec2"]}]}`, M{"source": "x", "metric": "cpu"}, false},
		{"$or nested", `{"$or":[{"a":["1"]},{"b":["2"],"$or":[{"c":["3"]},{"d":["4"]}]}]}`, M{"b": "2", "d": "4"}, true},
		{"$or nested, inner fails", `{"$or":[{"a":["1"]},{"b":["2"],"$or":[{"c":["3"]},{"d":["4"]}]}]}`, M{"b": "2", "d": "5"}, false},
		{"$or with strings is an ordinary key", `{"$or":["a","b"]}`, M{"$or": "b"}, true},

		{"body-scope policy: nested keys never match attributes", `{"data":{"s":["x"]}}`, M{"data": "x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scope := ScopeAttributes
			if strings.HasPrefix(tc.name, "body-scope") {
				scope = ScopeBody
			}
			p := mustCompile(t, tc.policy, scope)
			if got := p.MatchAttributes(tc.attrs); got != tc.want {
				t.Errorf("MatchAttributes(%v) with %s = %v, want %v", tc.attrs, tc.policy, got, tc.want)
			}
			if scope == ScopeAttributes {
				if got := p.Match(tc.attrs, []byte(`{"status":"failed"}`)); got != tc.want {
					t.Errorf("Match = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestMatchBody(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		data   string
		want   bool
	}{
		{"empty policy", `{}`, `{"a":1}`, true},
		{"empty policy, not an object", `{}`, `[1,2]`, true},
		{"empty policy, invalid JSON", `{}`, `{`, true},
		{"not an object", `{"a":[1]}`, `[{"a":1}]`, false},
		{"invalid JSON", `{"a":[1]}`, `{"a":1`, false},

		{"exact", `{"status":["failed"]}`, `{"status":"failed"}`, true},
		{"missing key", `{"status":["failed"]}`, `{"state":"failed"}`, false},
		{"nested key", `{"data":{"status":["failed"]}}`, `{"data":{"status":"failed","n":1}}`, true},
		{"nested key at wrong level", `{"data":{"status":["failed"]}}`, `{"status":"failed"}`, false},
		{"nested key, parent is a scalar", `{"data":{"status":["failed"]}}`, `{"data":"failed"}`, false},
		{"deeply nested", `{"a":{"b":{"c":[{"prefix":"x"}]}}}`, `{"a":{"b":{"c":"xyz"}}}`, true},
		{"nested AND", `{"data":{"status":["failed"],"code":[{"numeric":[">=",500]}]}}`, `{"data":{"status":"failed","code":503}}`, true},
		{"nested AND fails", `{"data":{"status":["failed"],"code":[{"numeric":[">=",500]}]}}`, `{"data":{"status":"failed","code":404}}`, false},

		{"array in data, any element", `{"tags":["urgent"]}`, `{"tags":["low","urgent"]}`, true},
		{"array in data, none", `{"tags":["urgent"]}`, `{"tags":["low","high"]}`, false},
		{"empty array in data", `{"tags":["urgent"]}`, `{"tags":[]}`, false},
		{"nested arrays in data", `{"tags":["urgent"]}`, `{"tags":[["low"],["urgent"]]}`, true},
		{"array of objects on the path", `{"items":{"sku":["b"]}}`, `{"items":[{"sku":"a"},{"sku":"b"}]}`, true},
		{"array of objects on the path, none", `{"items":{"sku":["c"]}}`, `{"items":[{"sku":"a"},{"sku":"b"}]}`, false},
		{"numbers in an array", `{"price":[{"anything-but":[100,500]}]}`, `{"price":[100,50]}`, true},
		{"object value is not a leaf", `{"a":["x"]}`, `{"a":{"b":"x"}}`, false},

		{"null matches null", `{"a":[null]}`, `{"a":null}`, true},
		{"null does not match missing", `{"a":[null]}`, `{"b":1}`, false},
		{"null does not match a value", `{"a":[null]}`, `{"a":"null"}`, false},
		{"null in an array", `{"a":[null]}`, `{"a":[1,null]}`, true},
		{"boolean", `{"ok":[true]}`, `{"ok":true}`, true},
		{"boolean false", `{"ok":[false]}`, `{"ok":false}`, true},
		{"boolean vs string", `{"ok":[true]}`, `{"ok":"true"}`, false},

		{"number", `{"n":[5]}`, `{"n":5}`, true},
		{"number numerically", `{"n":[5]}`, `{"n":5.0}`, true},
		{"number vs numeric string", `{"n":[5]}`, `{"n":"5"}`, false},
		{"string vs number", `{"n":["5"]}`, `{"n":5}`, false},
		{"numeric vs numeric string", `{"n":[{"numeric":["=",5]}]}`, `{"n":"5"}`, false},
		{"numeric range", `{"n":[{"numeric":[">",0,"<",1]}]}`, `{"n":0.5}`, true},
		{"prefix vs number", `{"n":[{"prefix":"5"}]}`, `{"n":55}`, false},
		{"mixed types in one array", `{"v":["a",5,null,true]}`, `{"v":true}`, true},
		{"mixed types in one array, none", `{"v":["a",5,null,true]}`, `{"v":"5"}`, false},

		{"anything-but number", `{"price":[{"anything-but":[100,500]}]}`, `{"price":101}`, true},
		{"anything-but number, excluded", `{"price":[{"anything-but":[100,500]}]}`, `{"price":100}`, false},
		{"anything-but number, excluded numerically", `{"price":[{"anything-but":[100,500]}]}`, `{"price":1e2}`, false},
		{"anything-but number vs numeric string", `{"price":[{"anything-but":[100]}]}`, `{"price":"100"}`, true},
		{"anything-but string vs number", `{"price":[{"anything-but":["100"]}]}`, `{"price":100}`, true},
		{"anything-but missing key", `{"price":[{"anything-but":[100]}]}`, `{"cost":100}`, false},
		{"anything-but null", `{"price":[{"anything-but":[100]}]}`, `{"price":null}`, false},
		{"anything-but all array elements excluded", `{"s":[{"anything-but":["a","b"]}]}`, `{"s":["a","b"]}`, false},

		{"exists true", `{"a":[{"exists":true}]}`, `{"a":0}`, true},
		{"exists true, null", `{"a":[{"exists":true}]}`, `{"a":null}`, false},
		{"exists true, empty string", `{"a":[{"exists":true}]}`, `{"a":""}`, false},
		{"exists true, empty array", `{"a":[{"exists":true}]}`, `{"a":[]}`, false},
		{"exists true, object is not a leaf", `{"a":[{"exists":true}]}`, `{"a":{"b":1}}`, false},
		{"exists true, nested", `{"a":{"b":[{"exists":true}]}}`, `{"a":{"b":false}}`, true},
		{"exists false, missing", `{"a":[{"exists":false}]}`, `{"b":1}`, true},
		{"exists false, present", `{"a":[{"exists":false}]}`, `{"a":1}`, false},
		{"exists false, null", `{"a":[{"exists":false}]}`, `{"a":null}`, true},
		{"exists false, empty object", `{"a":[{"exists":false}]}`, `{}`, false},
		{"exists false, nested parent missing", `{"a":{"b":[{"exists":false}]}}`, `{"c":1}`, true},
		{"exists false, nested present in one element", `{"a":{"b":[{"exists":false}]}}`, `{"a":[{"c":1},{"b":1}]}`, false},

		{"$or top", `{"$or":[{"a":["1"]},{"b":{"c":["2"]}}]}`, `{"b":{"c":"2"}}`, true},
		{"$or top, none", `{"$or":[{"a":["1"]},{"b":{"c":["2"]}}]}`, `{"a":"2","b":{"c":"1"}}`, false},
		{"$or nested (AWS example)", `{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}],"detail":{"scope":["Service"],"$or":[{"source":["aws.cloudwatch"]},{"type":["CloudWatch Alarm State Change"]}]}}`,
			`{"namespace":"AWS/ES","detail":{"scope":"Service","type":"CloudWatch Alarm State Change"}}`, true},
		{"$or nested (AWS example), inner fails", `{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}],"detail":{"scope":["Service"],"$or":[{"source":["aws.cloudwatch"]},{"type":["CloudWatch Alarm State Change"]}]}}`,
			`{"namespace":"AWS/ES","detail":{"scope":"Service","source":"aws.ec2"}}`, false},
		{"$or nested, inner path is nested", `{"detail":{"$or":[{"x":["1"]},{"y":["2"]}]}}`, `{"detail":{"y":"2"},"y":"1"}`, true},
		{"$or nested, inner path at wrong level", `{"detail":{"$or":[{"x":["1"]},{"y":["2"]}]}}`, `{"detail":{},"y":"2"}`, false},

		{"cidr", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":"10.0.0.9"}`, true},
		{"cidr vs number", `{"ip":[{"cidr":"10.0.0.0/24"}]}`, `{"ip":10}`, false},
		{"equals-ignore-case", `{"s":[{"equals-ignore-case":"ok"}]}`, `{"s":"OK"}`, true},
		{"suffix", `{"s":[{"suffix":".jpg"}]}`, `{"s":"a.jpg"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.policy, ScopeBody)
			if got := p.Match(map[string]string{"a": "1"}, []byte(tc.data)); got != tc.want {
				t.Errorf("Match(%s) with %s = %v, want %v", tc.data, tc.policy, got, tc.want)
			}
			var v any
			if json.Unmarshal([]byte(tc.data), &v) != nil {
				return
			}
			if got := p.MatchBody(v); got != tc.want {
				t.Errorf("MatchBody(%s) with %s = %v, want %v", tc.data, tc.policy, got, tc.want)
			}
			// Data decoded with UseNumber evaluates the same.
			dec := json.NewDecoder(strings.NewReader(tc.data))
			dec.UseNumber()
			var vn any
			if dec.Decode(&vn) == nil {
				if got := p.MatchBody(vn); got != tc.want {
					t.Errorf("MatchBody(UseNumber %s) = %v, want %v", tc.data, got, tc.want)
				}
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	cases := []struct {
		name, scope, policy string
	}{
		{"150 combinations", ScopeAttributes, `{"a":` + nums(10) + `,"b":` + nums(15) + `}`},
		{"5 keys", ScopeAttributes, `{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1]}`},
		{"5 distinct keys across $or", ScopeAttributes, `{"$or":[{"a":[1],"b":[1]},{"a":[2],"c":[1]}],"d":[1],"e":[1]}`},
		{"AWS $or example, 7 combinations", ScopeAttributes, `{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"$or":[{"metricId":[1234,4321]},{"spaceId":[1000,2000,3000]}]}]}`},
		{"AWS nested $or example, 32 combinations", ScopeBody, `{"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}],"detail":{"scope":["Service"],"$or":[{"source":["aws.cloudwatch"]},{"type":["CloudWatch Alarm State Change"]}]}}`},
		{"AWS nested example, 3x4x2x3 = 72", ScopeBody, `{"key_a":{"key_b":{"key_c":["v1","v2","v3","v4"]}},"key_d":{"key_e":["v1","v2","v3"]}}`},
		{"numeric bounds", ScopeAttributes, `{"a":[{"numeric":[">=",-1e9,"<=",1000000000]}],"b":[{"numeric":["=",0.00001]}],"c":[{"numeric":["=",1.2345e-1]}]}`},
		{"$or not recognised: operator keys make it an ordinary key", ScopeAttributes, `{"$or":[{"prefix":"abc"},{"suffix":"x"}]}`},
		{"many exact strings", ScopeAttributes, `{"a":["1","2","3","4","5","6","7","8","9","10"]}`},
		{"whitespace", ScopeBody, " \n{ \"a\" : [ \"x\" ] }\n "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustCompile(t, tc.policy, tc.scope)
		})
	}
	// The many-strings policy uses a set.
	p := mustCompile(t, `{"a":["1","2","3","4","5","6","7","8","9","10"]}`, ScopeAttributes)
	if !p.MatchAttributes(map[string]string{"a": "10"}) || p.MatchAttributes(map[string]string{"a": "11"}) {
		t.Error("string set lookup")
	}
	if p.Scope() != ScopeAttributes {
		t.Errorf("Scope = %q", p.Scope())
	}
}

func TestCompileErrors(t *testing.T) {
	big := `{"a":["` + strings.Repeat("x", MaxPolicySize) + `"]}`
	cases := []struct {
		name, scope, policy string
		key, msg            string // msg: a substring of Message
	}{
		{"bad scope", "headers", `{}`, "", "scope"},
		{"too large", ScopeAttributes, big, "", "bytes"},
		{"invalid JSON", ScopeAttributes, `{"a":[1]`, "", "invalid JSON"},
		{"trailing data", ScopeAttributes, `{"a":[1]} {}`, "", "after the policy"},
		{"not an object", ScopeAttributes, `["a"]`, "", "JSON object"},
		{"not UTF-8", ScopeAttributes, "{\"a\":[\"\xff\"]}", "", "UTF-8"},
		{"duplicate key", ScopeAttributes, `{"a":["x"],"a":["y"]}`, "a", "duplicate"},
		{"duplicate nested key", ScopeBody, `{"d":{"a":["x"],"a":["y"]}}`, "d.a", "duplicate"},

		{"unknown operator", ScopeAttributes, `{"a":[{"regex":"x.*"}]}`, "a", "unsupported operator"},
		{"wildcard unsupported", ScopeAttributes, `{"a":[{"wildcard":"*x"}]}`, "a", "unsupported operator"},
		{"operator object with two keys", ScopeAttributes, `{"a":[{"prefix":"x","suffix":"y"}]}`, "a", "exactly one key"},
		{"empty operator object", ScopeAttributes, `{"a":[{}]}`, "a", "exactly one key"},
		{"prefix not a string", ScopeAttributes, `{"a":[{"prefix":5}]}`, "a", "prefix must be a string"},
		{"suffix not a string", ScopeAttributes, `{"a":[{"suffix":["x"]}]}`, "a", "suffix must be a string"},
		{"equals-ignore-case not a string", ScopeAttributes, `{"a":[{"equals-ignore-case":null}]}`, "a", "must be a string"},
		{"exists not a boolean", ScopeAttributes, `{"a":[{"exists":"true"}]}`, "a", "exists must be true or false"},
		{"cidr invalid", ScopeAttributes, `{"ip":[{"cidr":"10.0.0.0"}]}`, "ip", "cidr"},
		{"cidr not a string", ScopeAttributes, `{"ip":[{"cidr":10}]}`, "ip", "cidr must be a string"},
		{"anything-but boolean", ScopeAttributes, `{"a":[{"anything-but":true}]}`, "a", "anything-but"},
		{"anything-but list with null", ScopeBody, `{"a":[{"anything-but":["x",null]}]}`, "a", "strings or numbers"},
		{"anything-but empty list", ScopeAttributes, `{"a":[{"anything-but":[]}]}`, "a", "must not be empty"},
		{"anything-but numeric", ScopeAttributes, `{"a":[{"anything-but":{"numeric":[">",1]}}]}`, "a", "prefix"},
		{"anything-but empty prefix", ScopeAttributes, `{"a":[{"anything-but":{"prefix":""}}]}`, "a", "non-empty"},

		{"numeric not an array", ScopeAttributes, `{"p":[{"numeric":5}]}`, "p", "must be an array"},
		{"numeric empty", ScopeAttributes, `{"p":[{"numeric":[]}]}`, "p", "2 or 4 elements"},
		{"numeric operator only", ScopeAttributes, `{"p":[{"numeric":[">"]}]}`, "p", "2 or 4 elements"},
		{"numeric three comparisons", ScopeAttributes, `{"p":[{"numeric":[">",0,"<",1,"<",2]}]}`, "p", "2 or 4 elements"},
		{"numeric unknown operator", ScopeAttributes, `{"p":[{"numeric":["!=",1]}]}`, "p", "unknown numeric operator"},
		{"numeric operand not a number", ScopeAttributes, `{"p":[{"numeric":["<","1"]}]}`, "p", "must be a number"},
		{"numeric operator not a string", ScopeAttributes, `{"p":[{"numeric":[1,"<"]}]}`, "p", "must be a string"},
		{"numeric upper bound first", ScopeAttributes, `{"p":[{"numeric":["<",1,">",0]}]}`, "p", "lower bound"},
		{"numeric = in a range", ScopeAttributes, `{"p":[{"numeric":["=",1,"<",5]}]}`, "p", "lower bound"},
		{"numeric two lower bounds", ScopeAttributes, `{"p":[{"numeric":[">",1,">=",5]}]}`, "p", "upper bound"},
		{"numeric empty range", ScopeAttributes, `{"p":[{"numeric":[">",5,"<",5]}]}`, "p", "less than"},
		{"numeric inverted range", ScopeAttributes, `{"p":[{"numeric":[">=",10,"<",1]}]}`, "p", "less than"},
		{"numeric above 1e9", ScopeAttributes, `{"p":[{"numeric":["<",1000000001]}]}`, "p", "outside"},
		{"numeric below -1e9", ScopeAttributes, `{"p":[{"numeric":[">",-1.5e9]}]}`, "p", "outside"},
		{"numeric 6 decimals", ScopeAttributes, `{"p":[{"numeric":["=",0.000001]}]}`, "p", "decimal places"},
		{"numeric 6 decimals via exponent", ScopeAttributes, `{"p":[{"numeric":["=",1.5e-6]}]}`, "p", "decimal places"},
		{"numeric huge exponent", ScopeAttributes, `{"p":[{"numeric":["=",1e999]}]}`, "p", "outside"},

		{"too many keys (6)", ScopeAttributes, `{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}`, "f", "more than 5 keys"},
		{"too many keys, nested leaves count", ScopeBody, `{"a":{"b":[1],"c":[1]},"d":[1],"e":[1],"f":{"g":{"h":[1],"i":[1]}}}`, "f.g.i", "more than 5 keys"},
		{"too many keys, $or branches count", ScopeAttributes, `{"a":[1],"b":[1],"c":[1],"$or":[{"d":[1]},{"e":[1],"f":[1]}]}`, "$or[1].f", "more than 5 keys"},
		{"too many combinations", ScopeAttributes, `{"a":` + nums(10) + `,"b":` + nums(16) + `}`, "b", "more than 150 combinations"},
		{"too many values in one key", ScopeAttributes, `{"a":` + nums(151) + `}`, "a", "more than 150 combinations"},
		{"too many combinations, nesting depth counts", ScopeBody, `{"data":{"x":` + nums(8) + `,"y":` + nums(5) + `}}`, "data.y", "more than 150 combinations"},
		{"too many combinations, $or sums", ScopeAttributes, `{"$or":[{"a":` + nums(10) + `,"b":` + nums(10) + `},{"c":` + nums(60) + `}]}`, "$or[1].c", "more than 150 combinations"},
		{"too many combinations, key after $or multiplies the sum", ScopeAttributes, `{"$or":[{"a":` + nums(10) + `},{"b":` + nums(10) + `}],"c":` + nums(8) + `}`, "c", "more than 150 combinations"},

		{"value is a string", ScopeAttributes, `{"a":"x"}`, "a", "must be an array"},
		{"value is a number", ScopeBody, `{"a":5}`, "a", "must be an array of match values or a nested object"},
		{"value is null", ScopeAttributes, `{"a":null}`, "a", "must be an array"},
		{"empty value list", ScopeAttributes, `{"a":[]}`, "a", "must not be empty"},
		{"nested array", ScopeAttributes, `{"a":[["x"]]}`, "a", "arrays"},
		{"null in attributes scope", ScopeAttributes, `{"a":[null]}`, "a", "body scope"},
		{"nested object in attributes scope", ScopeAttributes, `{"data":{"status":["failed"]}}`, "data", "body scope"},
		{"nested object in attributes scope, in $or", ScopeAttributes, `{"$or":[{"a":["x"]},{"data":{"s":["y"]}}]}`, "$or[1].data", "body scope"},
		{"empty nested object", ScopeBody, `{"data":{}}`, "data", "at least one key"},
		{"error in nested key", ScopeBody, `{"data":{"status":[{"numeric":[">"]}]}}`, "data.status", "elements"},
		{"error in $or branch", ScopeAttributes, `{"$or":[{"a":["x"]},{"price":[{"numeric":["<","x"]}]}]}`, "$or[1].price", "must be a number"},
		{"error in nested $or branch", ScopeBody, `{"d":{"$or":[{"a":["x"]},{"b":{"c":[{"bad":1}]}}]}}`, "d.$or[1].b.c", "unsupported operator"},
		{"$or with one alternative", ScopeAttributes, `{"$or":[{"a":["x"]}]}`, "$or", "at least 2 objects"},
		{"$or with an empty alternative", ScopeAttributes, `{"$or":[{},{"a":["x"]}]}`, "$or[0]", "at least one key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile([]byte(tc.policy), tc.scope)
			if err == nil {
				t.Fatalf("Compile(%.200s) = %v, want error", tc.policy, p)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if fe.Key != tc.key {
				t.Errorf("Key = %q, want %q (%v)", fe.Key, tc.key, err)
			}
			if !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("Message = %q, want it to contain %q", fe.Message, tc.msg)
			}
			if tc.key != "" && !strings.Contains(err.Error(), strconv.Quote(tc.key)) {
				t.Errorf("Error() = %q does not name the key", err.Error())
			}
		})
	}
}

func TestNilPolicyMatchesEverything(t *testing.T) {
	var p *Policy
	if !p.MatchAttributes(nil) || !p.MatchBody(nil) || !p.Match(nil, nil) {
		t.Error("nil policy must match")
	}
}

func TestDecimals(t *testing.T) {
	for lit, want := range map[string]int{
		"1": 0, "1.5": 1, "0.00001": 5, "0.000010": 5, "1e-5": 5, "1.5e-5": 6, "123.456e2": 1, "1e5": 0, "1.0": 0,
	} {
		if got := decimals(lit); got != want {
			t.Errorf("decimals(%s) = %d, want %d", lit, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := mustCompile(t, `{"status":["failed"],"$or":[{"m":[{"prefix":"user"}]},{"n":[{"numeric":[">",1]}]}]}`, ScopeAttributes)
	b := mustCompile(t, `{"data":{"status":["failed"]}}`, ScopeBody)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if !p.MatchAttributes(map[string]string{"status": "failed", "n": "2"}) {
					t.Error("attrs")
					return
				}
				if !b.Match(nil, []byte(`{"data":{"status":"failed"}}`)) {
					t.Error("body")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMatchAttributesDoesNotAllocate(t *testing.T) {
	p := mustCompile(t, `{"status":["failed","error"],"method":[{"prefix":"user"}],"price":[{"numeric":[">",0.5]}],"tags":[{"anything-but":["x"]}],"ip":[{"cidr":"10.0.0.0/8"}]}`, ScopeAttributes)
	attrs := map[string]string{"status": "failed", "method": "user.create", "price": "0.75", "tags": `["x","y"]`, "ip": "10.1.2.3"}
	if !p.MatchAttributes(attrs) {
		t.Fatal("want match")
	}
	if n := testing.AllocsPerRun(100, func() { p.MatchAttributes(attrs) }); n != 0 {
		t.Errorf("MatchAttributes allocates %v times", n)
	}
	b := mustCompile(t, `{"data":{"status":["failed"],"items":{"price":[{"numeric":[">",1]}]}}}`, ScopeBody)
	var data any
	if err := json.Unmarshal([]byte(`{"data":{"status":"failed","items":[{"price":0.5},{"price":2}]}}`), &data); err != nil {
		t.Fatal(err)
	}
	if !b.MatchBody(data) {
		t.Fatal("want body match")
	}
	if n := testing.AllocsPerRun(100, func() { b.MatchBody(data) }); n != 0 {
		t.Errorf("MatchBody allocates %v times", n)
	}
}

func TestOrWithOperatorKeysIsAnOrdinaryKey(t *testing.T) {
	// SNS: "$or" whose objects have operator names as keys is not an OR but
	// an attribute called "$or" with those match values.
	p := mustCompile(t, `{"$or":[{"prefix":"abc"},{"suffix":"x"}]}`, ScopeAttributes)
	if !p.MatchAttributes(map[string]string{"$or": "abcd"}) || !p.MatchAttributes(map[string]string{"$or": "yx"}) {
		t.Error("want match on the attribute named $or")
	}
	if p.MatchAttributes(map[string]string{"prefix": "abc"}) {
		t.Error("must not be an OR")
	}
}
