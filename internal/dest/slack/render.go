package slack

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

// Slack's Block Kit limits (https://api.slack.com/reference/block-kit/blocks),
// counted here in UTF-16 code units.
const (
	MaxBlocks        = 50
	MaxHeaderText    = 150
	MaxSectionText   = 3000
	MaxSectionFields = 10
	MaxFieldText     = 2000
	MaxContextText   = 3000
	// MaxFallbackText bounds the top-level "text". Slack accepts up to
	// 40,000 characters but truncates notifications long before; 4,000 is
	// its recommended maximum.
	MaxFallbackText = 4000
)

// DefaultFieldCount is how many top-level data keys become fields when no
// fields are configured.
const DefaultFieldCount = 10

const (
	ellipsis            = "…"
	noteTail            = "… (truncated)"
	templateOutputLimit = 64 << 10
	maxFieldName        = 200 // of a field's text, before its value
	maxContextName      = 300 // of the subscription name in the context line
)

// Message is the JSON body posted to an incoming webhook.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is one Block Kit layout block (header, section or context).
type Block struct {
	Type     string       `json:"type"`
	Text     *TextObject  `json:"text,omitempty"`
	Fields   []TextObject `json:"fields,omitempty"`
	Elements []TextObject `json:"elements,omitempty"`
}

