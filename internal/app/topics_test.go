package app_test

import (
	"net/http"
	"testing"

	"carrier/internal/app/apptest"
	"carrier/internal/store/storetest"
)

// TestTopicsREST drives /v1/topics, the REST face of the topics the SNS
// protocol creates.
func TestTopicsREST(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			c := apptest.Start(t, e, apptest.Options{})
			r := c.Admin("POST", "/v1/topics", map[string]any{"name": "orders.fifo", "fifo": true, "content_based_deduplication": true,
				"attributes": map[string]string{"DisplayName": "Orders"}, "tags": map[string]string{"team": "ops"}})
			if r.Status != http.StatusCreated || r.Data()["event_type"] != "sns.orders.fifo" || r.Data()["fifo"] != true ||
				r.Data()["content_based_deduplication"] != true {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("POST", "/v1/topics", map[string]any{"name": "orders.fifo", "fifo": true, "content_based_deduplication": true}); r.Status != http.StatusCreated {
				t.Fatalf("create again: %d %s", r.Status, r.Body)
			}
			for _, body := range []map[string]any{{"name": "bad name"}, {"name": "x.fifo"}, {}, {"name": "x", "attributes": map[string]string{"Nope": "1"}}} {
				if r := c.Admin("POST", "/v1/topics", body); r.Status != http.StatusBadRequest || r.ErrorCode() != "validation_error" {
					t.Fatalf("create %v: %d %s", body, r.Status, r.Body)
				}
			}
			if l := c.Admin("GET", "/v1/topics", nil).List(); len(l) != 1 || l[0]["name"] != "orders.fifo" {
				t.Fatalf("list: %v", l)
			}
			if r := c.Admin("GET", "/v1/topics/orders.fifo", nil); r.Status != 200 || r.Data()["attributes"].(map[string]any)["DisplayName"] != "Orders" {
				t.Fatalf("get: %d %s", r.Status, r.Body)
			}
			_, other := c.NewProject("other")
			if r := c.Do("GET", "/v1/topics/orders.fifo", other, nil); r.Status != http.StatusNotFound {
				t.Fatalf("another project's topic: %d %s", r.Status, r.Body)
			}
			if r := c.Do("DELETE", "/v1/topics/orders.fifo", other, nil); r.Status != http.StatusNotFound {
				t.Fatalf("delete another project's topic: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("DELETE", "/v1/topics/orders.fifo", nil); r.Status != 200 {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
			if r := c.Admin("GET", "/v1/topics/orders.fifo", nil); r.Status != http.StatusNotFound || r.ErrorCode() != "not_found" {
				t.Fatalf("get deleted: %d %s", r.Status, r.Body)
			}
		})
	}
}
