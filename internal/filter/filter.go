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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
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

// ---------------------------------------------------------------------------
// Compiled form

// group is a conjunction: every leaf matches and, for every "$or", at least
// one alternative matches. Nested objects are flattened into leaves with
// multi-segment paths, so a group never nests except through "$or".
type group struct {
	leaves []*leaf
	ors    [][]*group
}

func (g *group) matchAttrs(attrs map[string]string) bool {
	for _, l := range g.leaves {
		if !l.matchAttrs(attrs) {
			return false
		}
	}
	for _, alts := range g.ors {
		ok := false
		for _, a := range alts {
			if a.matchAttrs(attrs) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (g *group) matchBody(obj map[string]any) bool {
	for _, l := range g.leaves {
		if !l.matchBody(obj) {
			return false
		}
	}
	for _, alts := range g.ors {
		ok := false
		for _, a := range alts {
			if a.matchBody(obj) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// leaf holds the compiled match values of one key.
type leaf struct {
	path []string // one segment in attributes scope

	strs     []string            // exact strings (few)
	strSet   map[string]struct{} // exact strings (many)
	nums     []float64           // exact numbers
	prefixes []string
	suffixes []string
	folds    []string // equals-ignore-case
	ranges   []numRange
	notIn    []anythingBut
	cidrs    []netip.Prefix

	matchNull, matchTrue, matchFalse bool
	existsTrue, existsFalse          bool

	needNum bool // some matcher compares numbers (attributes: parse string values)
}

type numRange struct {
	lo, hi         float64
	loIncl, hiIncl bool
}

func (r *numRange) contains(f float64) bool {
	if f < r.lo || (f == r.lo && !r.loIncl) {
		return false
	}
	if f > r.hi || (f == r.hi && !r.hiIncl) {
		return false
	}
	return true
}

type anythingBut struct {
	strs   []string
	nums   []float64
	prefix string
	suffix string
	kind   uint8 // abList, abPrefix, abSuffix
}

const (
	abList uint8 = iota
	abPrefix
	abSuffix
)

// allows reports whether a present, non-null value passes the anything-but.
func (a *anythingBut) allows(v *value) bool {
	switch a.kind {
	case abPrefix:
		return v.kind != vString || !strings.HasPrefix(v.str, a.prefix)
	case abSuffix:
		return v.kind != vString || !strings.HasSuffix(v.str, a.suffix)
	}
	if v.kind == vString {
		for _, s := range a.strs {
			if s == v.str {
				return false
			}
		}
	}
	if v.isNum {
		for _, n := range a.nums {
			if n == v.num {
				return false
			}
		}
	}
	return true
}

// value is one scalar found in the event.
type value struct {
	kind  uint8
	isNum bool // num holds the value's number (a JSON number, or a numeric attribute string)
	b     bool
	num   float64
	str   string
}

const (
	vString uint8 = iota
	vNumber
	vBool
	vNull
)

// present reports whether v counts for {"exists": true}.
func (v *value) present() bool {
	return v.kind != vNull && !(v.kind == vString && v.str == "")
}

// test reports whether v satisfies a non-exists matcher of l, or exists:true.
// It records in found whether a present value was seen.
func (l *leaf) test(v *value, found *bool) bool {
	if v.present() {
		*found = true
		if l.existsTrue {
			return true
		}
	}
	switch v.kind {
	case vNull:
		return l.matchNull
	case vBool:
		if v.b && l.matchTrue || !v.b && l.matchFalse {
			return true
		}
	case vString:
		s := v.str
		if l.strSet != nil {
			if _, ok := l.strSet[s]; ok {
				return true
			}
		}
		for _, x := range l.strs {
			if x == s {
				return true
			}
		}
		for _, x := range l.prefixes {
			if strings.HasPrefix(s, x) {
				return true
			}
		}
		for _, x := range l.suffixes {
			if strings.HasSuffix(s, x) {
				return true
			}
		}
		for _, x := range l.folds {
			if strings.EqualFold(s, x) {
				return true
			}
		}
		if len(l.cidrs) > 0 && maybeIP(s) {
			if a, err := netip.ParseAddr(s); err == nil {
				a = a.Unmap()
				for _, c := range l.cidrs {
					if c.Contains(a) {
						return true
					}
				}
			}
		}
	}
	if v.isNum {
		for _, n := range l.nums {
			if n == v.num {
				return true
			}
		}
		for i := range l.ranges {
			if l.ranges[i].contains(v.num) {
				return true
			}
		}
	}
	for i := range l.notIn {
		if l.notIn[i].allows(v) {
			return true
		}
	}
	return false
}

// matchAttrs evaluates the leaf against attributes.
func (l *leaf) matchAttrs(attrs map[string]string) bool {
	nonEmpty := len(attrs) > 0
	if len(l.path) != 1 {
		return l.existsFalse && nonEmpty
	}
	s, ok := attrs[l.path[0]]
	if !ok {
		return l.existsFalse && nonEmpty
	}
	found := false
	if isStringArray(s) {
		it := arrayIter{s: s}
		it.open()
		for {
			raw, kind, ok, _ := it.next()
			if !ok {
				break
			}
			var v value
			switch kind {
			case 's':
				v.str = raw[1 : len(raw)-1]
			case 'e':
				var u string
				if json.Unmarshal([]byte(raw), &u) != nil {
					continue
				}
				v.str = u
			case 'n':
				v.str = raw
			case 't':
				v.str = "true"
			case 'f':
				v.str = "false"
			default: // null
				v.kind = vNull
			}
			if v.kind == vString && l.needNum {
				v.num, v.isNum = parseNumber(v.str)
			}
			if l.test(&v, &found) {
				return true
			}
		}
	} else {
		v := value{str: s}
		if l.needNum {
			v.num, v.isNum = parseNumber(s)
		}
		if l.test(&v, &found) {
			return true
		}
	}
	return l.existsFalse && !found && nonEmpty
}

// matchBody evaluates the leaf against a decoded JSON object.
func (l *leaf) matchBody(obj map[string]any) bool {
	found := false
	if c, ok := obj[l.path[0]]; ok && l.scan(c, 1, &found) {
		return true
	}
	return l.existsFalse && !found && len(obj) > 0
}

// scan walks v, the value at path[:i], to the leaf values at l.path; arrays
// on the way and at the end match when any element matches.
func (l *leaf) scan(v any, i int, found *bool) bool {
	if i < len(l.path) {
		switch t := v.(type) {
		case map[string]any:
			c, ok := t[l.path[i]]
			return ok && l.scan(c, i+1, found)
		case []any:
			for _, e := range t {
				if l.scan(e, i, found) {
					return true
				}
			}
		}
		return false
	}
	var val value
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if l.scan(e, i, found) {
				return true
			}
		}
		return false
	case nil:
		val.kind = vNull
	case string:
		val.str = t
	case float64:
		val.kind, val.num, val.isNum = vNumber, t, true
	case bool:
		val.kind, val.b = vBool, t
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return false
		}
		val.kind, val.num, val.isNum = vNumber, f, true
	case int:
		val.kind, val.num, val.isNum = vNumber, float64(t), true
	case int64:
		val.kind, val.num, val.isNum = vNumber, float64(t), true
	default: // objects are not leaves; other types are not JSON
		return false
	}
	return l.test(&val, found)
}

// ---------------------------------------------------------------------------
// Compiler

var operators = map[string]bool{
	"prefix": true, "suffix": true, "equals-ignore-case": true, "anything-but": true,
	"numeric": true, "exists": true, "cidr": true, "wildcard": true,
}

type compiler struct {
	body bool
	keys map[string]bool // distinct leaf paths, for MaxKeys
}

func joinKey(loc, k string) string {
	if loc == "" {
		return k
	}
	return loc + "." + k
}

// object compiles the members of o into g and returns the object's
// combination count. path is the data path of o; loc its location in the
// policy for errors; depth its nesting level (1 at the top). The combination
// count of the whole policy is at least a*x+off once this object's partial
// product reaches x; it is checked after every leaf so the error names the key
// that crossed the limit.
func (c *compiler) object(o *jv, path []string, loc string, depth int, a, off int64, g *group) (int64, error) {
	prod := int64(1)
	for i, k := range o.keys {
		v := o.vals[i]
		kloc := joinKey(loc, k)
		if k == "$or" && isOr(v) {
			var sum int64
			alts := make([]*group, 0, len(v.vals))
			for j, e := range v.vals {
				bloc := fmt.Sprintf("%s[%d]", kloc, j)
				if len(e.keys) == 0 {
					return 0, errf(bloc, "an $or alternative must have at least one key")
				}
				alt := &group{}
				n, err := c.object(e, path, bloc, depth, a*prod, off+a*prod*sum, alt)
				if err != nil {
					return 0, err
				}
				sum += n
				alts = append(alts, alt)
			}
			g.ors = append(g.ors, alts)
			prod *= sum
			continue
		}
		switch v.kind {
		case jObject:
			if !c.body {
				return 0, errf(kloc, "nested objects are only allowed in body scope")
			}
			if len(v.keys) == 0 {
				return 0, errf(kloc, "nested object must have at least one key")
			}
			sub := append(path[:len(path):len(path)], k)
			n, err := c.object(v, sub, kloc, depth+1, a*prod, off, g)
			if err != nil {
				return 0, err
			}
			prod *= n
		case jArray:
			if k == "$or" && hasPolicyObject(v) {
				return 0, errf(kloc, "$or must be an array of at least 2 objects whose keys are not operator names")
			}
			sub := append(path[:len(path):len(path)], k)
			l, err := c.leaf(v, kloc)
			if err != nil {
				return 0, err
			}
			l.path = sub
			id := strings.Join(sub, "\x00")
			if !c.keys[id] {
				if len(c.keys) >= MaxKeys {
					return 0, errf(kloc, "policy has more than %d keys", MaxKeys)
				}
				c.keys[id] = true
			}
			prod *= int64(depth) * int64(len(v.vals))
			if total := a*prod + off; total > MaxCombinations {
				return 0, errf(kloc, "policy is too complex: more than %d combinations", MaxCombinations)
			}
			g.leaves = append(g.leaves, l)
		default:
			if c.body {
				return 0, errf(kloc, "value must be an array of match values or a nested object, not %s", v.kindName())
			}
			return 0, errf(kloc, "value must be an array of match values, not %s", v.kindName())
		}
	}
	return prod, nil
}

// isOr reports whether v makes "$or" an OR, by SNS's rules: an array of at
// least two objects, none of which has an operator name as a key.
func isOr(v *jv) bool {
	if v.kind != jArray || len(v.vals) < 2 {
		return false
	}
	for _, e := range v.vals {
		if e.kind != jObject {
			return false
		}
		for _, k := range e.keys {
			if operators[k] {
				return false
			}
		}
	}
	return true
}

// hasPolicyObject reports whether an array holds an object with a key that
// is not an operator: an attempted but malformed "$or".
func hasPolicyObject(v *jv) bool {
	for _, e := range v.vals {
		if e.kind != jObject {
			continue
		}
		for _, k := range e.keys {
			if !operators[k] {
				return true
			}
		}
	}
	return false
}

// leaf compiles one key's array of match values.
func (c *compiler) leaf(arr *jv, key string) (*leaf, error) {
	if len(arr.vals) == 0 {
		return nil, errf(key, "value list must not be empty")
	}
	l := &leaf{}
	for _, e := range arr.vals {
		switch e.kind {
		case jString:
			l.strs = append(l.strs, e.str)
		case jNumber:
			f, err := strconv.ParseFloat(e.str, 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, errf(key, "number %s is out of range", e.str)
			}
			l.nums = append(l.nums, f)
			l.needNum = true
		case jBool:
			switch {
			case !c.body:
				l.strs = append(l.strs, strconv.FormatBool(e.b))
			case e.b:
				l.matchTrue = true
			default:
				l.matchFalse = true
			}
		case jNull:
			if !c.body {
				return nil, errf(key, "null is only allowed in body scope (attribute values are never null)")
			}
			l.matchNull = true
		case jArray:
			return nil, errf(key, "a value list must not contain arrays")
		case jObject:
			if err := c.operator(l, e, key); err != nil {
				return nil, err
			}
		}
	}
	if len(l.strs) > 8 {
		l.strSet = make(map[string]struct{}, len(l.strs))
		for _, s := range l.strs {
			l.strSet[s] = struct{}{}
		}
		l.strs = nil
	}
	return l, nil
}

// operator compiles an operator object such as {"prefix": "x"} into l.
func (c *compiler) operator(l *leaf, o *jv, key string) error {
	if len(o.keys) != 1 {
		return errf(key, "an operator object must have exactly one key, not %d", len(o.keys))
	}
	op, v := o.keys[0], o.vals[0]
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		if v.kind != jString {
			return errf(key, "%s must be a string, not %s", op, v.kindName())
		}
		switch op {
		case "prefix":
			l.prefixes = append(l.prefixes, v.str)
		case "suffix":
			l.suffixes = append(l.suffixes, v.str)
		default:
			l.folds = append(l.folds, v.str)
		}
	case "anything-but":
		ab, err := compileAnythingBut(v, key)
		if err != nil {
			return err
		}
		if len(ab.nums) > 0 {
			l.needNum = true
		}
		l.notIn = append(l.notIn, ab)
	case "numeric":
		r, err := compileNumeric(v, key)
		if err != nil {
			return err
		}
		l.ranges = append(l.ranges, r)
		l.needNum = true
	case "exists":
		if v.kind != jBool {
			return errf(key, "exists must be true or false, not %s", v.kindName())
		}
		if v.b {
			l.existsTrue = true
		} else {
			l.existsFalse = true
		}
	case "cidr":
		if v.kind != jString {
			return errf(key, "cidr must be a string, not %s", v.kindName())
		}
		p, err := netip.ParsePrefix(v.str)
		if err != nil {
			return errf(key, "cidr %q is not an IP network such as 10.0.0.0/24", v.str)
		}
		l.cidrs = append(l.cidrs, p.Masked())
	default:
		return errf(key, "unsupported operator %q", op)
	}
	return nil
}

func compileAnythingBut(v *jv, key string) (anythingBut, error) {
	var ab anythingBut
	add := func(e *jv) error {
		switch e.kind {
		case jString:
			ab.strs = append(ab.strs, e.str)
		case jNumber:
			f, err := strconv.ParseFloat(e.str, 64)
			if err != nil || math.IsInf(f, 0) {
				return errf(key, "anything-but: number %s is out of range", e.str)
			}
			ab.nums = append(ab.nums, f)
		default:
			return errf(key, "anything-but values must be strings or numbers, not %s", e.kindName())
		}
		return nil
	}
	switch v.kind {
	case jString, jNumber:
		return ab, add(v)
	case jArray:
		if len(v.vals) == 0 {
			return ab, errf(key, "anything-but list must not be empty")
		}
		for _, e := range v.vals {
			if err := add(e); err != nil {
				return ab, err
			}
		}
		return ab, nil
	case jObject:
		if len(v.keys) != 1 || (v.keys[0] != "prefix" && v.keys[0] != "suffix") {
			return ab, errf(key, `anything-but object must be {"prefix": …} or {"suffix": …}`)
		}
		s := v.vals[0]
		if s.kind != jString || s.str == "" {
			return ab, errf(key, "anything-but %s must be a non-empty string", v.keys[0])
		}
		if v.keys[0] == "prefix" {
			ab.kind, ab.prefix = abPrefix, s.str
		} else {
			ab.kind, ab.suffix = abSuffix, s.str
		}
		return ab, nil
	}
	return ab, errf(key, "anything-but takes a string, a number, a list of them, or a prefix/suffix object, not %s", v.kindName())
}

func compileNumeric(v *jv, key string) (numRange, error) {
	r := numRange{lo: math.Inf(-1), hi: math.Inf(1)}
	if v.kind != jArray {
		return r, errf(key, "numeric must be an array such as [\">\", 0, \"<=\", 5], not %s", v.kindName())
	}
	n := len(v.vals)
	if n != 2 && n != 4 {
		return r, errf(key, "numeric takes one comparison or a lower and an upper bound (2 or 4 elements), not %d elements", n)
	}
	op1, x1, err := numericTerm(v.vals[0], v.vals[1], key)
	if err != nil {
		return r, err
	}
	if n == 2 {
		switch op1 {
		case "=":
			r.lo, r.hi, r.loIncl, r.hiIncl = x1, x1, true, true
		case "<":
			r.hi = x1
		case "<=":
			r.hi, r.hiIncl = x1, true
		case ">":
			r.lo = x1
		case ">=":
			r.lo, r.loIncl = x1, true
		}
		return r, nil
	}
	if op1 != ">" && op1 != ">=" {
		return r, errf(key, "numeric range must start with the lower bound (> or >=), not %q", op1)
	}
	op2, x2, err := numericTerm(v.vals[2], v.vals[3], key)
	if err != nil {
		return r, err
	}
	if op2 != "<" && op2 != "<=" {
		return r, errf(key, "numeric range must end with the upper bound (< or <=), not %q", op2)
	}
	if x1 >= x2 {
		return r, errf(key, "numeric range lower bound %v must be less than upper bound %v", x1, x2)
	}
	r.lo, r.loIncl = x1, op1 == ">="
	r.hi, r.hiIncl = x2, op2 == "<="
	return r, nil
}

func numericTerm(opv, numv *jv, key string) (string, float64, error) {
	if opv.kind != jString {
		return "", 0, errf(key, "numeric operator must be a string, not %s", opv.kindName())
	}
	switch opv.str {
	case "=", "<", "<=", ">", ">=":
	default:
		return "", 0, errf(key, "unknown numeric operator %q (use =, <, <=, >, >=)", opv.str)
	}
	if numv.kind != jNumber {
		return "", 0, errf(key, "numeric operand after %q must be a number, not %s", opv.str, numv.kindName())
	}
	f, err := strconv.ParseFloat(numv.str, 64)
	if err != nil || math.Abs(f) > MaxNumeric {
		return "", 0, errf(key, "numeric operand %s is outside -1e9..1e9", numv.str)
	}
	if decimals(numv.str) > MaxDecimals {
		return "", 0, errf(key, "numeric operand %s has more than %d decimal places", numv.str, MaxDecimals)
	}
	return opv.str, f, nil
}

// decimals returns the number of decimal places of a JSON number literal.
func decimals(lit string) int {
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		mant = lit[:i]
		e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil { // absurd exponent
			if strings.HasPrefix(lit[i+1:], "-") {
				return math.MaxInt32
			}
			return 0
		}
		exp = e
	}
	frac := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		frac = len(strings.TrimRight(mant[i+1:], "0"))
	}
	d := frac - exp
	if d < 0 {
		return 0
	}
	return d
}

