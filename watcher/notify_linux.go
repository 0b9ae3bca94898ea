package watcher

import (
	"bytes"
	"log/slog"
	"unsafe"

	"golang.org/x/sys/unix"
)

// notify calls renamed with the name of every file renamed into dir, until
// stop is called. Scanning finds every file anyway; this only lets a file
// written elsewhere and renamed in be taken without the quiet period.
func notify(dir string, renamed func(name string), log *slog.Logger) (stop func()) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		log.Warn("inotify unavailable; renamed files wait the quiet period too", "err", err)
		return func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		log.Warn("inotify unavailable; renamed files wait the quiet period too", "err", err)
		return func() {}
	}
	// A pipe wakes the poll below when it is time to stop.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		unix.Close(fd)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				continue
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				end := off + unix.SizeofInotifyEvent + int(ev.Len)
				if end > n {
					break
				}
				name := buf[off+unix.SizeofInotifyEvent : end]
				if i := bytes.IndexByte(name, 0); i >= 0 {
					name = name[:i]
				}
				if ev.Mask&unix.IN_MOVED_TO != 0 && len(name) > 0 {
					renamed(string(name))
				}
				off = end
			}
		}
	}()
	return func() {
		unix.Write(p[1], []byte{0})
		<-done
		unix.Close(p[0])
		unix.Close(p[1])
		unix.Close(fd)
	}
}
