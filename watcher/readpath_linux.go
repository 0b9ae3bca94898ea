package watcher

import (
	"os"
	"path/filepath"
	"strconv"
)

// readPath is a path the producer can open to read exactly the file f is
// open on: /proc/self/fd/N names the open file itself, not a path that
// could be swapped after openInput checked it. Without /proc, the checked
// path inside the inbox.
func (w *Watcher) readPath(f *os.File, rel string) string {
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	a, err1 := os.Stat(p)
	b, err2 := f.Stat()
	if err1 == nil && err2 == nil && os.SameFile(a, b) {
		return p
	}
	return filepath.Join(w.o.Dir, rel)
}
