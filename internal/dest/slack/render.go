package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"carrier/internal/dest"
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
	maxFieldName   = 200 // of a field's text, before its value
	maxContextName = 300 // of the subscription name in the context line
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
	return renderIn(nil, cfg, e, deliveryID)
}

// renderIn is Render with its templates run under budget (see buildMessage).
func renderIn(budget *dest.Budget, cfg Config, e store.Event, deliveryID string) []byte {
	b, err := dest.EncodeJSON(buildMessage(budget, cfg, e, deliveryID))
	if err != nil {
		return []byte(`{"text":"(Carrier could not encode this event)"}`)
	}
	return b
}

// buildMessage is the message Render encodes, its templates run under budget (nil: a
// fresh one); when the budget stops them, budget.Err() says so and the
// message must not be sent.
func buildMessage(budget *dest.Budget, cfg Config, e store.Event, deliveryID string) Message {
	if budget == nil {
		budget = dest.NewBudget(context.Background(), dest.TemplateTimeLimit)
	}
	execute := func(t *dest.Template, ctx map[string]any) string { return executeIn(budget, t, ctx) }
	compileErr := cfg.compile()
	data := dest.DecodeData(e.Data)
	if s, ok := data.(string); ok {
		// Data that is not JSON is shown as its text, which must be valid
		// UTF-8 in the message.
		data = strings.ToValidUTF8(s, "\uFFFD")
	}
	raw := dest.TemplateData(e, deliveryID, data)
	esc := escapeAll(raw).(map[string]any)

	// An event that carries a notice (alerts, reports) shows it in each
	// part the subscription has no template of its own for.
	notice, hasNotice := dest.NoticeOf(e.Data)
	hasNotice = hasNotice && compileErr == nil
	useNoticeText := hasNotice && strings.TrimSpace(cfg.Text) == ""

	var title, text string
	var fields []TextObject
	if compileErr != nil {
		title = e.Type
		text = escape(e.Type) + " (template error: " + escape(compileErr.Error()) + ")"
	} else {
		if hasNotice && strings.TrimSpace(cfg.Title) == "" {
			title = dest.OneLine(notice.Title)
		} else {
			title = dest.OneLine(execute(cfg.title, raw))
		}
		if useNoticeText {
			text = noticeMrkdwn(notice.Description)
		} else {
			text = strings.TrimSpace(execute(cfg.text, esc))
		}
		switch {
		case len(cfg.fields) > 0:
			for _, f := range cfg.fields {
				v := strings.TrimSpace(execute(f.Value, esc))
				if v == "" {
					continue
				}
				fields = append(fields, fieldText(execute(f.Name, esc), v))
			}
		case hasNotice:
			for _, f := range notice.Fields {
				if v := noticeMrkdwn(f.Value); v != "" {
					fields = append(fields, fieldText(escape(f.Name), v))
				}
			}
		default:
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
	var footer string
	if hasNotice {
		footer = notice.Footer
	}
	ctx := contextLine(e, cfg.Subscription, footer)
	blocks = append(blocks, Block{Type: "context", Elements: []TextObject{{Type: "mrkdwn", Text: truncate(ctx, MaxContextText)}}})

	fallback := text
	if useNoticeText {
		// The notification shows the notice in plain words: its title and
		// description without the bold markers.
		parts := []string{escape(title), escape(dest.StripBold(strings.TrimSpace(notice.Description)))}
		fallback = strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), " — ")
	}
	if fallback == "" {
		fallback = escape(e.Type)
	}
	return Message{Text: truncate(fallback, MaxFallbackText), Blocks: blocks}
}

// contextLine shows the event time (in each reader's time zone, with the
// UTC time as the fallback) and where the message came from: the notice's
// footer when it has one, else Carrier and the subscription.
func contextLine(e store.Event, subscription, footer string) string {
	var parts []string
	if !e.CreatedAt.IsZero() {
		utc := e.CreatedAt.UTC()
		parts = append(parts, fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", utc.Unix(), utc.Format(time.RFC3339)))
	}
	src := "Carrier"
	if s := dest.OneLine(subscription); s != "" {
		src += " · " + truncate(escape(s), maxContextName)
	}
	if f := dest.OneLine(footer); f != "" {
		src = truncate(escape(f), maxContextName)
	}
	parts = append(parts, src)
	return strings.Join(parts, " · ")
}

// noticeMrkdwn is notice text (Discord markdown, from the event) as Slack
// mrkdwn: escaped like every event value, **bold** turned into *bold*
// (`code` is the same in both).
func noticeMrkdwn(s string) string {
	return strings.ReplaceAll(escape(strings.TrimSpace(s)), "**", "*")
}

// fieldText is a field as Slack shows it: the name in bold over the value,
// within MaxFieldText.
func fieldText(name, value string) TextObject {
	name = dest.OneLine(name)
	if name == "" {
		name = "—"
	}
	head := "*" + truncate(name, maxFieldName) + "*\n"
	return TextObject{Type: "mrkdwn", Text: head + truncate(value, MaxFieldText-units(head))}
}

// units counts UTF-16 code units: code points, plus one for each outside
// the Basic Multilingual Plane.
func units(s string) int { return dest.TextLen(s, dest.UTF16Unit) }

// truncate cuts s to at most limit UTF-16 units, visibly ("… (truncated)"
// when the limit leaves room, else "…"), without splitting an &entity; or
// a <link|mention>.
func truncate(s string, limit int) string {
	return dest.Truncate(s, limit, dest.UTF16Unit, wholeMarkup)
}

// wholeMarkup drops an &entity; or a <link|mention> that cut text ends
// inside of.
func wholeMarkup(kept string) string {
	if amp := strings.LastIndexByte(kept, '&'); amp >= 0 && !strings.Contains(kept[amp:], ";") {
		kept = kept[:amp]
	}
	if lt := strings.LastIndexByte(kept, '<'); lt >= 0 && !strings.Contains(kept[lt:], ">") {
		kept = kept[:lt]
	}
	return kept
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

// executeIn runs a template under budget; a run-time error becomes
// visible (escaped) text.
func executeIn(budget *dest.Budget, t *dest.Template, ctx map[string]any) string {
	return dest.ExecuteTemplate(t, budget, ctx, escape)
}

// defaultFields turns the first DefaultFieldCount top-level data keys into
// fields; when there are more, the last one says how many were left out.
func defaultFields(raw json.RawMessage) []TextObject {
	keys, vals, ok := dest.ObjectMembers(raw)
	if !ok {
		return nil
	}
	var fs []TextObject
	for i, k := range keys {
		if i == DefaultFieldCount-1 && len(keys) > DefaultFieldCount {
			fs = append(fs, TextObject{Type: "mrkdwn", Text: fmt.Sprintf("*(truncated)*\n%d more data key(s) not shown", len(keys)-i)})
			break
		}
		v := strings.TrimSpace(dest.ValueText(vals[k]))
		if v == "" {
			v = `""`
		}
		fs = append(fs, fieldText(escape(k), escape(v)))
	}
	return fs
}
