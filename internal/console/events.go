package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"carrier/internal/ingest"
	"carrier/internal/store"
)

// The event catalogue looks at the project's newest catalogueScan events
// (so its cost does not grow with the event table) and lists up to
// catalogueTypes types seen among them.
const (
	catalogueScan  = 5000
	catalogueTypes = 200
)

type eventTypeView struct {
	Example store.Event
	Data    string // the example's payload, indented
}

type eventsData struct {
	Types []eventTypeView
	Scan  int
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	evs, err := c.d.Store.EventTypeExamples(r.Context(), project(r), catalogueScan, catalogueTypes)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := eventsData{Scan: catalogueScan}
	for _, e := range evs {
		data.Types = append(data.Types, eventTypeView{Example: e, Data: indentJSON(e.Data)})
	}
	c.render(w, r, "events", "Event catalogue", data, http.StatusOK)
}

func indentJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSpace(b.String())
}

// eventTest publishes the catalogue's example of a type again, as a new
// event, through the publisher POST /v1/events uses: it fans out to every
// subscription that matches it.
func (c *Console) eventTest(w http.ResponseWriter, r *http.Request) {
	typ, pid := r.PostFormValue("type"), project(r)
	evs, err := c.d.Store.EventTypeExamples(r.Context(), pid, catalogueScan, catalogueTypes)
	if err != nil {
		c.back(w, r, "/events", "", err.Error())
		return
	}
	var example *store.Event
	for i := range evs {
		if evs[i].Type == typ {
			example = &evs[i]
		}
	}
	if example == nil {
		c.back(w, r, "/events", "", fmt.Sprintf("No example of type %q among the latest events.", typ))
		return
	}
	if err := c.d.PublishLimit.Allow(pid, 1); err != nil {
		c.back(w, r, "/events", "", err.Error())
		return
	}
	res, err := c.d.Publisher.Publish(r.Context(), ingest.Input{ProjectID: pid, Type: example.Type, Subject: example.Subject,
		Data: example.Data, Attributes: ingest.Attributes(example.Attributes), CapFanout: true})
	if err != nil {
		c.back(w, r, "/events", "", err.Error())
		return
	}
	c.back(w, r, "/events", fmt.Sprintf("Test %s published as event %s: %d deliveries.", typ, res.EventID, res.Deliveries), "")
}
