package testenv

import "syscall"

// sysProcAttr makes a started service die with the test process, so that a
// test binary killed by `go test -timeout` or ^C leaves no server behind on
// its ports. (The signal follows the thread that started the child; Go only
// ends threads of goroutines that exit while locked to one, which the
// starting goroutines never are.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
