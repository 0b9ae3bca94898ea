package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"skuflow/api"
	"skuflow/config"
)

// spec is the API's OpenAPI document, loaded and checked once.
var spec = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI 3 document: %w", err)
	}
	return doc, nil
})

var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := spec()
	if err != nil {
		return nil, err
	}
	// The page and the event stream are text, held to their schema
	// (type: string) as it is.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	return legacy.NewRouter(doc)
})

// operation is one operation of the document.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

// scope is the scope the operation says it needs, "" for none.
func (o operation) scope() string {
	s, _ := o.op.Extensions["x-required-scope"].(string)
	return s
}

// secured reports whether the operation needs a token.
func (o operation) secured(doc *openapi3.T) bool {
	if o.op.Security != nil {
		return len(*o.op.Security) > 0
	}
	return len(doc.Security) > 0
}

// url fills the operation's path parameters with values that route.
func (o operation) url() string {
	return strings.NewReplacer("{type}", "products", "{id}", "20260101T000000Z-000000000000", "{key}", "a", "{name}", "products_agg").Replace(o.path)
}

func operations(t testing.TB) []operation {
	t.Helper()
	doc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, op})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

// client calls the API and holds every answer, status, headers and body,
// against the OpenAPI document: a response the document does not allow is
// an error, so the document cannot drift from the handlers.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(base, token string) *client {
	return &client{base: base, token: token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// as returns a client with another token.
func (c *client) as(token string) *client { return &client{base: c.base, token: token, http: c.http} }

// answer is one response.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (a answer) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.Body, &m)
	return m
}

// Err returns the body's error object (code, message, job, records).
func (a answer) Err() map[string]any {
	e, _ := a.JSON()["error"].(map[string]any)
	return e
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.Status, bytes.TrimSpace(a.Body)) }

// try sends a request and checks the response against the document. A
// transport error or a response the document does not allow is an error.
// contentType may be empty.
func (c *client) try(method, path, contentType string, body []byte) (answer, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read the body: %w", method, path, err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if err := conforms(req, a); err != nil {
		return a, fmt.Errorf("%s %s answered %s, which the OpenAPI document does not allow: %w", method, path, a, err)
	}
	return a, nil
}