// ---------------------------------------------------------------------------
// Policy JSON, parsed keeping key order (for deterministic errors) and
// rejecting duplicate keys.

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

// ---------------------------------------------------------------------------
// Attribute values

// parseNumber parses s if it is a JSON number literal, without allocating.
func parseNumber(s string) (float64, bool) {
	if !isJSONNumber(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isJSONNumber(s string) bool {
	i, n := 0, len(s)
	if i < n && s[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		return false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		for i < n && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < n && s[i] == '.' {
		i++
		if i >= n || !isDigit(s[i]) {
			return false
		}
		for i < n && isDigit(s[i]) {
			i++
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= n || !isDigit(s[i]) {
			return false
		}
		for i < n && isDigit(s[i]) {
			i++
		}
	}
	return i == n
}

// maybeIP is a cheap filter before netip.ParseAddr, whose errors allocate.
func maybeIP(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && c != '.' && c != ':' && !('a' <= c && c <= 'f') && !('A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isStringArray reports whether an attribute value is an SNS String.Array: a
// JSON array whose elements are strings, numbers, true, false or null.
func isStringArray(s string) bool {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] != '[' {
		return false
	}
	it := arrayIter{s: s}
	if !it.open() {
		return false
	}
	for {
		_, _, ok, bad := it.next()
		if bad {
			return false
		}
		if !ok {
			break
		}
	}
	for it.i < len(s) && isSpace(s[it.i]) {
		it.i++
	}
	return it.i == len(s)
}

// arrayIter walks the elements of a flat JSON array without allocating.
type arrayIter struct {
	s     string
	i     int
	first bool
	done  bool
}

func (it *arrayIter) skip() {
	for it.i < len(it.s) && isSpace(it.s[it.i]) {
		it.i++
	}
}

func (it *arrayIter) open() bool {
	it.skip()
	if it.i >= len(it.s) || it.s[it.i] != '[' {
		return false
	}
	it.i++
	it.first = true
	return true
}

// next returns the next element's raw text and kind: 's' string without
// escapes, 'e' string with escapes, 'n' number, 't' true, 'f' false, 'z'
// null. ok is false at the end of the array; bad reports malformed input.
func (it *arrayIter) next() (raw string, kind byte, ok, bad bool) {
	if it.done {
		return "", 0, false, false
	}
	s := it.s
	it.skip()
	if it.i >= len(s) {
		return "", 0, false, true
	}
	if s[it.i] == ']' {
		it.i++
		it.done = true
		return "", 0, false, false
	}
	if !it.first {
		if s[it.i] != ',' {
			return "", 0, false, true
		}
		it.i++
		it.skip()
		if it.i >= len(s) || s[it.i] == ']' {
			return "", 0, false, true
		}
	}
	it.first = false
	start := it.i
	switch c := s[start]; {
	case c == '"':
		kind = 's'
		j := start + 1
		for {
			if j >= len(s) {
				return "", 0, false, true
			}
			c := s[j]
			if c == '"' {
				break
			}
			if c < 0x20 {
				return "", 0, false, true
			}
			if c == '\\' {
				kind = 'e'
				if j+1 >= len(s) {
					return "", 0, false, true
				}
				switch s[j+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					j += 2
				case 'u':
					if j+6 > len(s) {
						return "", 0, false, true
					}
					for k := j + 2; k < j+6; k++ {
						if h := s[k]; !isDigit(h) && !('a' <= h && h <= 'f') && !('A' <= h && h <= 'F') {
							return "", 0, false, true
						}
					}
					j += 6
				default:
					return "", 0, false, true
				}
				continue
			}
			j++
		}
		it.i = j + 1
		return s[start:it.i], kind, true, false
	case c == '-' || isDigit(c):
		j := start
		for j < len(s) && (isDigit(s[j]) || s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
			j++
		}
		if !isJSONNumber(s[start:j]) {
			return "", 0, false, true
		}
		it.i = j
		return s[start:j], 'n', true, false
	case strings.HasPrefix(s[start:], "true"):
		it.i += 4
		return "true", 't', true, false
	case strings.HasPrefix(s[start:], "false"):
		it.i += 5
		return "false", 'f', true, false
	case strings.HasPrefix(s[start:], "null"):
		it.i += 4
		return "null", 'z', true, false
	}
	return "", 0, false, true
}
