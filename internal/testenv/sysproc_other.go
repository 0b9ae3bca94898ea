//go:build !linux

package testenv

import "syscall"

// sysProcAttr has nothing to add where Pdeathsig does not exist; t.Cleanup
// still stops every service.
func sysProcAttr() *syscall.SysProcAttr { return nil }
