package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of this package's routes,
// written by hand. openapi_test.go fails when a route, a field of a resource
// or an error code is in the handlers and not in the document, or the other
// way round.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document served at GET /v1/openapi.json.
func OpenAPI() []byte { return openAPIDocument }

// serveOpenAPI answers GET /v1/openapi.json, without an API key: the
// document describes the API, not a project's data.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDocument)
}
