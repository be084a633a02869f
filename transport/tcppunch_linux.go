package transport

import (
	"fmt"
	"net"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// threadNetnsPath names the network namespace of the calling thread.
const threadNetnsPath = "/proc/thread-self/ns/net"

// tcpNetns is the network namespace a tcpPort was opened in. A socket
// belongs to the namespace of the thread that created it, for its whole
// life; a goroutine runs on whatever thread the scheduler gives it, and
// only a goroutine locked to a thread that was moved into another
// namespace (what a test does with netlab's Namespace.Do) runs outside the
// process's own. So a punch started from such a goroutine would open its
// dial sockets, made on goroutines of its own, in the wrong namespace.
// Instead the port pins its namespace: every dial checks, on a locked
// thread, whether that thread is in the port's namespace, and if not dials
// from a goroutine locked to a thread that enters it for the dial. In a
// process that never leaves its namespace (every ferry process) the check
// always matches and costs one stat per connect attempt. Entering another
// namespace needs CAP_SYS_ADMIN, which is only ever the case in tests.
type tcpNetns struct {
	dev, ino uint64 // identify the namespace (its nsfs inode)

	mu sync.RWMutex // guards fd against close while a dial enters
	fd int          // open on the namespace, -1 once closed
}

// openPinned runs listen, which opens the port's listener, and returns
// the namespace that listener is in: the calling thread's, locked for the
// duration. Without /proc it returns nil: dials then happen wherever they
// run, as on other systems.
func openPinned(listen func() error) (*tcpNetns, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := listen(); err != nil {
		return nil, err
	}
	fd, err := unix.Open(threadNetnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil
	}
	return &tcpNetns{dev: uint64(st.Dev), ino: st.Ino, fd: fd}, nil // Dev is 32 bits on some platforms
}

// dial runs dial with its socket created in the namespace n.
func (n *tcpNetns) dial(dial func() (net.Conn, error)) (net.Conn, error) {
	if n == nil {
		return dial()
	}
	runtime.LockOSThread()
	var st unix.Stat_t
	if err := unix.Stat(threadNetnsPath, &st); err != nil || (uint64(st.Dev) == n.dev && st.Ino == n.ino) {
		// In the port's namespace (or unable to tell: then the thread's
		// own is the only one in reach). The thread stays locked until
		// the socket exists.
		defer runtime.UnlockOSThread()
		return dial()
	}
	runtime.UnlockOSThread()
	return n.dialInside(dial)
}

// dialInside runs dial on a goroutine locked to a thread moved into n for
// the dial. The thread moves back afterwards; should that fail, it stays
// locked and ends with the goroutine, so no other goroutine ever runs in
// the wrong namespace. The goroutine has ended when dialInside returns.
func (n *tcpNetns) dialInside(dial func() (net.Conn, error)) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open(threadNetnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("transport: naming this thread's network namespace: %w", err)}
			return
		}
		defer unix.Close(home)
		if err := n.enter(); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("transport: entering the TCP port's network namespace: %w", err)}
			return
		}
		c, err := dial()
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// enter moves the calling (locked) thread into n.
func (n *tcpNetns) enter() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.fd < 0 {
		return net.ErrClosed
	}
	return unix.Setns(n.fd, unix.CLONE_NEWNET)
}

// close releases the namespace handle.
func (n *tcpNetns) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
}
