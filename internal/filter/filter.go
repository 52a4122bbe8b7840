// Package filter compiles and evaluates subscription filter policies with the
// syntax and semantics of Amazon SNS subscription filter policies.
//
// A policy is a JSON object. Each key names a message attribute (attributes
// scope) or a property of the JSON event data (body scope, where objects nest
// to reach nested properties). Each key maps to an array of match values; a key
// matches when at least one of its values matches (OR), and a policy matches
// when every key matches (AND). "$or" expresses OR across keys at any level.
// The empty policy {} matches every event.
//
// Match values:
//
//	"text"                               exact string (case-sensitive)
//	5, 2.5                               exact number, compared numerically
//	true, false                          exact boolean (the strings "true"/"false" in attributes scope)
//	null                                 an explicit JSON null (body scope only)
//	{"prefix": "p"}, {"suffix": "s"}     string prefix / suffix
//	{"equals-ignore-case": "x"}          case-insensitive string equality
//	{"anything-but": v}                  any present value except v, where v is a string, a number,
//	                                     a list of strings and numbers, {"prefix": p} or {"suffix": s}
//	{"numeric": ["=", 5]}                numeric comparison (=, <, <=, >, >=) or a range
//	{"numeric": [">", 0, "<=", 150]}     written lower bound first, upper bound second
//	{"exists": true|false}               key present with a non-null, non-empty value / absent
//	{"cidr": "10.0.0.0/24"}              IP address inside the network
//
// Evaluation follows SNS:
//
//   - A missing key matches only {"exists": false}; in particular anything-but
//     does not match a missing key (SNS documents combining it with
//     {"exists": false} for that).
//   - {"exists": false} never matches an empty message (no attributes, or an
//     empty JSON object), as SNS documents.
//   - {"exists": true} needs a value that is neither null nor empty (an empty
//     string or an empty array does not count).
//   - Arrays in the data, and String.Array attribute values (an attribute
//     whose value is a JSON array such as ["a","b"]), match when any element
//     matches. That includes anything-but: ["rugby","baseball"] matches
//     anything-but ["rugby"].
//   - In body scope types are strict: the number 5 does not match the string
//     "5" and numeric operators only match JSON numbers. In attributes scope
//     every value is a string, and a value that parses as a JSON number also
//     matches numbers and numeric operators (like an SNS Number attribute).
//
// Compile enforces the SNS limits: at most 5 keys (distinct leaf keys, counted
// through nested objects and "$or" alternatives), at most 150 combinations
// (the product, over leaf keys, of the number of values times the key's
// nesting depth, summed over "$or" alternatives), at most 256 KiB of JSON,
// numeric operands within ±1e9 with at most 5 decimal places. "$or" is an OR
// only when, as in SNS, its value is an array of at least two objects whose
// keys are not operator names; otherwise it is an ordinary key.
package filter

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ScopeAttributes evaluates a policy against an event's attributes: a flat
// map of string values, like SNS's MessageAttributes scope.
const ScopeAttributes = "attributes"

// ScopeBody evaluates a policy against the event's JSON data, like SNS's
// MessageBody scope; policies may nest objects to reach nested properties.
const ScopeBody = "body"

// Limits, as in SNS.
const (
	// MaxPolicySize is the largest accepted policy, in bytes.
	MaxPolicySize = 256 * 1024
	// MaxKeys is the largest number of distinct leaf keys in a policy.
	MaxKeys = 5
	// MaxCombinations is the largest accepted policy complexity.
	MaxCombinations = 150
	// MaxNumeric is the largest absolute value of a numeric operand.
	MaxNumeric = 1e9
	// MaxDecimals is the largest number of decimal places of a numeric operand.
	MaxDecimals = 5

	maxDepth = 160 // JSON nesting; deeper leaves would exceed MaxCombinations anyway
)

// Error is a policy validation error. Key names the offending key as a dotted
// path ("data.status", "$or[1].price", with 0-based "$or" indexes); it is
// empty for errors about the policy as a whole (size, JSON syntax, scope).
type Error struct {
	Key     string
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Key == "" {
		return "filter policy: " + e.Message
	}
	return fmt.Sprintf("filter policy: key %q: %s", e.Key, e.Message)
}

func errf(key, format string, args ...any) *Error {
	return &Error{Key: key, Message: fmt.Sprintf(format, args...)}
}

// Policy is a compiled filter policy. It is immutable and safe for concurrent
// use. A nil *Policy matches every event.
type Policy struct {
	scope string
	root  *group // nil: the empty policy, which matches everything
}

// Scope returns the scope the policy was compiled for.
func (p *Policy) Scope() string {
	if p == nil {
		return ""
	}
	return p.scope
}

// Compile validates and compiles raw, a JSON object, for scope
// (ScopeAttributes or ScopeBody). Errors are *Error values.
func Compile(raw []byte, scope string) (*Policy, error) {
	if scope != ScopeAttributes && scope != ScopeBody {
		return nil, errf("", "scope must be %q or %q, not %q", ScopeAttributes, ScopeBody, scope)
	}
	if len(raw) > MaxPolicySize {
		return nil, errf("", "policy is %d bytes, more than the limit of %d", len(raw), MaxPolicySize)
	}
	if !utf8.Valid(raw) {
		return nil, errf("", "policy is not valid UTF-8")
	}
	top, err := parseJSON(raw)
	if err != nil {
		return nil, err
	}
	if top.kind != jObject {
		return nil, errf("", "policy must be a JSON object")
	}
	c := compiler{body: scope == ScopeBody, keys: map[string]bool{}}
	root := &group{}
	if _, err := c.object(top, nil, "", 1, 1, 0, root); err != nil {
		return nil, err
	}
	p := &Policy{scope: scope}
	if len(root.leaves) > 0 || len(root.ors) > 0 {
		p.root = root
	}
	return p, nil
}

// MatchAttributes evaluates the policy against an event's attributes. Values
// are strings; a value that is a JSON array of strings, numbers, booleans and
// nulls (such as ["a","b"]) is an SNS String.Array and matches when any
// element matches; a value that parses as a JSON number also matches numbers
// and numeric operators. Nested (body-scope) keys never match attributes.
func (p *Policy) MatchAttributes(attrs map[string]string) bool {
	if p == nil || p.root == nil {
		return true
	}
	return p.root.matchAttrs(attrs)
}

// MatchBody evaluates the policy against event data decoded with
// encoding/json into an any (objects as map[string]any, arrays as []any,
// numbers as float64 or json.Number). Data that is not a JSON object matches
// only the empty policy.
func (p *Policy) MatchBody(data any) bool {
	if p == nil || p.root == nil {
		return true
	}
	obj, ok := data.(map[string]any)
	if !ok {
		return false
	}
	return p.root.matchBody(obj)
}

// Match evaluates the policy by its scope: against attrs in attributes scope,
// or against data, the event's raw JSON, in body scope. data is decoded only
// when a body-scope policy needs it; data that is not a valid JSON object
// matches only the empty policy.
func (p *Policy) Match(attrs map[string]string, data []byte) bool {
	if p == nil || p.root == nil {
		return true
	}
	if p.scope == ScopeAttributes {
		return p.root.matchAttrs(attrs)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return false
	}
	return p.MatchBody(v)
}
