package dest

import "strings"

const (
	ellipsis = "…"
	noteTail = "… (truncated)"
)

// RuneWidth says how many units of a length limit one rune takes.
type RuneWidth func(r rune) int

// CodePoint counts every rune as one unit, as Discord counts lengths.
func CodePoint(rune) int { return 1 }

// UTF16Unit counts a rune in UTF-16 code units: two for a rune outside the
// Basic Multilingual Plane, else one.
func UTF16Unit(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// TextLen is the length of s in the units width counts.
func TextLen(s string, width RuneWidth) int {
	k := 0
	for _, r := range s {
		k += width(r)
	}
	return k
}

// Truncate cuts s to at most limit units as width counts them, visibly: the
// kept text ends in "… (truncated)" when the limit leaves room for it (at
// least four times its length), else in "…". trimKept, when not nil, may
// shorten the kept text further before the tail is added (so as not to
// split markup such as an entity). A text within the limit comes back
// unchanged.
func Truncate(s string, limit int, width RuneWidth, trimKept func(string) string) string {
	if TextLen(s, width) <= limit {
		return s
	}
	if limit <= 0 {
		return ""
	}
	tail := noteTail
	if limit < 4*TextLen(noteTail, width) {
		tail = ellipsis
	}
	keep := limit - TextLen(tail, width)
	if keep < 0 {
		return ""
	}
	cut, used := 0, 0
	for i, r := range s {
		w := width(r)
		if used+w > keep {
			cut = i
			break
		}
		used += w
	}
	kept := s[:cut]
	if trimKept != nil {
		kept = trimKept(kept)
	}
	return strings.TrimRight(kept, " \t\n") + tail
}

// OneLine puts s on one line: runs of white space become one space and the
// ends are trimmed.
func OneLine(s string) string {
	return strings.TrimSpace(strings.Join(strings.Fields(s), " "))
}
