package filter

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

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
