package api

import (
	"bytes"
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of every route. It is written by hand,
// and the end-to-end tests hold every response they get against it, so a
// handler that answers what the document does not say fails them.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// openAPIRoutes serves GET /v1/openapi.json, without auth: the document
// says nothing a client may not know before it has a token.
func (s *Server) openAPIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openAPI)
	})
}
