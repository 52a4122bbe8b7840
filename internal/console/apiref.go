package console

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"carrier/internal/api"
)

type operation struct {
	Method, Path, Summary, ID string
	Public                    bool // needs no API key
}

type apiData struct {
	Title, Version string
	Operations     []operation
}

// reference reads the OpenAPI document the API serves: its operations, by
// path and then method.
func reference() (apiData, error) {
	var doc struct {
		Info struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		return apiData{}, err
	}
	out := apiData{Title: doc.Info.Title, Version: doc.Info.Version}
	order := map[string]int{"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if _, ok := order[method]; !ok {
				continue // parameters, summary…
			}
			var op struct {
				Summary     string            `json:"summary"`
				OperationID string            `json:"operationId"`
				Security    []json.RawMessage `json:"security"`
			}
			json.Unmarshal(raw, &op)
			out.Operations = append(out.Operations, operation{Method: strings.ToUpper(method), Path: path, Summary: op.Summary,
				ID: op.OperationID, Public: op.Security != nil && len(op.Security) == 0})
		}
	}
	sort.Slice(out.Operations, func(i, j int) bool {
		a, b := out.Operations[i], out.Operations[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return order[strings.ToLower(a.Method)] < order[strings.ToLower(b.Method)]
	})
	return out, nil
}

func (c *Console) apiPage(w http.ResponseWriter, r *http.Request) {
	data, err := reference()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "api", "API reference", data, http.StatusOK)
}
