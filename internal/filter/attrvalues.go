package filter

import (
	"strconv"
	"strings"
)

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
