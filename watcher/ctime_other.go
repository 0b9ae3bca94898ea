//go:build !linux

package watcher

import "io/fs"

// movedSinceWritten cannot tell here: a file that appears waits the quiet
// period like any other.
func movedSinceWritten(fs.FileInfo) bool { return false }
