package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"carrier/internal/dest"
	"carrier/internal/store"
)

// Discord's limits, in Unicode code points
// (https://discord.com/developers/docs/resources/message#embed-object-embed-limits
// and the execute-webhook parameters).
const (
	MaxTitle       = 256
	MaxDescription = 4096
	MaxFields      = 25
	MaxFieldName   = 256
	MaxFieldValue  = 1024
	MaxFooter      = 2048
	MaxAuthorName  = 256
	MaxEmbedTotal  = 6000 // title, description, field names and values, footer and author name of all embeds
	MaxEmbeds      = 10
	MaxContent     = 2000
	MaxUsername    = 80
)

// DefaultFieldCount is how many top-level data keys become fields when no
// fields are configured.
const DefaultFieldCount = 10

// TimeFormat is the format of the embed timestamp (ISO 8601, UTC).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

const (
	// descriptionFloor is how much of a long description survives when the
	// embed has to shrink to its total limit (the rest is taken from fields).
	descriptionFloor = 256
	// fieldValueFloor is the least of a field value kept before fields are
	// dropped to fit the total.
	fieldValueFloor = 24
)

// Message is the JSON body of an execute-webhook request.
type Message struct {
	Content         string          `json:"content,omitempty"`
	Username        string          `json:"username,omitempty"`
	AvatarURL       string          `json:"avatar_url,omitempty"`
	Embeds          []Embed         `json:"embeds"`
	AllowedMentions AllowedMentions `json:"allowed_mentions"`
}

// Embed is a rich embed.
type Embed struct {
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	Color       int          `json:"color"`
	Fields      []EmbedField `json:"fields,omitempty"`
	Timestamp   string       `json:"timestamp,omitempty"`
	Footer      *EmbedFooter `json:"footer,omitempty"`
}

// EmbedField is one name/value field of an embed.
type EmbedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// EmbedFooter is an embed's footer.
type EmbedFooter struct {
	Text string `json:"text"`
}

