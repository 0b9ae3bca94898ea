package api

import "net/http"

// pageRoutes serves the operations page at /.
func (s *Server) pageRoutes(mux *http.ServeMux) {}
