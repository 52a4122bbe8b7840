package match

import (
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
		if got := ix.Match(tt.project, tt.typ, tt.subject); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s, %s, %s) = %v, want %v", tt.project, tt.typ, tt.subject, got, tt.want)
		}
	}
}