// AllowedMentions restricts who a message may ping.
type AllowedMentions struct {
	Parse []string `json:"parse"`
	Users []string `json:"users,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Render builds the execute-webhook body for an event: the exact bytes Send
// posts. It never fails: a template that fails at run time renders as a
// visible "(template error: …)" text, and every Discord limit is met by
// visible truncation. cfg should come from ParseConfig (a Config built by
// hand is compiled here; a template that does not compile renders as an
// error text).
func Render(cfg Config, e store.Event, deliveryID string) []byte {
	return renderIn(nil, cfg, e, deliveryID)
}

// renderIn is Render with its templates run under budget (see buildMessage).
func renderIn(budget *dest.Budget, cfg Config, e store.Event, deliveryID string) []byte {
	b, err := dest.EncodeJSON(buildMessage(budget, cfg, e, deliveryID))
	if err != nil {
		// Only invalid UTF-8 could fail here, and strings are made valid.
		return []byte(`{"content":"(Carrier could not encode this event)"}`)
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

	severityAttr := cfg.SeverityAttribute
	if strings.TrimSpace(severityAttr) == "" {
		severityAttr = DefaultSeverityAttribute
	}
	data := dest.DecodeData(e.Data)
	severity := severityOf(e, data, severityAttr)
	keys := matchKeys(severity, e.Type)
	ctx := dest.TemplateData(e, deliveryID, data)
	ctx["severity"] = severity

	// An event that carries a notice (alerts, reports) shows it in each
	// part the subscription has no template of its own for.
	notice, hasNotice := dest.NoticeOf(e.Data)
	hasNotice = hasNotice && compileErr == nil

	var emb Embed
	switch {
	case compileErr != nil:
		emb.Title = e.Type
		emb.Description = "(template error: " + compileErr.Error() + ")"
	case hasNotice && strings.TrimSpace(cfg.Title) == "":
		emb.Title = dest.OneLine(notice.Title)
	default:
		emb.Title = dest.OneLine(execute(cfg.title, ctx))
	}
	if compileErr == nil && cfg.description != nil {
		emb.Description = strings.TrimSpace(execute(cfg.description, ctx))
	}
	var fields []EmbedField
	more := 0
	switch {
	case compileErr != nil:
	case len(cfg.fields) > 0:
		for _, f := range cfg.fields {
			v := strings.TrimSpace(execute(f.Value, ctx))
			if v == "" {
				continue
			}
			fields = append(fields, EmbedField{Name: fieldName(execute(f.Name, ctx)), Value: v, Inline: f.Inline})
		}
	case hasNotice:
		fields = noticeFields(notice.Fields)
	default:
		fields, more = defaultFields(e.Data)
	}
	if compileErr == nil && cfg.description == nil {
		if hasNotice {
			emb.Description = strings.TrimSpace(notice.Description)
		} else {
			emb.Description = defaultDescription(e, data, more)
		}
	}
	emb.Color = colorFor(cfg.Colors, keys)
	if hasNotice {
		emb.Color = noticeColor(cfg.Colors, keys, notice.Color)
	}
	if !e.CreatedAt.IsZero() {
		emb.Timestamp = e.CreatedAt.UTC().Format(TimeFormat)
	}
	footer := "Carrier"
	if s := dest.OneLine(cfg.Subscription); s != "" {
		footer += " · " + s
	}
	if e.Type != "" {
		footer += " · " + dest.OneLine(e.Type)
	}
	if f := dest.OneLine(notice.Footer); hasNotice && f != "" {
		footer = f
	}
	emb.Footer = &EmbedFooter{Text: footer}
	emb.Fields = fields
	fitEmbed(&emb)

	m := Message{
		Username:        cfg.Username,
		AvatarURL:       cfg.AvatarURL,
		Embeds:          []Embed{emb},
		AllowedMentions: AllowedMentions{Parse: []string{}},
	}
	if cfg.Mention != "" && mentionApplies(cfg.MentionOn, keys) && !(hasNotice && notice.Quiet) {
		m.Content = truncate(cfg.Mention, MaxContent)
		m.AllowedMentions = allowedFor(m.Content)
	}
	if utf8.RuneCountInString(m.Username) > MaxUsername {
		m.Username = truncate(m.Username, MaxUsername)
	}
	return m
}

// fitEmbed applies every per-part limit, then trims the description and
// then the fields until the whole embed is within MaxEmbedTotal.
func fitEmbed(emb *Embed) {
	emb.Title = truncate(emb.Title, MaxTitle)
	emb.Description = truncate(emb.Description, MaxDescription)
	if emb.Footer != nil {
		emb.Footer.Text = truncate(emb.Footer.Text, MaxFooter)
	}
	if len(emb.Fields) > MaxFields {
		dropped := len(emb.Fields) - (MaxFields - 1)
		emb.Fields = append(emb.Fields[:MaxFields-1], dropNote(dropped))
	}
	for i := range emb.Fields {
		emb.Fields[i].Name = truncate(emb.Fields[i].Name, MaxFieldName)
		emb.Fields[i].Value = truncate(emb.Fields[i].Value, MaxFieldValue)
	}

	fixed := n(emb.Title)
	if emb.Footer != nil {
		fixed += n(emb.Footer.Text)
	}
	budget := MaxEmbedTotal - fixed
	if n(emb.Description)+fieldsSize(emb.Fields) <= budget {
		return
	}
	// 1. The description gives way first, down to descriptionFloor.
	keep := budget - fieldsSize(emb.Fields)
	if floor := min(n(emb.Description), descriptionFloor); keep < floor {
		keep = floor
	}
	if keep < n(emb.Description) {
		emb.Description = truncate(emb.Description, keep)
	}
	budget -= n(emb.Description)
	if fieldsSize(emb.Fields) <= budget {
		return
	}
	// 2. Then the fields: drop from the end (leaving a note) until every
	// remaining one can keep at least fieldValueFloor of its value...
	fs := emb.Fields
	dropped := 0
	if len(fs) > 0 && isDropNote(fs[len(fs)-1]) {
		dropped = droppedCount(fs[len(fs)-1])
		fs = fs[:len(fs)-1]
	}
	nameLen := make([]int, len(fs))
	valueLen := make([]int, len(fs))
	need := 0 // names plus the floor of each value
	for i, f := range fs {
		nameLen[i], valueLen[i] = n(f.Name), n(f.Value)
		need += nameLen[i] + min(valueLen[i], fieldValueFloor)
	}
	noteSize := func(d int) int {
		if d == 0 {
			return 0
		}
		return fieldsSize([]EmbedField{dropNote(d)})
	}
	for len(fs) > 0 && need+noteSize(dropped) > budget {
		last := len(fs) - 1
		need -= nameLen[last] + min(valueLen[last], fieldValueFloor)
		fs, nameLen, valueLen = fs[:last], nameLen[:last], valueLen[:last]
		dropped++
	}
	var note []EmbedField
	if dropped > 0 {
		note = []EmbedField{dropNote(dropped)}
		budget -= noteSize(dropped)
	}
	// ...and cut the longest values to a common cap so the rest fits.
	names := 0
	for _, l := range nameLen {
		names += l
	}
	lo, hi := 0, MaxFieldValue
	for lo < hi {
		c := (lo + hi + 1) / 2
		total := names
		for _, l := range valueLen {
			total += min(l, c)
		}
		if total <= budget {
			lo = c
		} else {
			hi = c - 1
		}
	}
	for i := range fs {
		if valueLen[i] > lo {
			fs[i].Value = truncate(fs[i].Value, max(lo, 1))
		}
	}
	emb.Fields = append(fs, note...)
	if len(emb.Fields) == 0 {
		emb.Fields = nil
	}
}

const dropNoteName = "(truncated)"

func dropNote(count int) EmbedField {
	return EmbedField{Name: dropNoteName, Value: fmt.Sprintf("%d more field(s) not shown", count)}
}

func isDropNote(f EmbedField) bool { return f.Name == dropNoteName }

func droppedCount(f EmbedField) int {
	var c int
	fmt.Sscanf(f.Value, "%d", &c)
	return c
}

func fieldsSize(fs []EmbedField) int {
	t := 0
	for _, f := range fs {
		t += n(f.Name) + n(f.Value)
	}
	return t
}

// n counts characters as Discord does: Unicode code points.
func n(s string) int { return utf8.RuneCountInString(s) }

// truncate cuts s to at most limit code points, visibly: the kept text ends
// in "… (truncated)" when the limit leaves room for it, else in "…".
func truncate(s string, limit int) string {
	return dest.Truncate(s, limit, dest.CodePoint, nil)
}

func fieldName(s string) string {
	s = dest.OneLine(s)
	if s == "" {
		return "\u2014"
	}
	return s
}

// executeIn runs a template under budget; a run-time error becomes
// visible text.
func executeIn(budget *dest.Budget, t *dest.Template, ctx map[string]any) string {
	return dest.ExecuteTemplate(t, budget, ctx, nil)
}

// --- the event ---

func severityOf(e store.Event, data any, attr string) string {
	if v, ok := e.Attributes[attr]; ok && strings.TrimSpace(v) != "" {
		return strings.ToLower(strings.TrimSpace(v))
	}
	if m, ok := data.(map[string]any); ok {
		switch v := m[attr].(type) {
		case string:
			return strings.ToLower(strings.TrimSpace(v))
		case json.Number:
			return v.String()
		}
	}
	return ""
}

// matchKeys are the names colors and mention_on are looked up by, in order:
// the severity, the event type, and its last dot-separated segment.
func matchKeys(severity, eventType string) []string {
	var keys []string
	add := func(k string) {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return
		}
		for _, x := range keys {
			if x == k {
				return
			}
		}
		keys = append(keys, k)
	}
	add(severity)
	add(eventType)
	if i := strings.LastIndexAny(eventType, "./:"); i >= 0 {
		add(eventType[i+1:])
	}
	return keys
}

func colorFor(custom map[string]Color, keys []string) int {
	lower := make(map[string]int, len(custom))
	for k, v := range custom {
		lower[strings.ToLower(strings.TrimSpace(k))] = int(v)
	}
	for _, k := range keys {
		if c, ok := lower[k]; ok {
			return c
		}
	}
	for _, k := range keys {
		if c, ok := DefaultColors[k]; ok {
			return c
		}
	}
	if c, ok := lower["default"]; ok {
		return c
	}
	return DefaultColors["default"]
}

// noticeColor is the color of an embed showing a notice: the subscription's
// own color for the event's severity, type or outcome when its colors
// setting names one of them (an explicit choice wins), else the notice's
// color key ("success", "warning", "error", "info": the same palette as
// DefaultColors), else what colorFor picks.
func noticeColor(custom map[string]Color, keys []string, key string) int {
	for k := range custom {
		if slices.Contains(keys, strings.ToLower(strings.TrimSpace(k))) {
			return colorFor(custom, keys)
		}
	}
	switch key = strings.ToLower(strings.TrimSpace(key)); key {
	case "success", "warning", "error", "info":
		return DefaultColors[key]
	}
	return colorFor(custom, keys)
}

// noticeFields are a notice's fields as embed fields; a field without a
// value is left out (Discord refuses empty values), as a configured field
// that renders empty is.
func noticeFields(nf []dest.NoticeField) []EmbedField {
	var fs []EmbedField
	for _, f := range nf {
		v := strings.TrimSpace(f.Value)
		if v == "" {
			continue
		}
		fs = append(fs, EmbedField{Name: fieldName(f.Name), Value: v, Inline: f.Inline})
	}
	return fs
}

func mentionApplies(on []string, keys []string) bool {
	if len(on) == 0 {
		return true
	}
	for _, o := range on {
		o = strings.ToLower(strings.TrimSpace(o))
		for _, k := range keys {
			if o == k {
				return true
			}
		}
	}
	return false
}

var (
	userMention = regexp.MustCompile(`<@!?([0-9]{1,20})>`)
	roleMention = regexp.MustCompile(`<@&([0-9]{1,20})>`)
)

// allowedFor permits exactly the mentions written in content.
func allowedFor(content string) AllowedMentions {
	am := AllowedMentions{Parse: []string{}}
	seen := map[string]bool{}
	for _, m := range userMention.FindAllStringSubmatch(content, -1) {
		if !seen["u"+m[1]] && len(am.Users) < 100 {
			seen["u"+m[1]] = true
			am.Users = append(am.Users, m[1])
		}
	}
	for _, m := range roleMention.FindAllStringSubmatch(content, -1) {
		if !seen["r"+m[1]] && len(am.Roles) < 100 {
			seen["r"+m[1]] = true
			am.Roles = append(am.Roles, m[1])
		}
	}
	if strings.Contains(content, "@everyone") || strings.Contains(content, "@here") {
		am.Parse = append(am.Parse, "everyone")
	}
	return am
}

// defaultFields turns the first DefaultFieldCount top-level data keys into
// fields and says how many more there were.
func defaultFields(raw json.RawMessage) ([]EmbedField, int) {
	keys, vals, ok := dest.ObjectMembers(raw)
	if !ok {
		return nil, 0
	}
	var fs []EmbedField
	more := 0
	for _, k := range keys {
		v := strings.TrimSpace(dest.ValueText(vals[k]))
		if v == "" {
			v = `""`
		}
		if len(fs) == DefaultFieldCount {
			more++
			continue
		}
		fs = append(fs, EmbedField{Name: fieldName(k), Value: v, Inline: n(v) <= 40 && !strings.Contains(v, "\n")})
	}
	return fs, more
}

var summaryKeys = []string{"message", "summary", "description", "error", "reason"}

// defaultDescription is a short summary: the subject, a message-like data
// value, the data itself when it is not an object, and how many data keys
// were left out of the fields.
func defaultDescription(e store.Event, data any, moreKeys int) string {
	var lines []string
	if s := dest.OneLine(e.Subject); s != "" {
		lines = append(lines, "Subject: "+s)
	}
	switch d := data.(type) {
	case map[string]any:
		for _, k := range summaryKeys {
			if s, ok := d[k].(string); ok && strings.TrimSpace(s) != "" {
				lines = append(lines, truncate(strings.TrimSpace(s), 1024))
				break
			}
		}
	case nil:
	default:
		var buf bytes.Buffer
		if json.Compact(&buf, e.Data) == nil {
			lines = append(lines, "```json\n"+strings.ReplaceAll(truncate(buf.String(), 1000), "```", "'''")+"\n```")
		}
	}
	if moreKeys > 0 {
		lines = append(lines, fmt.Sprintf("(%d more data key(s) not shown)", moreKeys))
	}
	return strings.Join(lines, "\n")
}
