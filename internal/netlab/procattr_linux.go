package netlab

import "syscall"

// dieWithParent makes a child process get SIGKILL when the test process
// that started it dies, so no daemon outlives a killed test run.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
