//go:build linux

package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f in the namespace, in-process: on a goroutine locked to an OS
// thread switched into the namespace, and waits for it. Sockets that f
// creates belong to the namespace for their whole life and can be used
// from any goroutine after Do returns; that is how a test puts a UDP or
// TCP endpoint inside a lab namespace without starting a process.
// Goroutines that f starts run in the test's own namespace, so f must
// create its sockets itself (and must not call t.FailNow, as it runs on
// another goroutine). If the thread cannot be switched back, it is
// discarded rather than reused.
func (ns *Namespace) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join(netnsDir, ns.Name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it ends with this goroutine
			// instead of running other goroutines in the wrong namespace.
			errc <- fmt.Errorf("leaving namespace %s: %w", ns.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
