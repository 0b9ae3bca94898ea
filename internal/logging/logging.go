// Package logging builds the slog logger every command uses, from the log
// section of the configuration.
package logging

import (
	"io"
	"log/slog"

	"skuflow/config"
)

// New returns a logger writing to w at the configured level and format, with
// the component named on every line.
func New(w io.Writer, c config.Log, component string) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // Validate has checked it
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("component", component)
}
