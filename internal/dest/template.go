package dest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"carrier/internal/store"
)

// TemplateOutputLimit bounds what one template may produce (bytes) before
// it is cut; it is far above every chat service's limits.
const TemplateOutputLimit = 64 << 10

// CodeTemplateError is the error code of an attempt whose templates could
// not be rendered within their limits (or no longer pass the rules below,
// for settings saved before them). It is not retried: the same event would
// fail the same way.
const CodeTemplateError = "template_error"

// templateFuncs are the functions settings templates may call, with
// placeholders (for parsing) for the ones that are bound to a render's
// Budget: the builtins that build strings are replaced by versions that
// charge what they make (see Budget.funcs).
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"trim":  strings.TrimSpace,
	"join":  join,
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
	stepFunc: func() string { return "" },
}

// join is the template function join: the parts of v (a list) joined by sep.
func join(sep string, v any) string {
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
}

// The rules every template follows, checked when it is parsed (so when a
// subscription is saved, and again when old settings are sent), and the
// budget every render runs under. Together they bound the time and memory
// of a render, whatever the template and the event: text/template cannot be
// interrupted from outside, so the budget is enforced from inside, by a step
// check before every node the template executes and by the functions that
// build strings.
const (
	// MaxTemplateSize is the longest template source, in bytes.
	MaxTemplateSize = 8 << 10
	// MaxRangeDepth is how deeply range may nest ({{range}} inside
	// {{range}} is 2).
	MaxRangeDepth = 2
	// MaxTemplateSteps is how many template nodes (actions, ifs, range
	// iterations, …) the templates of one message may execute in all.
	MaxTemplateSteps = 100_000
	// TemplateWorkLimit is how many bytes the functions called by the
	// templates of one message (json, printf, join, …) may produce in all.
	TemplateWorkLimit = 4 << 20
	// TemplateTimeLimit is how long rendering one message may take; it
	// also ends at the attempt's deadline, whichever comes first.
	TemplateTimeLimit = time.Second
	// MaxFormatWidth is the largest width or precision printf accepts
	// ("%8.2f" is fine, "%999999999d" is refused); "*" is refused.
	MaxFormatWidth = 100
)

// stepFunc is the function called before every node a template executes;
// the name is not one a template would use by chance.
const stepFunc = "carrier_step"

// ErrTemplateBudget is the error of a render stopped by its Budget.
var ErrTemplateBudget = errors.New("template exceeded its limits")

// TemplateError is the *FieldError of a template that breaks the rules; it
// unwraps to its FieldError, so errors.As finds either.
type TemplateError struct{ FieldError }

// Unwrap returns the FieldError.
func (e *TemplateError) Unwrap() error { return &e.FieldError }

// IsTemplateError reports whether err is (or wraps) a *TemplateError.
func IsTemplateError(err error) bool {
	var te *TemplateError
	return errors.As(err, &te)
}

// Template is a compiled settings template that follows the rules above and
// executes under a Budget.
type Template struct {
	t *template.Template
}

// ParseTemplate compiles the template src of the setting field (such as
// "title" or "fields[2].value") with the functions json, upper, lower,
// trim, join and default. A template that does not compile is a
// *FieldError for field; one that breaks a rule is a *TemplateError (which
// is a FieldError too): longer than MaxTemplateSize, {{define}},
// {{block}} or {{template}} (no recursion), range over anything but a list
// or object of the event ({{range .data.items}}, {{range $.data.items}} or
// {{range $x.items}}; never over a number, a literal or a function's
// result), or ranges nested more than MaxRangeDepth deep.
func ParseTemplate(field, src string) (*Template, error) {
	fail := func(msg string) error {
		return &TemplateError{FieldError{Field: field, Message: msg}}
	}
	if len(src) > MaxTemplateSize {
		return nil, fail(fmt.Sprintf("must be at most %d bytes (has %d)", MaxTemplateSize, len(src)))
	}
	t, err := template.New(field).Funcs(templateFuncs).Parse(src)
	if err != nil {
		// Not a template at all (as before the limits): invalid settings.
		return nil, &FieldError{Field: field, Message: "is not a valid template: " + strings.TrimPrefix(err.Error(), "template: ")}
	}
	if len(t.Templates()) > 1 {
		return nil, fail("must not use {{define}} or {{block}}")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return &Template{t: t}, nil // empty: nothing to run
	}
	if msg := checkTemplate(t.Tree.Root, 0); msg != "" {
		return nil, fail(msg)
	}
	instrument(t.Tree.Root, false)
	return &Template{t: t}, nil
}

