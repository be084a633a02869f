//go:build !linux

package netlab

import "syscall"

// dieWithParent has no equivalent here; the lab runs on Linux only.
func dieWithParent() *syscall.SysProcAttr { return nil }
