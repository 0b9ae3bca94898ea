package api

import "net/http"

// openAPIRoutes serves GET /v1/openapi.json.
func (s *Server) openAPIRoutes(mux *http.ServeMux) {}