// ParseTemplateOr is ParseTemplate of src, or of fallback when src is
// blank.
func ParseTemplateOr(field, src, fallback string) (*Template, error) {
	if strings.TrimSpace(src) == "" {
		src = fallback
	}
	return ParseTemplate(field, src)
}

// checkTemplate walks a parse tree and says which rule it breaks ("" for
// none); depth is how many ranges enclose n.
func checkTemplate(n parse.Node, depth int) string {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Nodes {
			if msg := checkTemplate(c, depth); msg != "" {
				return msg
			}
		}
	case *parse.ActionNode:
		return checkPipe(n.Pipe)
	case *parse.IfNode:
		if msg := checkPipe(n.Pipe); msg != "" {
			return msg
		}
		return checkBranch(&n.BranchNode, depth)
	case *parse.WithNode:
		if msg := checkPipe(n.Pipe); msg != "" {
			return msg
		}
		return checkBranch(&n.BranchNode, depth)
	case *parse.RangeNode:
		if !rangesOverData(n.Pipe) {
			return "must range only over a list or object of the event, such as {{range .data.items}} (not over a number, a literal or a function's result)"
		}
		if depth+1 > MaxRangeDepth {
			return fmt.Sprintf("must not nest range more than %d deep", MaxRangeDepth)
		}
		if msg := checkTemplate(n.List, depth+1); msg != "" {
			return msg
		}
		return checkTemplate(n.ElseList, depth)
	case *parse.TemplateNode:
		return "must not use {{template}} or {{block}}"
	}
	return ""
}

// checkPipe refuses printf calls whose format, written in the template,
// breaks checkFormat (a format from the event is checked when it runs).
func checkPipe(p *parse.PipeNode) string {
	if p == nil {
		return ""
	}
	for _, cmd := range p.Cmds {
		if len(cmd.Args) >= 2 {
			if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && id.Ident == "printf" {
				if f, ok := cmd.Args[1].(*parse.StringNode); ok {
					if err := checkFormat(f.Text); err != nil {
						return "must not use " + err.Error()
					}
				}
			}
		}
		for _, a := range cmd.Args {
			if sub, ok := a.(*parse.PipeNode); ok {
				if msg := checkPipe(sub); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}

func checkBranch(b *parse.BranchNode, depth int) string {
	if msg := checkTemplate(b.List, depth); msg != "" {
		return msg
	}
	return checkTemplate(b.ElseList, depth)
}

// rangesOverData reports whether a range pipeline is a field of the event:
// .a.b, $.a.b or $x.a (at least one field), nothing else.
func rangesOverData(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1
	}
	return false
}

// instrument puts a call of stepFunc before every node of every list below
// n that does more than copy text, and at the start of every range body, so
// that each step of a render is bounded work (one node, whose functions
// charge what they build) and the budget is checked between any two.
func instrument(n parse.Node, rangeBody bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		var nodes []parse.Node
		if rangeBody {
			nodes = append(nodes, stepNode(n.Position()))
		}
		for _, c := range n.Nodes {
			if _, text := c.(*parse.TextNode); !text {
				nodes = append(nodes, stepNode(c.Position()))
			}
			instrument(c, false)
			nodes = append(nodes, c)
		}
		n.Nodes = nodes
	case *parse.IfNode:
		instrument(n.List, false)
		instrument(n.ElseList, false)
	case *parse.WithNode:
		instrument(n.List, false)
		instrument(n.ElseList, false)
	case *parse.RangeNode:
		instrument(n.List, true)
		instrument(n.ElseList, false)
	}
}

// stepNode is the action {{carrier_step}} at pos (which error messages
// report).
func stepNode(pos parse.Pos) *parse.ActionNode {
	call := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos,
		Args: []parse.Node{&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Pos: pos, Ident: stepFunc}}}
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos,
		Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{call}}}
}

// Budget is what the templates of one message may spend: MaxTemplateSteps
// steps, TemplateWorkLimit bytes built by functions and time until its
// deadline (the earlier of TemplateTimeLimit from its start and its
// context's deadline); a cancelled context (shutdown) stops it too. Once
// spent, every further render of the message stops at its first step and
// Err says why. A Budget is used by one goroutine at a time.
type Budget struct {
	ctx      context.Context
	deadline time.Time
	steps    int
	work     int
	err      error
	funcs    template.FuncMap
}

// NewBudget starts the budget of one message, ending at the earlier of
// limit from now and ctx's deadline.
func NewBudget(ctx context.Context, limit time.Duration) *Budget {
	b := &Budget{ctx: ctx, deadline: time.Now().Add(limit)}
	if d, ok := ctx.Deadline(); ok && d.Before(b.deadline) {
		b.deadline = d
	}
	return b
}