// TextObject is a Block Kit text object.
type TextObject struct {
	Type  string `json:"type"` // "plain_text" or "mrkdwn"
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Render builds the webhook body for an event: the exact bytes Send posts.
// It never fails: a template that fails at run time renders as a visible
// "(template error: …)" text, and every block limit is met by visible
// truncation. cfg should come from ParseConfig (a Config built by hand is
// compiled here).
func Render(cfg Config, e store.Event, deliveryID string) []byte {
	m := BuildMessage(cfg, e, deliveryID)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return []byte(`{"text":"(Carrier could not encode this event)"}`)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// BuildMessage is Render before encoding.
func BuildMessage(cfg Config, e store.Event, deliveryID string) Message {
	compileErr := cfg.compile()
	data := decodeData(e.Data)
	raw := map[string]any{
		"type":        e.Type,
		"subject":     e.Subject,
		"id":          e.ID,
		"time":        e.CreatedAt.UTC().Format(time.RFC3339),
		"data":        data,
		"attributes":  copyAttrs(e.Attributes),
		"delivery_id": deliveryID,
	}
	esc := escapeAll(raw).(map[string]any)

	var title, text string
	var fields []TextObject
	if compileErr != nil {
		title = e.Type
		text = escape(e.Type) + " (template error: " + escape(compileErr.Error()) + ")"
	} else {
		title = oneLine(execute(cfg.title, raw))
		text = strings.TrimSpace(execute(cfg.text, esc))
		if len(cfg.fields) > 0 {
			for _, f := range cfg.fields {
				v := strings.TrimSpace(execute(f.value, esc))
				if v == "" {
					continue
				}
				fields = append(fields, fieldText(execute(f.name, esc), v))
			}
		} else {
			fields = defaultFields(e.Data)
		}
	}

	var blocks []Block
	if title != "" {
		blocks = append(blocks, Block{Type: "header", Text: &TextObject{Type: "plain_text", Text: truncate(title, MaxHeaderText), Emoji: true}})
	}
	// Sections: the first holds the text and up to ten fields, each further
	// one ten more fields, as many as the block limit leaves room for.
	room := MaxBlocks - len(blocks) - 1 // the context block
	if text == "" && len(fields) == 0 {
		room = 0
	}
	capacity := room * MaxSectionFields
	if len(fields) > capacity {
		dropped := len(fields) - (capacity - 1)
		fields = append(fields[:capacity-1], TextObject{Type: "mrkdwn", Text: fmt.Sprintf("*(truncated)*\n%d more field(s) not shown", dropped)})
	}
	for i := 0; room > 0 && (i == 0 || i*MaxSectionFields < len(fields)); i++ {
		sec := Block{Type: "section"}
		if i == 0 && text != "" {
			sec.Text = &TextObject{Type: "mrkdwn", Text: truncate(text, MaxSectionText)}
		}
		lo := i * MaxSectionFields
		if lo < len(fields) {
			sec.Fields = fields[lo:min(lo+MaxSectionFields, len(fields))]
		}
		if sec.Text == nil && len(sec.Fields) == 0 {
			break
		}
		blocks = append(blocks, sec)
	}
	ctx := contextLine(e, cfg.Subscription)
	blocks = append(blocks, Block{Type: "context", Elements: []TextObject{{Type: "mrkdwn", Text: truncate(ctx, MaxContextText)}}})

	fallback := text
	if fallback == "" {
		fallback = escape(e.Type)
	}
	return Message{Text: truncate(fallback, MaxFallbackText), Blocks: blocks}
}

// contextLine shows the event time (in each reader's time zone, with the
// UTC time as the fallback) and where the message came from.
func contextLine(e store.Event, subscription string) string {
	var parts []string
	if !e.CreatedAt.IsZero() {
		utc := e.CreatedAt.UTC()
		parts = append(parts, fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", utc.Unix(), utc.Format(time.RFC3339)))
	}
	src := "Carrier"
	if s := oneLine(subscription); s != "" {
		src += " · " + truncate(escape(s), maxContextName)
	}
	parts = append(parts, src)
	return strings.Join(parts, " · ")
}

// fieldText is a field as Slack shows it: the name in bold over the value,
// within MaxFieldText.
func fieldText(name, value string) TextObject {
	name = oneLine(name)
	if name == "" {
		name = "—"
	}
	head := "*" + truncate(name, maxFieldName) + "*\n"
	return TextObject{Type: "mrkdwn", Text: head + truncate(value, MaxFieldText-units(head))}
}

// units counts UTF-16 code units: code points, plus one for each outside
// the Basic Multilingual Plane.
func units(s string) int {
	k := 0
	for _, r := range s {
		k++
		if r > 0xFFFF {
			k++
		}
	}
	return k
}

// truncate cuts s to at most limit UTF-16 units, visibly ("… (truncated)"
// when the limit leaves room, else "…"), without splitting an &entity; or
// a <link|mention>.
func truncate(s string, limit int) string {
	if units(s) <= limit {
		return s
	}
	if limit <= 0 {
		return ""
	}
	tail := noteTail
	if limit < 4*units(noteTail) {
		tail = ellipsis
	}
	keep := limit - units(tail)
	if keep < 0 {
		return ""
	}
	cut, used := 0, 0
	for i, r := range s {
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if used+w > keep {
			cut = i
			break
		}
		used += w
	}
	kept := s[:cut]
	if amp := strings.LastIndexByte(kept, '&'); amp >= 0 && !strings.Contains(kept[amp:], ";") {
		kept = kept[:amp]
	}
	if lt := strings.LastIndexByte(kept, '<'); lt >= 0 && !strings.Contains(kept[lt:], ">") {
		kept = kept[:lt]
	}
	return strings.TrimRight(kept, " \t\n") + tail
}

func oneLine(s string) string {
	return strings.TrimSpace(strings.Join(strings.Fields(s), " "))
}

// escape makes text literal in mrkdwn.
func escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeAll escapes every string (and map key) in a template context.
func escapeAll(v any) any {
	switch x := v.(type) {
	case string:
		return escape(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, vv := range x {
			out[escape(k)] = escapeAll(vv)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, vv := range x {
			out[escape(k)] = escape(vv)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, vv := range x {
			out[i] = escapeAll(vv)
		}
		return out
	default:
		return v
	}
}

// --- templates ---

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

var errOutputLimit = errors.New("output limit reached")

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

// execute runs a template; a run-time error becomes visible text.
func execute(t *template.Template, ctx map[string]any) string {
	if t == nil {
		return ""
	}
	w := &limitWriter{limit: templateOutputLimit}
	err := t.Execute(w, ctx)
	out := strings.ToValidUTF8(w.buf.String(), "\uFFFD")
	out = strings.ReplaceAll(out, "<no value>", "")
	if err != nil && !errors.Is(err, errOutputLimit) {
		msg := strings.TrimPrefix(err.Error(), "template: ")
		return strings.TrimSpace(out + " (template error: " + escape(msg) + ")")
	}
	return out
}

// --- the event ---

func decodeData(raw json.RawMessage) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return v
}

func copyAttrs(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		out[k] = v
	}
	return out
}

// topLevel returns an object's members in document order.
func topLevel(raw json.RawMessage) (keys []string, vals map[string]json.RawMessage, ok bool) {
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

func valueText(v json.RawMessage) string {
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

// defaultFields turns the first DefaultFieldCount top-level data keys into
// fields; when there are more, the last one says how many were left out.
func defaultFields(raw json.RawMessage) []TextObject {
	keys, vals, ok := topLevel(raw)
	if !ok {
		return nil
	}
	var fs []TextObject
	for i, k := range keys {
		if i == DefaultFieldCount-1 && len(keys) > DefaultFieldCount {
			fs = append(fs, TextObject{Type: "mrkdwn", Text: fmt.Sprintf("*(truncated)*\n%d more data key(s) not shown", len(keys)-i)})
			break
		}
		v := strings.TrimSpace(valueText(vals[k]))
		if v == "" {
			v = `""`
		}
		fs = append(fs, fieldText(escape(k), escape(v)))
	}
	return fs
}
