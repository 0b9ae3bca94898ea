package watcher

import (
	"io/fs"
	"syscall"
	"time"
)

// movedSinceWritten reports whether a file's inode changed after its last
// write: a rename sets the change time (ctime) and leaves the modification
// time, while writing sets both. With an event saying the name appeared,
// it tells a file renamed in, complete, from one created in place and
// still being written (file system events call both "create").
func movedSinceWritten(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && time.Unix(st.Ctim.Unix()).After(info.ModTime())
}
