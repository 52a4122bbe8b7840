package sqs

import (
	"bytes"
	"carrier/internal/sigv4"
	"encoding/base64"
	"encoding/xml"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// The SQS query protocol (form-encoded Action=…&Version=2012-11-05, answered
// in XML), as older SDKs and botocore with SQS's query model speak it. Its
// requests run the same actions as the JSON protocol: only decoding the input
// and encoding the output (and errors) differ.
//
// Wire names follow SQS's query model: a struct field is sent under its
// `query` tag's first part (else its name); lists and maps are flattened
// (Name.1, Name.2, …), map entries as Name.N.<key>/Name.N.<value> with the
// tag's second and third parts as key and value names (Name and Value when
// absent), and XML answers use the same names as elements.

const (
	// QueryVersion is the API version query-protocol requests name.
	QueryVersion = "2012-11-05"
	// QueryNamespace is the XML namespace of query-protocol answers.
	QueryNamespace = "http://queue.amazonaws.com/doc/2012-11-05/"
	formType       = "application/x-www-form-urlencoded"
)

// IsQueryRequest tells whether r is an SQS query-protocol request: a POST (or
// GET) without X-Amz-Target to / or to a queue URL path (/<project>/<queue>),
// signed for service sqs or, when not signed (to be refused), naming
// Version=2012-11-05 in its URL or, to /, in its form. It may read the body
// ahead, leaving it to be read again.
func IsQueryRequest(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodGet || r.Header.Get("X-Amz-Target") != "" || !queryPath(r.URL.Path) {
		return false
	}
	if a, err := sigv4.ParseAuthorization(r.Header.Get("Authorization")); err == nil {
		return a.Service == "sqs"
	}
	if r.URL.Query().Get("Version") == QueryVersion {
		return true
	}
	// Only a form to / is read ahead: other two-segment paths (pingbacks'
	// /callbacks/{token}) get their bodies untouched unless signed for sqs.
	if r.Method != http.MethodPost || r.Body == nil || r.URL.Path != "/" {
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != formType {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	if err != nil {
		return false
	}
	form, err := url.ParseQuery(string(head))
	return err == nil && form.Get("Version") == QueryVersion
}

// queryPath is / or a queue URL's path, /<project>/<queue>.
func queryPath(p string) bool {
	if p == "/" {
		return true
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	return len(parts) == 2 && parts[0] != "" && parts[1] != ""
}

// serveQuery answers a query-protocol request.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request, requestID string) {
	name, out, e := h.query(r)
	if e != nil {
		if e.Status >= 500 && h.Log != nil {
			h.Log.Error("sqs request failed", "action", name, "message", e.Message)
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		w.Write(encodeQueryError(e, requestID))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(encodeQueryResult(name, out, requestID))
}

func (h *Handler) query(r *http.Request) (string, any, *Error) {
	body, e := readBody(r)
	if e != nil {
		return "", nil, e
	}
	form := r.URL.Query()
	if len(bytes.TrimSpace(body)) > 0 {
		posted, err := url.ParseQuery(string(body))
		if err != nil {
			return "", nil, newErr(400, "MalformedQueryString", "", "The request body is not form-encoded: %v", err)
		}
		for k, v := range posted {
			form[k] = append(form[k], v...)
		}
	}
	c, e := h.authenticate(r, body)
	if e != nil {
		return "", nil, e
	}
	// Older SDKs send a queue's requests to its URL rather than naming it.
	if r.URL.Path != "/" && form.Get("QueueUrl") == "" {
		form.Set("QueueUrl", c.base+r.URL.EscapedPath())
	}
	name := form.Get("Action")
	if name == "" {
		return "", nil, errMissingParameter("Action")
	}
	act, e := lookup(name)
	if e != nil {
		return name, nil, e
	}
	c.decode = func(v any) *Error { return decodeQuery(form, v) }
	out, e := act(c)
	return name, out, e
}

// fieldName is a struct field's query wire name and, for a map, its entries'
// key and value names.
func fieldName(f reflect.StructField) (name, key, value string) {
	name, key, value = f.Name, "Name", "Value"
	if j, _, _ := strings.Cut(f.Tag.Get("json"), ","); j != "" && j != "-" {
		name = j
	}
	if q := f.Tag.Get("query"); q != "" {
		parts := strings.Split(q, ",")
		name = parts[0]
		if len(parts) == 3 {
			key, value = parts[1], parts[2]
		}
	}
	return name, key, value
}

// decodeQuery reads a query-protocol form into v, a pointer to an action's
// input struct. Parameters it does not know are ignored, as JSON members are.
func decodeQuery(vals url.Values, v any) *Error {
	f := queryForm{vals: vals, children: map[string]map[string]bool{}}
	for k := range vals {
		if strings.Count(k, ".") > maxDepth {
			continue // no parameter is that deep
		}
		for end := strings.IndexByte(k, '.'); end >= 0; {
			prefix, rest := k[:end], k[end+1:]
			next, _, _ := strings.Cut(rest, ".")
			if f.children[prefix] == nil {
				f.children[prefix] = map[string]bool{}
			}
			f.children[prefix][next] = true
			if i := strings.IndexByte(rest, '.'); i >= 0 {
				end += 1 + i
			} else {
				end = -1
			}
		}
	}
	return f.decodeStruct("", reflect.ValueOf(v).Elem())
}

// maxEntries bounds the entries of one list or map parameter: far more than
// any action takes (10 batch entries, 10 message attributes), few enough that
// decoding stays cheap.
const maxEntries = 100

// maxDepth is the most dots a parameter name has
// (SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1: 6).
const maxDepth = 8

// queryForm is a request's parameters with, for each dotted prefix, the
// next parts of the names under it, so that a lookup does not scan the form.
type queryForm struct {
	vals     url.Values
	children map[string]map[string]bool
}

func (f queryForm) decodeStruct(prefix string, v reflect.Value) *Error {
	t := v.Type()
	for i := range t.NumField() {
		field := t.Field(i)
		if field.Anonymous && field.Type.Kind() == reflect.Struct {
			if e := f.decodeStruct(prefix, v.Field(i)); e != nil {
				return e
			}
			continue
		}
		if !field.IsExported() {
			continue
		}
		name, key, value := fieldName(field)
		if prefix != "" {
			name = prefix + "." + name
		}
		if e := f.decodeValue(name, v.Field(i), key, value); e != nil {
			return e
		}
	}
	return nil
}

// present tells whether the form has name itself or anything under it.
func (f queryForm) present(name string) bool {
	return f.vals.Has(name) || len(f.children[name]) > 0
}

// indexes are the list or map positions under name (name.1, name.2, …), in
// order; gaps are skipped.
func (f queryForm) indexes(name string) ([]int, *Error) {
	var out []int
	for n := range f.children[name] {
		if i, err := strconv.Atoi(n); err == nil && i > 0 {
			out = append(out, i)
		}
	}
	if len(out) > maxEntries {
		return nil, errInvalidParameter("Parameter %s has %d entries; at most %d are accepted.", name, len(out), maxEntries)
	}
	sort.Ints(out)
	return out, nil
}

func (f queryForm) decodeValue(name string, v reflect.Value, key, value string) *Error {
	form := f.vals
	switch v.Kind() {
	case reflect.Pointer:
		if !f.present(name) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if e := f.decodeValue(name, p.Elem(), key, value); e != nil {
			return e
		}
		v.Set(p)
	case reflect.String:
		if form.Has(name) {
			v.SetString(form.Get(name))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if !form.Has(name) {
			return nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(form.Get(name)), 10, 64)
		if err != nil {
			return errInvalidParameter("Value %s for parameter %s is invalid. Reason: must be an integer.", form.Get(name), name)
		}
		v.SetInt(n)
	case reflect.Bool:
		if !form.Has(name) {
			return nil
		}
		b, err := strconv.ParseBool(form.Get(name))
		if err != nil {
			return errInvalidParameter("Value %s for parameter %s is invalid. Reason: must be true or false.", form.Get(name), name)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if !form.Has(name) {
				return nil
			}
			b, err := base64.StdEncoding.DecodeString(form.Get(name))
			if err != nil {
				return errInvalidParameter("Value for parameter %s is invalid. Reason: not base64.", name)
			}
			v.SetBytes(b)
			return nil
		}
		idx, e := f.indexes(name)
		if e != nil {
			return e
		}
		for _, i := range idx {
			el := reflect.New(v.Type().Elem()).Elem()
			if e := f.decodeValue(name+"."+strconv.Itoa(i), el, "Name", "Value"); e != nil {
				return e
			}
			v.Set(reflect.Append(v, el))
		}
	case reflect.Map:
		idx, e := f.indexes(name)
		if e != nil {
			return e
		}
		for _, i := range idx {
			entry := name + "." + strconv.Itoa(i)
			if !form.Has(entry + "." + key) {
				return errMissingParameter(entry + "." + key)
			}
			el := reflect.New(v.Type().Elem()).Elem()
			if e := f.decodeValue(entry+"."+value, el, "Name", "Value"); e != nil {
				return e
			}
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			v.SetMapIndex(reflect.ValueOf(form.Get(entry+"."+key)), el)
		}
	case reflect.Struct:
		return f.decodeStruct(name, v)
	}
	return nil
}

// encodeQueryResult is the XML answer to a query-protocol action:
// <ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>…, without a
// result element for actions that return nothing.
func encodeQueryResult(action string, out any, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + action + "Response xmlns=\"" + QueryNamespace + "\">")
	v := reflect.ValueOf(out)
	if v.Kind() == reflect.Struct && v.NumField() > 0 {
		b.WriteString("<" + action + "Result>")
		encodeFields(&b, v)
		b.WriteString("</" + action + "Result>")
	}
	b.WriteString("<ResponseMetadata><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ResponseMetadata></" + action + "Response>")
	return b.Bytes()
}

// encodeQueryError is an error answer in the query protocol, with its code
// (QueryCode when the JSON protocol's code differs).
func encodeQueryError(e *Error, requestID string) []byte {
	fault := "Sender"
	if e.Status >= 500 {
		fault = "Receiver"
	}
	code := e.QueryCode
	if code == "" {
		code = e.Code
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse xmlns=\"" + QueryNamespace + "\"><Error><Type>" + fault + "</Type><Code>")
	xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	xml.EscapeText(&b, []byte(e.Message))
	b.WriteString("</Message><Detail/></Error><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ErrorResponse>")
	return b.Bytes()
}

func encodeFields(b *bytes.Buffer, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			encodeFields(b, v.Field(i))
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, key, value := fieldName(f)
		omitEmpty := strings.Contains(f.Tag.Get("json"), ",omitempty")
		encodeValue(b, name, v.Field(i), key, value, omitEmpty)
	}
}

func encodeValue(b *bytes.Buffer, name string, v reflect.Value, key, value string, omitEmpty bool) {
	text := func(s string) {
		b.WriteString("<" + name + ">")
		xml.EscapeText(b, []byte(s))
		b.WriteString("</" + name + ">")
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			encodeValue(b, name, v.Elem(), key, value, false)
		}
	case reflect.String:
		if !omitEmpty || v.Len() > 0 {
			text(v.String())
		}
	case reflect.Bool:
		if !omitEmpty || v.Bool() {
			text(strconv.FormatBool(v.Bool()))
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if !omitEmpty || v.Int() != 0 {
			text(strconv.FormatInt(v.Int(), 10))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if !omitEmpty || v.Len() > 0 {
				text(base64.StdEncoding.EncodeToString(v.Bytes()))
			}
			return
		}
		for i := range v.Len() { // flattened: one element per item
			encodeValue(b, name, v.Index(i), "Name", "Value", false)
		}
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString("<" + name + ">")
			encodeValue(b, key, reflect.ValueOf(k), "", "", false)
			encodeValue(b, value, v.MapIndex(reflect.ValueOf(k)), "Name", "Value", false)
			b.WriteString("</" + name + ">")
		}
	case reflect.Struct:
		b.WriteString("<" + name + ">")
		encodeFields(b, v)
		b.WriteString("</" + name + ">")
	}
}
