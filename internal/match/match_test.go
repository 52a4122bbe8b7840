package match

import (
	"fmt"
	"slices"
	"testing"

	"carrier/internal/store"
)

func TestTypeMatches(t *testing.T) {
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"scrape.completed", "scrape.completed", true},
		{"scrape.completed", "scrape.failed", false},
		{"*", "anything.at.all", true},
		{"scrape.*", "scrape.failed", true},
		{"scrape.*", "scraper.failed", false},
		{"scrape.*", "crawl.completed", false},
	}
	for _, tt := range tests {
		if got := TypeMatches(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("TypeMatches(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

func TestIndexMatch(t *testing.T) {
	ix := NewIndex([]store.Subscription{
		{ID: "a", ProjectID: "p1", Active: true, Scope: "all", EventTypes: []string{"task.executed"}},
		{ID: "b", ProjectID: "p1", Active: true, Scope: "specific", SubjectIDs: []string{"t1"}, EventTypes: []string{"task.*"}},
		{ID: "c", ProjectID: "p1", Active: false, Scope: "all", EventTypes: []string{"*"}},
		{ID: "d", ProjectID: "p2", Active: true, Scope: "all", EventTypes: []string{"*"}},
	})
	tests := []struct {
		project, typ, subject string
		want                  []string
	}{
		// c is inactive and still matches: its deliveries wait until it is activated.
		{"p1", "task.executed", "t1", []string{"a", "b", "c"}},
		{"p1", "task.executed", "t2", []string{"a", "c"}},
		{"p1", "task.failed", "t1", []string{"b", "c"}},
		{"p1", "crawl.completed", "", []string{"c"}},
		{"p2", "crawl.completed", "", []string{"d"}},
		{"p3", "crawl.completed", "", nil},
	}
	for _, tt := range tests {
		if got := ix.Match(tt.project, Event{Type: tt.typ, Subject: tt.subject}); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s, %s, %s) = %v, want %v", tt.project, tt.typ, tt.subject, got, tt.want)
		}
	}
}

func TestIndexMatchFilterPolicies(t *testing.T) {
	subs := []store.Subscription{
		{ID: "failures", ProjectID: "p", EventTypes: []string{"task.*"}, FilterScope: "body",
			FilterPolicy: []byte(`{"status":["failed","expired"]}`)},
		{ID: "expensive", ProjectID: "p", EventTypes: []string{"task.*"}, FilterScope: "attributes",
			FilterPolicy: []byte(`{"price":[{"numeric":[">",0.002]}]}`)},
		{ID: "everything", ProjectID: "p", EventTypes: []string{"*"}},
	}
	ix := NewIndex(subs)
	cases := []struct {
		ev   Event
		want []string
	}{
		{Event{Type: "task.solved", Data: []byte(`{"status":"solved"}`)}, []string{"everything"}},
		{Event{Type: "task.failed", Data: []byte(`{"status":"failed"}`)}, []string{"failures", "everything"}},
		{Event{Type: "task.solved", Data: []byte(`{"status":"solved"}`), Attributes: map[string]string{"price": "0.003"}}, []string{"expensive", "everything"}},
		{Event{Type: "task.solved", Data: []byte(`not json`), Attributes: map[string]string{"price": "0.001"}}, []string{"everything"}},
	}
	for _, c := range cases {
		if got := ix.Match("p", c.ev); !slices.Equal(got, c.want) {
			t.Errorf("Match(%+v) = %v, want %v", c.ev, got, c.want)
		}
	}
}

// BenchmarkIndexMatch1000 measures matching one event against 1,000
// subscriptions of a project that all want its type, each with its own
// filter policy (half on attributes, half on the body).
func BenchmarkIndexMatch1000(b *testing.B) {
	subs := make([]store.Subscription, 1000)
	for i := range subs {
		scope, policy := "attributes", fmt.Sprintf(`{"status":["failed","expired"],"method":[{"prefix":"user"}],"price":[{"numeric":[">",%g]}]}`, 0.00001*float64(i))
		if i%2 == 1 {
			scope = "body"
			policy = fmt.Sprintf(`{"status":["failed"],"task":{"method":[{"prefix":"user"}],"cost":[{"numeric":[">=",%g]}]}}`, 0.00001*float64(i))
		}
		subs[i] = store.Subscription{ID: fmt.Sprint(i), ProjectID: "p", EventTypes: []string{"task.*"}, FilterScope: scope, FilterPolicy: []byte(policy)}
	}
	ix := NewIndex(subs)
	ev := Event{Type: "task.failed", Subject: "t1", Attributes: map[string]string{"status": "failed", "method": "userrecaptcha", "price": "0.003"},
		Data: []byte(`{"status":"failed","task":{"method":"userrecaptcha","cost":0.003},"error_code":"ERROR_CAPTCHA_UNSOLVABLE"}`)}
	if n := len(ix.Match("p", ev)); n == 0 {
		b.Fatal("nothing matched")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ix.Match("p", ev)
	}
}
