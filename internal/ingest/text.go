package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text that Carrier stores must be text both engines keep the same way.
// PostgreSQL refuses a NUL character (U+0000) and invalid UTF-8 in a text
// column, and SQLite keeps both; so without these checks one engine stores
// what the other answers with an error, and on PostgreSQL that error used to
// fail a whole group commit. JSON documents get the same rule for the
// strings inside them, \u0000 escapes included: JSON is stored as text
// today (where PostgreSQL would keep the escape), but it is delivered to
// receivers and queue consumers that commonly keep it as jsonb, which refuses
// it, and one rule for the whole request body is simpler to state and check.

// Messages of the text checks.
const (
	msgNUL  = "must not contain the NUL character (U+0000)"
	msgUTF8 = "must be valid UTF-8"
)

// CheckText returns a *ValidationError naming field when s holds a NUL
// character or invalid UTF-8.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return &ValidationError{field, msgUTF8}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return &ValidationError{field, msgNUL}
	}
	return nil
}

// CheckTexts checks the keys and values of m, naming field.<key> at fault.
func CheckTexts(field string, m map[string]string) error {
	for k, v := range m {
		if err := CheckText(field+"."+printable(k), k); err != nil {
			return err
		}
		if err := CheckText(field+"."+printable(k), v); err != nil {
			return err
		}
	}
	return nil
}

// CheckJSON checks every string of the JSON document raw, object keys
// included, and returns a *ValidationError naming the path of the first one
// with a NUL character or invalid UTF-8: field.key.sub[2] (just key.sub[2]
// when field is "", for a whole request body). It does not judge the syntax:
// a malformed document is left to the decoder, which explains it better.
func CheckJSON(field string, raw []byte) error {
	bad := -1
	if !utf8.Valid(raw) {
		bad = firstInvalidUTF8(raw)
	} else if !bytes.Contains(raw, []byte(`\u0000`)) && bytes.IndexByte(raw, 0) < 0 {
		return nil // the common case, without decoding anything
	}
	path, msg := findBadString(raw, int64(bad))
	if msg == "" {
		if bad < 0 {
			return nil // only an escaped backslash before "u0000": plain text
		}
		path, msg = "", msgUTF8
	}
	switch {
	case field == "" && path == "":
		path = "body"
	case field != "" && path == "":
		path = field
	case field != "" && !strings.HasPrefix(path, "["):
		path = field + "." + path
	case field != "":
		path = field + path
	}
	return &ValidationError{path, msg}
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// frame is one open object or array while findBadString walks a document.
type frame struct {
	object  bool
	wantKey bool
	key     string
	index   int
}

// findBadString walks raw and returns the path of the first string that
// contains a NUL character or, when bad >= 0, spans the invalid byte at
// offset bad (the decoder replaces invalid bytes, so they are found by
// offset). It returns an empty message when there is none or raw is not JSON.
func findBadString(raw []byte, bad int64) (path, msg string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []frame
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil { // the end, or not JSON
			return "", ""
		}
		end := dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.wantKey
		if s, ok := tok.(string); ok {
			here := pathOf(stack, isKey, s)
			switch {
			case bad >= 0 && start <= bad && bad < end:
				return here, msgUTF8
			case strings.IndexByte(s, 0) >= 0:
				return here, msgNUL
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				advance(&stack[len(stack)-1])
			}
			continue
		}
		if isKey {
			top.key, top.wantKey = tok.(string), false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			continue
		}
		if top != nil {
			advance(top)
		}
	}
}

// advance moves a frame past a complete value.
func advance(f *frame) {
	if f.object {
		f.wantKey = true
	} else {
		f.index++
	}
}

// pathOf names the value at the top of stack (or the key being read, isKey).
func pathOf(stack []frame, isKey bool, key string) string {
	var b strings.Builder
	for i, f := range stack {
		last := i == len(stack)-1
		switch {
		case f.object && last && isKey:
			writeKey(&b, key)
		case f.object:
			writeKey(&b, f.key)
		default:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return b.String()
}

func writeKey(b *strings.Builder, k string) {
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(printable(k))
}

// printable makes a key safe to show in a field name: the key at fault may
// itself hold the NUL or the invalid bytes.
func printable(k string) string {
	k = strings.ToValidUTF8(k, "\uFFFD")
	return strings.ReplaceAll(k, "\x00", `\u0000`)
}

// Storable turns arbitrary bytes into text both engines keep: invalid UTF-8
// and NUL characters become U+FFFD. It is for keeping a record visible (a
// dead letter), never for accepting input, which is refused instead.
func Storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
