package api

import (
	"embed"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"skuflow/config"
)

// web holds the operations page: plain HTML, CSS and JavaScript, served
// as they are (no build step, nothing from another site).
//
//go:embed web
var web embed.FS

// pageRoutes serves the operations page at / (its files under /ui/) and
// GET /v1/types, the record types and their aggregates the page shows.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	files, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the folder is embedded: it is there
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	mux.Handle("GET /{$}", pageHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})))
	mux.Handle("GET /ui/", pageHeaders(http.StripPrefix("/ui/", http.FileServerFS(files))))
	mux.Handle("GET /v1/types", s.auth.require(config.ScopeRead, http.HandlerFunc(s.listTypes)))
}

// pageHeaders keeps the page to its own files: scripts, styles and
// connections from this origin only, never framed by another site, no
// referrer (the feed's URL may carry a token). Embedded files have no
// modification time, so browsers ask again rather than cache a stale one.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// typeAnswer is a record type as GET /v1/types shows it.
type typeAnswer struct {
	Name       string            `json:"name"`
	Topic      string            `json:"topic"`
	Key        []string          `json:"key"`
	Identity   bool              `json:"identity,omitempty"`
	Columns    []columnAnswer    `json:"columns"`
	Aggregates []aggregateAnswer `json:"aggregates"`
}

type columnAnswer struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Nullable bool   `json:"nullable,omitempty"`
}

// aggregateAnswer is one declared aggregate: its view (the name GET
// /v1/aggregates/{name} takes), grouped by By, counting keys or summing
// Sum, in column As.
type aggregateAnswer struct {
	Name string   `json:"name"`
	By   []string `json:"by"`
	Sum  string   `json:"sum,omitempty"`
	As   string   `json:"as"`
}

// listTypes answers the record types the API serves, by name, with their
// key, columns and aggregates.
func (s *Server) listTypes(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Types []typeAnswer `json:"types"`
	}{Types: []typeAnswer{}}
	for _, t := range s.o.Types {
		sc := t.Schema
		a := typeAnswer{Name: sc.Name, Topic: sc.Topic, Key: append([]string{}, sc.Key...), Identity: sc.Identity,
			Columns: []columnAnswer{}, Aggregates: []aggregateAnswer{}}
		for _, c := range sc.Columns {
			a.Columns = append(a.Columns, columnAnswer{Name: c.Name, Type: string(c.Type), Required: c.Required, Nullable: c.Nullable})
		}
		for _, g := range sc.Aggregates {
			a.Aggregates = append(a.Aggregates, aggregateAnswer{Name: g.Name, By: append([]string{}, g.By...), Sum: g.Sum, As: g.As})
		}
		out.Types = append(out.Types, a)
	}
	slices.SortFunc(out.Types, func(a, b typeAnswer) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}
