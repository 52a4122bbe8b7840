package filter

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
)

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
