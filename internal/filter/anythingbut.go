package filter

import (
	"math"
	"strconv"
	"strings"
)

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
