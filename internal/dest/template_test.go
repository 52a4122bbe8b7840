package dest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseTemplateRefusesUnboundedConstructs: what could loop without
// bound or recurse is refused when saved, as a *TemplateError naming the
// field (which is also a *FieldError, so the API reports the field).
func TestParseTemplateRefusesUnboundedConstructs(t *testing.T) {
	cases := map[string]string{
		"range over an integer":         `{{range 1000000000}}x{{end}}`,
		"nested ranges over integers":   `{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}`,
		"range over a variable":         `{{$n := 1000000000}}{{range $n}}x{{end}}`,
		"range over a function result":  `{{range index .data "items"}}x{{end}}`,
		"range over a literal string":   `{{range "abc"}}x{{end}}`,
		"range over dot":                `{{with .data.items}}{{range .}}x{{end}}{{end}}`,
		"ranges three deep":             `{{range .data.a}}{{range $.data.a}}{{range $.data.a}}x{{end}}{{end}}{{end}}`,
		"define":                        `{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}`,
		"template":                      `{{template "subject"}}`,
		"block":                         `{{block "b" .}}x{{end}}`,
		"too long":                      strings.Repeat("x", MaxTemplateSize+1),
		"range in the else of a range":  `{{range .data.a}}{{else}}{{range 5}}{{end}}{{end}}`,
		"range over a pipeline":         `{{range .data.a | len}}x{{end}}`,
		"range inside if over a number": `{{if .data}}{{range 3}}{{end}}{{end}}`,
		"huge printf width":             `{{printf "%999999999d" 1}}`,
		"huge printf precision nested":  `{{if .data}}{{upper (printf "%.99999f" 1.0)}}{{end}}`,
		"printf width from an argument": `{{printf "%*d" 999999999 1}}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTemplate("title", src)
			var te *TemplateError
			var fe *FieldError
			if !errors.As(err, &te) || !errors.As(err, &fe) || fe.Field != "title" {
				t.Fatalf("ParseTemplate(%q) = %v, want a *TemplateError for title", src, err)
			}
		})
	}
}

// TestParseTemplateKeepsOrdinaryTemplates: the templates the rules are not
// about keep working, ranges over event data two deep included.
func TestParseTemplateKeepsOrdinaryTemplates(t *testing.T) {
	data := map[string]any{"data": map[string]any{
		"items": []any{map[string]any{"name": "a", "tags": []any{"x", "y"}}, map[string]any{"name": "b"}},
		"price": json.Number("5.5"), "n": json.Number("7"),
	}, "type": "task.failed"}
	cases := map[string]string{
		`{{range $i, $e := .data.items}}{{$i}}={{$e.name}}{{range $e.tags}}[{{.}}]{{end}} {{end}}`:   `0=a[x][y] 1=b `,
		`{{printf "%6.2f|%05d|%-4s|%q" 3.14159 42 "ab" "c"}}`:                                        `  3.14|00042|ab  |"c"`,
		`{{upper .type}} {{json .data.n}} {{join "," (index .data.items 0).tags}}`:                   `TASK.FAILED 7 x,y`,
		`{{if .data.items}}{{len .data.items}}{{else}}none{{end}}{{with .data.price}} ${{.}}{{end}}`: `2 $5.5`,
		`{{range .data.items}}{{if eq .name "b"}}{{break}}{{end}}{{.name}}{{end}}`:                   `a`,
		`{{html "<b>"}}{{urlquery "a b"}}{{print 1 2}}`:                                              `&lt;b&gt;a+b1 2`,
	}
	for src, want := range cases {
		tm, err := ParseTemplate("description", src)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", src, err)
		}
		got, err := tm.Execute(nil, data)
		if err != nil || got != want {
			t.Errorf("%q rendered %q, %v; want %q", src, got, err, want)
		}
	}
}

// TestTemplateBudgetStopsTheWorst: templates that pass the rules but would
// take minutes or gigabytes on a large event (nested ranges over its data,
// printf widths from the event, escapers and joins that multiply their
// input) are stopped
// by the budget within its limits, and every later render of the same
// message stops at once.
func TestTemplateBudgetStopsTheWorst(t *testing.T) {
	list := make([]any, 5000)
	for i := range list {
		list[i] = json.Number("1")
	}
	big := strings.Repeat("<&>", 300_000)
	data := map[string]any{"data": map[string]any{"list": list, "big": big, "fmt": "%999999999d", "prec": "%.999999999f", "star": "%*d"}}
	cases := map[string]string{
		"nested ranges over data":        `{{range .data.list}}{{range $.data.list}}{{end}}{{end}}`,
		"data re-encoded per item":       `{{range .data.list}}{{$x := json $.data}}{{end}}`,
		"printf width from the data":     `{{printf .data.fmt 1}}`,
		"printf precision from the data": `{{printf .data.prec 1.0}}`,
		"printf * from the data":         `{{printf .data.star 999999999 1}}`,
		"nested escapers":                `{{$x := html (html (html (html (html .data.big))))}}`,
		"join with a huge separator":     `{{$x := join .data.big .data.list}}`,
		"printf of data per item":        `{{range .data.list}}{{$x := printf "%v%v%v" $.data $.data $.data}}{{end}}`,
		"print of data per item":         `{{range .data.list}}{{$x := print $.data.big $.data.big}}{{end}}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			tm, err := ParseTemplate("title", src)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			b := NewBudget(context.Background(), TemplateTimeLimit)
			start := time.Now()
			out := ExecuteTemplate(tm, b, data, nil)
			took := time.Since(start)
			if b.Err() == nil && !strings.Contains(out, "not allowed") {
				t.Fatalf("rendered without hitting a limit: %.100q", out)
			}
			if took > 3*TemplateTimeLimit {
				t.Fatalf("took %s", took)
			}
			if b.Err() != nil {
				if out != "" {
					t.Errorf("a stopped render returned %.100q", out)
				}
				if again := ExecuteTemplate(tm, b, data, nil); again != "" {
					t.Errorf("a spent budget rendered %.100q", again)
				}
			}
		})
	}
}

// TestTemplateBudgetEndsWithItsContext: a cancelled context (shutdown) or
// a deadline ends the render at the next step, whatever the template still
// has to do.
func TestTemplateBudgetEndsWithItsContext(t *testing.T) {
	list := make([]any, 300)
	for i := range list {
		list[i] = json.Number("1")
	}
	tm, err := ParseTemplate("title", `{{range .data.list}}{{range $.data.list}}{{end}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"data": map[string]any{"list": list}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := NewBudget(ctx, time.Hour)
	ExecuteTemplate(tm, b, data, nil)
	if !errors.Is(b.Err(), context.Canceled) {
		t.Fatalf("cancelled: Err = %v", b.Err())
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	b = NewBudget(ctx, time.Hour)
	ExecuteTemplate(tm, b, data, nil)
	if !errors.Is(b.Err(), ErrTemplateBudget) && !errors.Is(b.Err(), context.DeadlineExceeded) {
		t.Fatalf("past its deadline: Err = %v", b.Err())
	}
}
