package transfer

import (
	"os"
	"sync"
)

// Uncached writes. A received chunk is written with direct I/O (O_DIRECT
// on Linux) when the file system allows it: the data goes from the
// chunk's buffer to the disk without a copy into the page cache. That copy
// was the receiver's largest single cost (measured in issue 15: 1 to 3 CPU
// seconds per GiB on a virtual machine, where every fresh page-cache page
// is also a fresh host page, against 0.1 to 0.2 s for the same data
// written directly), and a file being received rarely needs to stay in
// memory: it is not read again before it is in place, and caching it
// would push the user's working set out. Each write waits for the device,
// which the receiver's parallel streams hide (a disk takes 1 MiB in about
// a millisecond; the network brings it in five).
//
// Direct I/O wants the buffer, offset and length aligned to the device's
// block; chunks are 1 MiB at multiples of 1 MiB from page-aligned
// buffers, so only a file's last, short chunk is not. Once a write cannot
// be direct (that last chunk, or a file system that refuses direct I/O),
// the state goes back to cached writes for good; so do verifying and
// moving the file into place, which read it with ordinary, unaligned reads.

// uncachedAlign is the alignment direct writes are held to: the largest
// logical block size in common use.
const uncachedAlign = 4096

// uncachedFile switches one part file between direct and cached writes.
// Its methods are safe for concurrent use.
type uncachedFile struct {
	mu  sync.Mutex
	off bool     // cached for good
	on  *os.File // the descriptor O_DIRECT is set on now, if any
}

// prepare readies f for a write of b at off and reports whether that write
// goes uncached. A write that cannot be direct turns direct I/O off first,
// for good, so it never meets O_DIRECT.
func (u *uncachedFile) prepare(f *os.File, b []byte, off int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.off && uncachedAligned(b, off) {
		if u.on == f {
			return true
		}
		if setUncached(f, true) {
			u.on = f
			return true
		}
	}
	u.stopLocked()
	return false
}

// stop turns direct I/O off for good (f may be closed since: then there
// is nothing to turn off).
func (u *uncachedFile) stop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopLocked()
}

func (u *uncachedFile) stopLocked() {
	u.off = true
	if u.on != nil {
		setUncached(u.on, false)
		u.on = nil
	}
}
