package filter

import (
	"math"
	"strconv"
	"strings"
)

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
