package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skuflow/config"
	"skuflow/schemas"
)

// The page and its files come from the binary, with headers that keep it
// to its own origin; GET /v1/types tells it the types and aggregates.
func TestPage(t *testing.T) {
	s := New(Options{Config: config.Default(), Types: map[string]*Type{"products": {Schema: schemas.Products}}})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	for _, c := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/ui/app.js" defer></script>`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "textContent"},
		{"/ui/app.css", "text/css; charset=utf-8", ".bar-fill"},
		{"/ui/icon.svg", "image/svg+xml", "<svg"},
	} {
		code, body, h := getText(t, hs.URL+c.path)
		if code != http.StatusOK || h.Get("Content-Type") != c.contentType || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s holding %q", c.path, code, h.Get("Content-Type"), c.contentType, c.contains)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
	if code, _, _ := getText(t, hs.URL+"/ui/nothing.js"); code != http.StatusNotFound {
		t.Errorf("GET /ui/nothing.js: %d, want 404", code)
	}
	if code, body, _ := getText(t, hs.URL+"/v1/nothing"); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /v1/nothing: %d %s, want the API's 404", code, body)
	}

	code, body, _ := getText(t, hs.URL+"/v1/types")
	var got struct{ Types []typeAnswer }
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || len(got.Types) != 1 {
		t.Fatalf("GET /v1/types: %d %s", code, body)
	}
	p := got.Types[0]
	if p.Name != "products" || strings.Join(p.Key, ",") != "sku" || len(p.Aggregates) != 1 || p.Aggregates[0].Name != "products_agg" ||
		p.Aggregates[0].As != "no_of_products" || p.Aggregates[0].By[0] != "name" {
		t.Fatalf("GET /v1/types: %s", body)
	}
}

// Nothing in the page's script puts data into the DOM as HTML.
func TestPageEscapes(t *testing.T) {
	for _, name := range []string{"web/app.js", "web/index.html"} {
		b, err := web.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s: set text with textContent or el()", name, bad)
			}
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s names another site: the page loads nothing from elsewhere", name)
		}
	}
}