// Err is why the budget stopped a render, wrapping ErrTemplateBudget (or
// the context's error when it was cancelled); nil while it lasts.
func (b *Budget) Err() error { return b.err }

// yieldSteps is how many steps a render takes between two yields of its
// core: about a tenth of a millisecond.
const yieldSteps = 256

// step is called before every node a template executes.
func (b *Budget) step() (string, error) {
	if b.err != nil {
		return "", b.err
	}
	b.steps++
	switch {
	case b.steps > MaxTemplateSteps:
		b.err = fmt.Errorf("%w: more than %d steps (a range over too many items?)", ErrTemplateBudget, MaxTemplateSteps)
	case b.steps%16 == 0 && b.ctx.Err() != nil:
		b.err = b.ctx.Err()
	case time.Now().After(b.deadline):
		b.err = fmt.Errorf("%w: rendering took longer than %s", ErrTemplateBudget, TemplateTimeLimit)
	case b.steps%yieldSteps == 0:
		// A long render gives its core to whatever else is waiting (other
		// tenants' publishes and deliveries) instead of holding it until the
		// scheduler preempts it, up to 10 ms later.
		runtime.Gosched()
	}
	return "", b.err
}

// charge spends n bytes of work, failing once TemplateWorkLimit is passed.
func (b *Budget) charge(n int) error {
	if b.err != nil {
		return b.err
	}
	if b.work += n; b.work > TemplateWorkLimit {
		b.err = fmt.Errorf("%w: template functions built more than %d bytes", ErrTemplateBudget, TemplateWorkLimit)
	}
	return b.err
}

// room is how many bytes of work are left.
func (b *Budget) room() int { return max(TemplateWorkLimit-b.work, 0) }

// funcMap binds the string-building functions to b: each charges, before
// it builds a string, an upper bound of its size (printf, print, join, html,
// …: those whose output can be much larger than their input), or the size
// it built (json, upper, lower: at most a few times their input). printf
// also refuses widths and precisions above MaxFormatWidth.
func (b *Budget) funcMap() template.FuncMap {
	if b.funcs != nil {
		return b.funcs
	}
	charged := func(s string, err error) (string, error) {
		if err != nil {
			return "", err
		}
		return s, b.charge(len(s))
	}
	bounded := func(estimate int, build func() string) (string, error) {
		if err := b.charge(estimate); err != nil {
			return "", err
		}
		return build(), nil
	}
	escaper := func(factor int, escape func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			return bounded(factor*argsSize(args, b.room()), func() string { return escape(args...) })
		}
	}
	b.funcs = template.FuncMap{
		stepFunc: b.step,
		"json": func(v any) (string, error) {
			if err := b.charge(0); err != nil {
				return "", err
			}
			out, err := json.Marshal(v)
			return charged(string(out), err)
		},
		"upper": func(s string) (string, error) { return charged(strings.ToUpper(s), nil) },
		"lower": func(s string) (string, error) { return charged(strings.ToLower(s), nil) },
		"join": func(sep string, v any) (string, error) {
			n := 1
			switch l := v.(type) {
			case []string:
				n = len(l)
			case []any:
				n = len(l)
			}
			return bounded(len(sep)*n+valueSize(v, b.room()), func() string { return join(sep, v) })
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := checkFormat(format); err != nil {
				return "", err
			}
			verbs := strings.Count(format, "%")
			return bounded(len(format)+verbs*(MaxFormatWidth+8)+argsSize(args, b.room()), func() string { return fmt.Sprintf(format, args...) })
		},
		"print": func(args ...any) (string, error) {
			return bounded(argsSize(args, b.room()), func() string { return fmt.Sprint(args...) })
		},
		"println": func(args ...any) (string, error) {
			return bounded(argsSize(args, b.room())+1, func() string { return fmt.Sprintln(args...) })
		},
		"html":     escaper(6, template.HTMLEscaper),
		"js":       escaper(6, template.JSEscaper),
		"urlquery": escaper(3, template.URLQueryEscaper),
	}
	return b.funcs
}