// call is try that fails the test on an error.
func (c *client) call(t testing.TB, method, path, contentType string, body []byte) answer {
	t.Helper()
	a, err := c.try(method, path, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// conforms checks a response to req against the document: its route and
// method are documented, its status is one the operation lists, and its
// headers and body match that response's schema.
func conforms(req *http.Request, a answer) error {
	router, err := specRouter()
	if err != nil {
		return err
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no operation for %s %s: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 a.Status,
		Header:                 a.Header,
		Body:                   io.NopCloser(bytes.NewReader(a.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	if _, err := spec(); err != nil {
		t.Fatal(err)
	}
	if _, err := specRouter(); err != nil {
		t.Fatal(err)
	}
	for _, o := range operations(t) {
		if o.op.OperationID == "" || o.op.Summary == "" {
			t.Errorf("%s %s: needs an operationId and a summary", o.method, o.path)
		}
		if s := o.scope(); s != "" && s != config.ScopeRead && s != config.ScopeWrite {
			t.Errorf("%s %s: x-required-scope %q is not a scope", o.method, o.path, s)
		}
	}
}

// route is one route the handlers register: its pattern as the mux takes
// it, and the scope its auth.require asks for ("" for none).
type route struct {
	method, path, scope string
}

// registeredRoutes reads the routes out of the api package's source: every
// mux.Handle and mux.HandleFunc with a method pattern. Reading the source
// rather than asking the mux (which cannot list its patterns) keeps a route
// added anywhere in the package from going undocumented.
func registeredRoutes(t *testing.T) []route {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []route
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				return true // a pattern for every method: the /v1/ catch-all
			}
			out = append(out, route{method, path, requiredScope(call.Args[1])})
			return true
		})
	}
	return out
}

// requiredScope finds the scope of a handler wrapped in auth.require,
// directly or through a helper declared in the package (read :=
// func(h) http.Handler { return s.auth.require(config.ScopeRead, h) }).
func requiredScope(handler ast.Node) string {
	return scopeIn(handler, map[ast.Node]bool{})
}

func scopeIn(handler ast.Node, seen map[ast.Node]bool) string {
	seen[handler] = true
	scope := ""
	ast.Inspect(handler, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if id, ok := call.Fun.(*ast.Ident); ok && id.Obj != nil {
			if decl, ok := id.Obj.Decl.(ast.Node); ok && !seen[decl] {
				if s := scopeIn(decl, seen); s != "" {
					scope = s
				}
			}
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "require" && len(call.Args) > 0 {
			if s, ok := call.Args[0].(*ast.SelectorExpr); ok {
				switch s.Sel.Name {
				case "ScopeRead":
					scope = config.ScopeRead
				case "ScopeWrite":
					scope = config.ScopeWrite
				}
			}
		}
		return true
	})
	return scope
}

// docPath turns a mux pattern's path into the document's: {key...} is
// {key}, and "/{$}" is "/".
func docPath(p string) string {
	p = strings.TrimSuffix(p, "{$}")
	return regexp.MustCompile(`\{(\w+)\.\.\.\}`).ReplaceAllString(p, "{$1}")
}

// Every route the handlers register is documented with the scope it
// needs, and every documented operation is one the handlers register.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]route{}
	for _, r := range registeredRoutes(t) {
		p := docPath(r.path)
		if strings.HasSuffix(p, "/") && p != "/" {
			continue // a subtree of static files of the page
		}
		registered[r.method+" "+p] = r
		item := doc.Paths.Value(p)
		if item == nil || item.GetOperation(r.method) == nil {
			t.Errorf("%s %s is served but not in openapi.json", r.method, r.path)
			continue
		}
		o := operation{r.method, p, item.GetOperation(r.method)}
		if o.scope() != r.scope {
			t.Errorf("%s %s: the handler requires scope %q, openapi.json says %q", r.method, r.path, r.scope, o.scope())
		}
		if o.secured(doc) != (r.scope != "") {
			t.Errorf("%s %s: the handler requires scope %q, openapi.json says security %v", r.method, r.path, r.scope, o.op.Security)
		}
	}
	for _, o := range operations(t) {
		if _, ok := registered[o.method+" "+o.path]; !ok {
			t.Errorf("openapi.json has %s %s, which no handler serves", o.method, o.path)
		}
	}
}

// tokenConfig returns a configuration with one token of each scope set.
func tokenConfig(t testing.TB) (cfg config.Config, writer, reader string) {
	t.Helper()
	cfg = config.Default()
	writer, wsum := api.NewToken()
	reader, rsum := api.NewToken()
	cfg.API.Tokens = []config.Token{
		{Name: "writer", SHA256: wsum, Scopes: []string{config.ScopeRead, config.ScopeWrite}},
		{Name: "reader", SHA256: rsum, Scopes: []string{config.ScopeRead}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, writer, reader
}

// The handlers, without Kafka or ClickHouse behind them: every secured
// operation answers 401 without a token and 403 with a token lacking its
// scope (so the route exists, and its scope is enforced), in the shape the
// document gives; the document itself is served without a token.
func TestOpenAPIAuthAnswers(t *testing.T) {
	cfg, _, reader := tokenConfig(t)
	srv := httptest.NewServer(api.New(api.Options{Config: cfg}).Handler())
	defer srv.Close()
	doc, _ := spec()
	anon, readOnly := newClient(srv.URL, ""), newClient(srv.URL, reader)

	a := anon.call(t, "GET", "/v1/openapi.json", "", nil)
	if a.Status != http.StatusOK || !bytes.Equal(a.Body, api.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json without a token: %d, %d bytes", a.Status, len(a.Body))
	}
	for _, o := range operations(t) {
		if !o.secured(doc) {
			continue
		}
		a := anon.call(t, o.method, o.url(), "application/json", []byte("{}"))
		if a.Status != http.StatusUnauthorized || a.Err()["code"] != "unauthorized" || a.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a token: %s", o.method, o.url(), a)
		}
		if o.scope() != config.ScopeWrite {
			continue
		}
		a = readOnly.call(t, o.method, o.url(), "application/json", []byte("{}"))
		if a.Status != http.StatusForbidden || a.Err()["code"] != "forbidden" {
			t.Errorf("%s %s with a read token: %s", o.method, o.url(), a)
		}
	}
}

// A token's SHA-256 as config keeps it.
func tokenSum(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}
