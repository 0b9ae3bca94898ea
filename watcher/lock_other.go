//go:build !unix

package watcher

// lockDir cannot lock on this system: run one watcher per folder.
func lockDir(string) (func(), error) { return func() {}, nil }