// checkFormat refuses printf formats that could build a huge string from
// little: a width or precision above MaxFormatWidth, or one taken from an
// argument ("*").
func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		num := 0
		for i++; i < len(f); i++ {
			c := f[i]
			if c == '[' { // an argument index, not a width
				if j := strings.IndexByte(f[i:], ']'); j >= 0 {
					i += j
					num = 0
					continue
				}
			}
			if c == '*' {
				return errors.New("printf: a width or precision from an argument (*) is not allowed")
			}
			if c >= '0' && c <= '9' {
				if num = num*10 + int(c-'0'); num > MaxFormatWidth {
					return fmt.Errorf("printf: widths and precisions above %d are not allowed", MaxFormatWidth)
				}
				continue
			}
			if c == '.' || strings.IndexByte("+-# ", c) >= 0 {
				num = 0
				continue
			}
			break // the verb
		}
	}
	return nil
}

// argsSize is the sum of valueSize over args, stopping past limit.
func argsSize(args []any, limit int) int {
	total := 0
	for _, a := range args {
		if total += valueSize(a, limit-total); total > limit {
			break
		}
	}
	return total
}

// valueSize is an upper bound of how long v (a value of the event as
// DecodeData and TemplateData make it, or a template literal) is when
// formatted by fmt with any verb (%q and %x included) at most
// MaxFormatWidth wide; it stops counting once past limit.
func valueSize(v any, limit int) int {
	const scalar = MaxFormatWidth + 32
	switch x := v.(type) {
	case string:
		return 4*len(x) + 2
	case json.Number:
		return 4*len(x) + 2
	case []string:
		n := 32
		for _, s := range x {
			if n += 4*len(s) + 4; n > limit {
				break
			}
		}
		return n
	case map[string]string:
		n := 48
		for k, s := range x {
			if n += 4*len(k) + 4*len(s) + 8; n > limit {
				break
			}
		}
		return n
	case []any:
		n := 32
		for _, e := range x {
			if n += valueSize(e, limit-n) + 2; n > limit {
				break
			}
		}
		return n
	case map[string]any:
		n := 48
		for k, e := range x {
			if n += 4*len(k) + 8 + valueSize(e, limit-n); n > limit {
				break
			}
		}
		return n
	case nil, bool, int, int64, float64, uint64:
		return scalar
	default:
		// Not something events or templates make: count it as its %#v,
		// bounded by nothing but its own size, which is small here.
		return len(fmt.Sprintf("%#v", v)) * 4
	}
}

// Execute runs t over data under b and returns what it wrote, cut at
// TemplateOutputLimit bytes and made valid UTF-8, with "<no value>" (a
// missing key) removed; a nil t renders as "" and a nil b is a fresh
// TemplateTimeLimit budget. err is a run-time error of the template, or the
// budget's error when it stopped the render (then also in b.Err()).
func (t *Template) Execute(b *Budget, data any) (string, error) {
	if t == nil || t.t.Tree == nil {
		return "", nil
	}
	if b == nil {
		b = NewBudget(context.Background(), TemplateTimeLimit)
	}
	if b.err != nil {
		return "", b.err
	}
	// The clone shares the (read-only) parse tree; only the function
	// table, bound to this budget, is its own.
	run, err := t.t.Clone()
	if err != nil {
		return "", err
	}
	run.Funcs(b.funcMap())
	w := &limitWriter{limit: TemplateOutputLimit}
	err = run.Execute(w, data)
	if b.err != nil {
		return "", b.err
	}
	out := strings.ToValidUTF8(w.buf.String(), "\uFFFD")
	out = strings.ReplaceAll(out, "<no value>", "")
	if err != nil && !errors.Is(err, errOutputLimit) {
		return out, err
	}
	return out, nil
}

// CompiledField is a configured Field with its templates compiled.
type CompiledField struct {
	Name, Value *Template
	Inline      bool
}

// CompileFields compiles the name and value templates of fields, which are
// the "fields" setting; an error is a *TemplateError naming the template,
// such as "fields[2].value".
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

// Write keeps what fits under the limit and reports errOutputLimit past it,
// which stops the template.
func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		return max(room, 0), errOutputLimit
	}
	return w.buf.Write(p)
}

// ExecuteTemplate runs t over data under b (see Template.Execute). It never
// fails: a run-time error is appended as visible text, " (template error:
// …)", its message passed through quote first when quote is not nil. When
// the budget stopped the render it returns "", and b.Err() says why: the
// caller fails the attempt (CodeTemplateError) rather than send a message
// missing its parts.
func ExecuteTemplate(t *Template, b *Budget, data any, quote func(string) string) string {
	out, err := t.Execute(b, data)
	if err == nil || (b != nil && b.err != nil) {
		return out
	}
	msg := strings.TrimPrefix(err.Error(), "template: ")
	if quote != nil {
		msg = quote(msg)
	}
	return strings.TrimSpace(out + " (template error: " + msg + ")")
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
