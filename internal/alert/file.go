package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// FileRule is one rule of a rules file: a rule and the project it belongs to.
type FileRule struct {
	Project string `json:"project"`
	Rule
	Enabled *bool `json:"enabled"`
}

// LoadFile reads a rules file: a JSON array of rules, each with its
// "project". The whole file is checked before anything is applied, and an
// error names the entry and the field.
func LoadFile(path string) ([]FileRule, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var rules []FileRule
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i := range rules {
		fr := &rules[i]
		if fr.Project == "" {
			return nil, fmt.Errorf("%s: rule %d: project: is required", path, i)
		}
		fr.Rule.Enabled = fr.Enabled == nil || *fr.Enabled
		if err := fr.Rule.Normalize(); err != nil {
			return nil, fmt.Errorf("%s: rule %d (%q): %w", path, i, fr.Name, err)
		}
		key := fr.Project + "\x00" + fr.Name
		if seen[key] {
			return nil, fmt.Errorf("%s: rule %d: name: %q appears twice for project %s", path, i, fr.Name, fr.Project)
		}
		seen[key] = true
	}
	return rules, nil
}

// ApplyFile makes the rules of a rules file so: each is created, or, when
// its project has a rule of that name, that rule is updated to it. Rules
// not in the file are left alone.
func (s *Service) ApplyFile(ctx context.Context, rules []FileRule) error {
	for _, fr := range rules {
		existing, err := s.List(ctx, fr.Project)
		if err != nil {
			return err
		}
		id := ""
		for _, r := range existing {
			if r.Name == fr.Name {
				id = r.ID
			}
		}
		if id == "" {
			_, err = s.Create(ctx, fr.Project, fr.Rule)
		} else {
			_, err = s.Update(ctx, fr.Project, id, fr.Rule)
		}
		if err != nil {
			return fmt.Errorf("rule %q of project %s: %w", fr.Name, fr.Project, err)
		}
	}
	return nil
}
