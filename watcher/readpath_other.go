//go:build !linux

package watcher

import (
	"os"
	"path/filepath"
)

// readPath is the checked path inside the inbox. Unlike on Linux, where the
// producer reads the file openInput opened, a link swapped into the inbox
// between the check and the producer's open is not caught here.
func (w *Watcher) readPath(_ *os.File, rel string) string {
	return filepath.Join(w.o.Dir, rel)
}
