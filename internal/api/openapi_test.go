package api

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"carrier/internal/alert"
	"carrier/internal/captcha"
	"carrier/internal/metrics"
)

// The tests in this file keep openapi.json and the handlers from drifting
// apart: every route the server registers is in the document and every
// operation of the document is a route; every JSON field of the handlers'
// request and response structs is a property of its schema, of a matching
// type, and the other way round; every error code the package can answer is
// in the document's ErrorCode enum, and every status a route's own code can
// answer is among its responses.

// openAPI is the part of the document the tests read.
type openAPI struct {
	OpenAPI    string                                 `json:"openapi"`
	Security   []map[string][]string                  `json:"security"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas   map[string]*jsonSchema `json:"schemas"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema *jsonSchema `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody *json.RawMessage `json:"requestBody"`
	Responses   map[string]struct {
		Ref string `json:"$ref"`
	} `json:"responses"`
}

type jsonSchema struct {
	Ref                  string                 `json:"$ref"`
	Type                 any                    `json:"type"` // a string, or a list of them
	Properties           map[string]*jsonSchema `json:"properties"`
	Required             []string               `json:"required"`
	Items                *jsonSchema            `json:"items"`
	AdditionalProperties any                    `json:"additionalProperties"`
	Enum                 []any                  `json:"enum"`
}

// types lists the schema's JSON types.
func (s *jsonSchema) types() []string {
	switch t := s.Type.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			out = append(out, v.(string))
		}
		return out
	}
	return nil
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	return &doc
}

// resolve follows a $ref to a component schema.
func (doc *openAPI) resolve(t *testing.T, s *jsonSchema) *jsonSchema {
	t.Helper()
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || doc.Components.Schemas[name] == nil {
			t.Fatalf("openapi.json: $ref %q names no schema", s.Ref)
		}
		s = doc.Components.Schemas[name]
	}
	return s
}

// fullServer is a server with every optional route turned on.
func fullServer() *Server {
	return New(Deps{Log: slog.Default(), Metrics: &metrics.Metrics{Registry: prometheus.NewRegistry()},
		Fronts: map[string]http.Handler{"GET /in.php": http.NotFoundHandler()}})
}

func TestOpenAPIIsServedWithoutAKey(t *testing.T) {
	srv := httptest.NewServer(fullServer())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if string(body) != string(OpenAPI()) {
		t.Error("GET /v1/openapi.json does not answer the embedded document")
	}
	loadOpenAPI(t)
}

// TestOpenAPIRoutes: the document's operations are exactly the server's
// routes (its own, not Fronts'), with the path parameters the patterns
// name, and security exactly on the routes that need an API key.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := fullServer()
	public := publicPatterns(t)
	inServer := map[string]bool{}
	for _, p := range s.patterns {
		inServer[p] = true
	}
	if inServer["GET /in.php"] {
		t.Error("a front's route is recorded as an API route")
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			inDoc[pattern] = true
			if !inServer[pattern] {
				t.Errorf("openapi.json has %s (%s), which the server does not route", pattern, op.OperationID)
				continue
			}
			var want, got []string
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				want = append(want, m[1])
			}
			for _, p := range op.Parameters {
				if p.In == "path" {
					got = append(got, p.Name)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: path parameters %v, want %v", pattern, got, want)
			}
			unauthenticated := op.Security != nil && len(*op.Security) == 0
			if unauthenticated != public[pattern] {
				t.Errorf("%s: needs no API key in openapi.json: %v, in the server: %v", pattern, unauthenticated, public[pattern])
			}
		}
	}
	for _, p := range s.patterns {
		if !inDoc[p] {
			t.Errorf("the server routes %s, which openapi.json does not describe", p)
		}
	}
	if len(doc.Security) != 1 || doc.Security[0]["apiKey"] == nil {
		t.Errorf("openapi.json's default security is %v, want the apiKey scheme", doc.Security)
	}
	if sc := doc.Components.SecuritySchemes["apiKey"]; sc.Type != "http" || sc.Scheme != "bearer" {
		t.Errorf("the apiKey scheme is %+v, want http bearer (Authorization: Bearer <key>)", sc)
	}
}

// publicPatterns are the routes registered with s.public (no API key).
func publicPatterns(t *testing.T) map[string]bool {
	out := map[string]bool{}
	for _, r := range parseRoutes(t) {
		if r.public {
			out[r.pattern] = true
		}
	}
	return out
}

// TestOpenAPISchemasMatchStructs: each schema's properties are the JSON
// fields of the struct the handlers decode or encode, with matching types;
// in answers, the required properties are the fields encoded every time
// (no omitempty) and a pointer without omitempty may be null.
func TestOpenAPISchemasMatchStructs(t *testing.T) {
	doc := loadOpenAPI(t)
	type answer struct{ request bool } // request bodies have no required rule
	req, res := answer{true}, answer{false}
	structs := []struct {
		schema string
		v      any
		answer
	}{
		{"Project", projectJSON{}, res},
		{"APIKey", keyJSON{}, res},
		{"ProjectRequest", projectRequest{}, req},
		{"KeyRequest", keyRequest{}, req},
		{"PublishRequest", publishRequest{}, req},
		{"Event", eventJSON{}, res},
		{"Webhook", webhookJSON{}, res},
		{"WebhookRequest", webhookRequest{}, req},
		{"RotateRequest", rotateRequest{}, req},
		{"RecoverRequest", recoverRequest{}, req},
		{"Subscription", subscriptionJSON{}, res},
		{"SubscriptionRequest", subscriptionRequest{}, req},
		{"Delivery", deliveryJSON{}, res},
		{"Attempt", attemptJSON{}, res},
		{"Task", taskJSON{}, res},
		{"TaskEntry", taskEntryJSON{}, res},
		{"TaskRequest", taskRequest{}, req},
		{"DeadLetter", deadLetterJSON{}, res},
		{"Topic", topicJSON{}, res},
		{"TopicRequest", topicRequest{}, req},
		{"Queue", queueJSON{}, res},
		{"QueueCounts", queueCountsJSON{}, res},
		{"QueueRequest", queueRequest{}, req},
		{"Message", messageJSON{}, res},
		{"SendMessage", sendMessageJSON{}, req},
		{"SendMessagesRequest", sendMessagesRequest{}, req},
		{"ReceiveRequest", receiveRequest{}, req},
		{"VisibilityRequest", visibilityRequest{}, req},
		{"QueueRedriveRequest", queueRedriveRequest{}, req},
		{"SQSCredential", sqsCredentialJSON{}, res},
		{"AlertRule", alert.Rule{}, res},
		{"AlertRuleRequest", ruleRequest{}, req},
		{"AlertTier", alert.Tier{}, res},
		{"AlertSchedule", alert.Schedule{}, res},
		{"Alert", alertJSON{}, res},
		{"AlertTransition", alertTransitionJSON{}, res},
		{"Silence", alert.Silence{}, res},
		{"SilenceRequest", alert.Silence{}, req},
		{"SilenceMatcher", alert.Matcher{}, res},
		{"CaptchaSite", captcha.Site{}, res},
		{"CaptchaSiteRequest", siteRequest{}, req},
		{"CaptchaKeys", captcha.Keys{}, res},
		{"CaptchaSettings", captcha.Settings{}, res},
		{"VerifyRequest", captcha.VerifyRequest{}, req},
		{"Verdict", captcha.Verdict{}, res},
	}
	covered := map[string]bool{}
	for _, c := range structs {
		s := doc.Components.Schemas[c.schema]
		if s == nil {
			t.Errorf("openapi.json has no schema %s", c.schema)
			continue
		}
		typ := reflect.TypeOf(c.v)
		covered[typ.Name()] = true
		checkStruct(t, doc, c.schema, s, typ, c.request)
	}
	// The error shape's inner object is the Error struct.
	checkStruct(t, doc, "Error.error", doc.Components.Schemas["Error"].Properties["error"], reflect.TypeOf(Error{}), false)

	// Every request and resource struct of this package has its schema.
	for _, name := range packageTypes(t) {
		if (strings.HasSuffix(name, "JSON") || strings.HasSuffix(name, "Request")) && !covered[name] {
			t.Errorf("type %s is not checked against a schema of openapi.json: add it to this test's list (and its schema)", name)
		}
	}
}

// jsonField is one JSON field of a struct.
type jsonField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

// jsonFields are a struct's JSON fields as encoding/json sees them: tag
// names, embedded structs' fields promoted, the outer of two equal names
// winning.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	seen := map[string]bool{}
	var embedded []reflect.Type
	walk := func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				embedded = append(embedded, f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, jsonField{name: name, typ: f.Type, omitempty: strings.Contains(opts, "omitempty")})
		}
	}
	walk(typ)
	for len(embedded) > 0 {
		e := embedded[0]
		embedded = embedded[1:]
		walk(e)
	}
	return out
}

var (
	rawMessageType = reflect.TypeOf(json.RawMessage{})
	timeType       = reflect.TypeOf(time.Time{})
	durationType   = reflect.TypeOf(alert.Duration(0))
)

func checkStruct(t *testing.T, doc *openAPI, where string, s *jsonSchema, typ reflect.Type, request bool) {
	t.Helper()
	s = doc.resolve(t, s)
	if !slices.Contains(s.types(), "object") {
		t.Errorf("%s: schema type %v, want object (Go %s)", where, s.Type, typ)
		return
	}
	fields := jsonFields(typ)
	var want, required []string
	for _, f := range fields {
		want = append(want, f.name)
		if !f.omitempty {
			required = append(required, f.name)
		}
		p := s.Properties[f.name]
		if p == nil {
			t.Errorf("%s: field %q of %s is not in openapi.json", where, f.name, typ)
			continue
		}
		checkType(t, doc, where+"."+f.name, p, f.typ, request, !request && !f.omitempty)
	}
	for name := range s.Properties {
		if !slices.Contains(want, name) {
			t.Errorf("%s: openapi.json has property %q, which %s does not have", where, name, typ)
		}
	}
	if !request {
		got := slices.Clone(s.Required)
		sort.Strings(got)
		sort.Strings(required)
		if !slices.Equal(got, required) {
			t.Errorf("%s: required %v, want the fields always encoded %v", where, got, required)
		}
	}
	if s.AdditionalProperties != false {
		t.Errorf("%s: additionalProperties should be false: %s has no other fields", where, typ)
	}
}

// checkType compares a property's schema with a Go field type. alwaysSent
// is true for answers' fields without omitempty, where a nil pointer is
// encoded as null; request is true inside request bodies.
func checkType(t *testing.T, doc *openAPI, where string, p *jsonSchema, typ reflect.Type, request, alwaysSent bool) {
	t.Helper()
	if p.Ref != "" {
		p = doc.resolve(t, p)
	}
	types := p.types()
	nullable := slices.Contains(types, "null")
	if typ.Kind() == reflect.Pointer {
		if alwaysSent && !nullable {
			t.Errorf("%s: Go %s is encoded as null when nil; the schema's type %v lacks null", where, typ, p.Type)
		}
		typ = typ.Elem()
	} else if nullable && typ.Kind() != reflect.Slice && typ.Kind() != reflect.Map && typ != rawMessageType {
		t.Errorf("%s: schema type %v allows null, Go %s is never null", where, p.Type, typ)
	}
	var want string
	switch {
	case typ == rawMessageType || typ.Kind() == reflect.Interface:
		return // any JSON value; the schema may say which
	case typ == timeType || typ == durationType:
		want = "string"
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		want = "number"
	case typ.Kind() == reflect.Slice:
		want = "array"
	case typ.Kind() == reflect.Map:
		want = "object"
	case typ.Kind() == reflect.Struct:
		checkStruct(t, doc, where, p, typ, request)
		return
	default:
		t.Errorf("%s: no rule for Go %s", where, typ)
		return
	}
	if !slices.Contains(types, want) {
		t.Errorf("%s: schema type %v, want %s (Go %s)", where, p.Type, want, typ)
		return
	}
	if typ.Kind() == reflect.Slice && p.Items != nil && typ.Elem() != rawMessageType {
		checkType(t, doc, where+"[]", p.Items, typ.Elem(), request, !request)
	}
}

// --- reading the package's source ---

func parsePackage(t *testing.T) []*ast.File {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// packageTypes are the names of the package's type declarations.
func packageTypes(t *testing.T) []string {
	var out []string
	for _, f := range parsePackage(t) {
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				out = append(out, ts.Name.Name)
			}
			return true
		})
	}
	return out
}

type route struct {
	pattern string
	public  bool   // registered with s.public
	handler string // the method or function that answers, "" for a function literal or other handler
}

// parseRoutes reads the patterns routes() registers, and their handlers.
func parseRoutes(t *testing.T) []route {
	t.Helper()
	var out []route
	for _, f := range parsePackage(t) {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "routes" {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 2 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "handle" && sel.Sel.Name != "public") {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok {
					t.Fatalf("routes: a pattern that is not a literal: %T", call.Args[0])
				}
				pattern, _ := strconv.Unquote(lit.Value)
				r := route{pattern: pattern, public: sel.Sel.Name == "public"}
				h := call.Args[1]
				if wrap, ok := h.(*ast.CallExpr); ok && len(wrap.Args) == 1 {
					if w, ok := wrap.Fun.(*ast.SelectorExpr); ok && w.Sel.Name == "adminOnly" {
						r.handler = "adminOnly " // checked below as a second handler
						h = wrap.Args[0]
					}
				}
				switch h := h.(type) {
				case *ast.SelectorExpr:
					r.handler += h.Sel.Name
				case *ast.Ident:
					r.handler += h.Name
				}
				out = append(out, r)
				return false
			})
		}
	}
	if len(out) == 0 {
		t.Fatal("routes() registers nothing that this test can read")
	}
	return out
}

// sourceErrors are the codes of the package's Error literals and Code…
// constants, the statuses of the literals by the function they are in, and
// the calls each function makes to the package's other functions.
type sourceErrors struct {
	consts map[string]string       // Code… constant name to code
	codes  map[string]bool         // every code the package answers with
	status map[string]map[int]bool // function to the statuses its own literals answer
	pairs  map[int]map[string]bool // status to the codes literals answer it with
	calls  map[string]map[string]bool
}

var httpStatus = map[string]int{
	"StatusBadRequest": 400, "StatusUnauthorized": 401, "StatusForbidden": 403, "StatusNotFound": 404,
	"StatusMethodNotAllowed": 405, "StatusConflict": 409, "StatusRequestEntityTooLarge": 413,
	"StatusUnprocessableEntity": 422, "StatusTooManyRequests": 429, "StatusInternalServerError": 500,
	"StatusServiceUnavailable": 503,
}

func readErrors(t *testing.T) sourceErrors {
	t.Helper()
	files := parsePackage(t)
	src := sourceErrors{consts: map[string]string{}, codes: map[string]bool{}, status: map[string]map[int]bool{},
		pairs: map[int]map[string]bool{}, calls: map[string]map[string]bool{}}
	funcs := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				funcs[d.Name.Name] = true
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok || d.Tok != token.CONST {
						continue
					}
					for i, name := range vs.Names {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "Code") && lit.Kind == token.STRING {
							code, _ := strconv.Unquote(lit.Value)
							src.consts[name.Name] = code
							src.codes[code] = true
						}
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fn.Name.Name
			if src.status[name] == nil {
				src.status[name], src.calls[name] = map[int]bool{}, map[string]bool{}
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					switch f := n.Fun.(type) {
					case *ast.Ident:
						if funcs[f.Name] {
							src.calls[name][f.Name] = true
						}
					case *ast.SelectorExpr:
						if x, ok := f.X.(*ast.Ident); ok && x.Name == "s" && funcs[f.Sel.Name] {
							src.calls[name][f.Sel.Name] = true
						}
					}
				case *ast.CompositeLit:
					if id, ok := n.Type.(*ast.Ident); !ok || id.Name != "Error" {
						return true
					}
					status, code := 0, ""
					for _, e := range n.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch kv.Key.(*ast.Ident).Name {
						case "Status":
							sel, ok := kv.Value.(*ast.SelectorExpr)
							if !ok || httpStatus[sel.Sel.Name] == 0 {
								t.Errorf("%s: an Error literal's Status is not one of this test's http.Status… names", name)
								continue
							}
							status = httpStatus[sel.Sel.Name]
						case "Code":
							switch v := kv.Value.(type) {
							case *ast.BasicLit:
								code, _ = strconv.Unquote(v.Value)
								src.codes[code] = true
							case *ast.Ident:
								code = src.consts[v.Name] // "" for a variable
							}
						}
					}
					if status != 0 {
						src.status[name][status] = true
						if code != "" {
							if src.pairs[status] == nil {
								src.pairs[status] = map[string]bool{}
							}
							src.pairs[status][code] = true
						}
					}
				}
				return true
			})
		}
	}
	return src
}

// statuses is what a function can answer through its own code and the
// package functions it calls, short of fail's mapping of other packages'
// errors (which any route may reach).
func (src sourceErrors) statuses(fn string) map[int]bool {
	out := map[int]bool{}
	seen := map[string]bool{"fail": true, "ServeHTTP": true}
	var walk func(string)
	walk = func(fn string) {
		if seen[fn] {
			return
		}
		seen[fn] = true
		for s := range src.status[fn] {
			out[s] = true
		}
		for c := range src.calls[fn] {
			if !notAnswered[fn+" "+c] {
				walk(c)
			}
		}
	}
	walk(fn)
	return out
}

// notAnswered are calls whose errors a function does not answer with.
var notAnswered = map[string]bool{
	"redriveDeadLetters redriveError": true, // each failure is an entry of "failed" in a 200
}

// TestOpenAPIErrorCodes: the ErrorCode enum is exactly the codes the
// package answers with; each status's shared response lists the codes
// answered with that status; and every operation lists the statuses its
// handler's own code can answer, besides the ones every route can.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	src := readErrors(t)

	var enum []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Enum {
		enum = append(enum, v.(string))
	}
	for code := range src.codes {
		if !slices.Contains(enum, code) {
			t.Errorf("error code %q is answered by the API and missing from openapi.json's ErrorCode enum", code)
		}
	}
	for _, code := range enum {
		if !src.codes[code] {
			t.Errorf("openapi.json's ErrorCode enum has %q, which the API never answers", code)
		}
	}

	// Shared responses per status, named as in the document.
	inResponses := map[string]bool{}
	for name, r := range doc.Components.Responses {
		s := doc.resolve(t, r.Content["application/json"].Schema)
		codes := s.Properties["error"].Properties["code"].Enum
		for _, c := range codes {
			inResponses[c.(string)] = true
		}
		for status, name2 := range statusResponses {
			if name2 == name {
				for code := range src.pairs[status] {
					if !slices.Contains(codes, any(code)) {
						t.Errorf("response %s (%d) does not list code %q, which the API answers with %d", name, status, code, status)
					}
				}
			}
		}
	}
	for _, code := range enum {
		if !inResponses[code] {
			t.Errorf("code %q is in no shared error response of openapi.json", code)
		}
	}

	// Every operation lists what its route can answer.
	for _, r := range parseRoutes(t) {
		method, path, _ := strings.Cut(r.pattern, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			continue // TestOpenAPIRoutes reports it
		}
		need := map[int]bool{}
		for _, h := range strings.Fields(r.handler) {
			for s := range src.statuses(h) {
				need[s] = true
			}
		}
		if !r.public {
			for s := range src.statuses("authenticate") {
				need[s] = true
			}
			need[http.StatusInternalServerError] = true // any failure, a panic
			need[http.StatusServiceUnavailable] = true  // the store is down
		}
		if op.RequestBody != nil {
			need[http.StatusBadRequest], need[http.StatusRequestEntityTooLarge] = true, true
		}
		if strings.Contains(path, "{") {
			need[http.StatusNotFound] = true
		}
		for s := range need {
			resp, ok := op.Responses[strconv.Itoa(s)]
			if !ok {
				t.Errorf("%s can answer %d, which openapi.json does not list", r.pattern, s)
				continue
			}
			if want := "#/components/responses/" + statusResponses[s]; resp.Ref != want {
				t.Errorf("%s: response %d is %q, want %q", r.pattern, s, resp.Ref, want)
			}
		}
	}
}

// statusResponses name the document's shared error response of each status.
var statusResponses = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
	409: "Conflict", 413: "PayloadTooLarge", 422: "Unprocessable", 429: "RateLimited", 500: "InternalError",
	503: "Unavailable",
}
