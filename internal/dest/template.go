package dest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"carrier/internal/store"
)

// TemplateOutputLimit bounds what one template may produce (bytes) before
// it is cut; it is far above every chat service's limits.
const TemplateOutputLimit = 64 << 10

// templateFuncs are the functions settings templates may call.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"join": func(sep string, v any) string {
		switch l := v.(type) {
		case []string:
			return strings.Join(l, sep)
		case []any:
			parts := make([]string, len(l))
			for i, x := range l {
				parts[i] = fmt.Sprint(x)
			}
			return strings.Join(parts, sep)
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	},
	"default": func(def, v any) any {
		switch x := v.(type) {
		case nil:
			return def
		case string:
			if x == "" {
				return def
			}
		}
		return v
	},
}

// ParseTemplate compiles the template src of the setting field (such as
// "title" or "fields[2].value") with the functions json, upper, lower,
// trim, join and default. A template that does not compile is a
// *FieldError for field.
func ParseTemplate(field, src string) (*template.Template, error) {
	t, err := template.New(field).Funcs(templateFuncs).Parse(src)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		return nil, &FieldError{Field: field, Message: "is not a valid template: " + msg}
	}
	return t, nil
}

// ParseTemplateOr is ParseTemplate of src, or of fallback when src is
// blank.
func ParseTemplateOr(field, src, fallback string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		src = fallback
	}
	return ParseTemplate(field, src)
}

// CompiledField is a configured Field with its templates compiled.
type CompiledField struct {
	Name, Value *template.Template
	Inline      bool
}

// CompileFields compiles the name and value templates of fields, which are
// the "fields" setting; an error is a *FieldError naming the template, such
// as "fields[2].value".
func CompileFields(fields []Field) ([]CompiledField, error) {
	var out []CompiledField
	for i, f := range fields {
		path := fmt.Sprintf("fields[%d]", i)
		name, err := ParseTemplate(path+".name", f.Name)
		if err != nil {
			return nil, err
		}
		value, err := ParseTemplate(path+".value", f.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, CompiledField{Name: name, Value: value, Inline: f.Inline})
	}
	return out, nil
}

var errOutputLimit = errors.New("output limit reached")

// limitWriter keeps at most limit bytes.
type limitWriter struct {
	buf   bytes.Buffer
	limit int
}

// Write keeps what fits under the limit and reports errOutputLimit past it.
func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		return max(room, 0), errOutputLimit
	}
	return w.buf.Write(p)
}

// ExecuteTemplate runs t over data and returns what it wrote, cut at
// TemplateOutputLimit bytes, made valid UTF-8 and with "<no value>" (a
// missing key) removed; a nil t renders as "". It never fails: a run-time
// error is appended as visible text, " (template error: …)", its message
// passed through quote first when quote is not nil.
func ExecuteTemplate(t *template.Template, data any, quote func(string) string) string {
	if t == nil {
		return ""
	}
	w := &limitWriter{limit: TemplateOutputLimit}
	err := t.Execute(w, data)
	out := strings.ToValidUTF8(w.buf.String(), "\uFFFD")
	out = strings.ReplaceAll(out, "<no value>", "")
	if err != nil && !errors.Is(err, errOutputLimit) {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		if quote != nil {
			msg = quote(msg)
		}
		return strings.TrimSpace(out + " (template error: " + msg + ")")
	}
	return out
}

// --- the event ---

// DecodeData decodes an event's JSON data for templates, keeping numbers as
// json.Number. Empty data is nil; data that is not JSON is its text.
func DecodeData(raw json.RawMessage) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	return v
}

// TemplateData is what templates see of an event: {{.type}}, {{.subject}},
// {{.id}}, {{.time}} (RFC 3339, UTC), {{.data}} (data, the event's data as
// DecodeData decodes it), {{.attributes}} (a copy) and {{.delivery_id}}.
func TemplateData(e store.Event, deliveryID string, data any) map[string]any {
	attrs := make(map[string]string, len(e.Attributes))
	for k, v := range e.Attributes {
		attrs[k] = v
	}
	return map[string]any{
		"type":        e.Type,
		"subject":     e.Subject,
		"id":          e.ID,
		"time":        e.CreatedAt.UTC().Format(time.RFC3339),
		"data":        data,
		"attributes":  attrs,
		"delivery_id": deliveryID,
	}
}

// ObjectMembers returns a JSON object's members in document order (a
// repeated key keeps its first position and last value, as decoding would);
// ok is false when raw is not an object.
func ObjectMembers(raw json.RawMessage) (keys []string, vals map[string]json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	vals = map[string]json.RawMessage{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	return keys, vals, true
}

// ValueText shows a JSON value: a string as itself, anything else compact.
func ValueText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

// EncodeJSON encodes a message body as JSON without HTML escaping (chat
// services show "<", ">" and "&" as they are) and without a trailing
// newline.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
