package watcher

import (
	"log/slog"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// notify calls on with the name and operation of every event in dir (not
// in its subfolders) until stop is called. Scanning finds every file
// anyway; events only let a file renamed in be taken without the quiet
// period, and wake a scan sooner. If the system has no events to give,
// the watcher polls alone.
func notify(dir string, on func(name string, op fsnotify.Op), log *slog.Logger) (stop func()) {
	nw, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("file system events unavailable; renamed files wait the quiet period too", "err", err)
		return func() {}
	}
	if err := nw.Add(dir); err != nil {
		nw.Close()
		log.Warn("file system events unavailable; renamed files wait the quiet period too", "dir", dir, "err", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-nw.Events:
				if !ok {
					return
				}
				on(filepath.Base(ev.Name), ev.Op)
			case err, ok := <-nw.Errors:
				if !ok {
					return
				}
				// An overflow loses events, not files: scans find them.
				log.Warn("file system events", "dir", dir, "err", err)
			}
		}
	}()
	return func() {
		nw.Close()
		<-done
	}
}
