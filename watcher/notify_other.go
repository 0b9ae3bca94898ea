//go:build !linux

package watcher

import "log/slog"

// notify does nothing where inotify is missing: files renamed in wait the
// quiet period like any other.
func notify(string, func(string), *slog.Logger) (stop func()) { return func() {} }
