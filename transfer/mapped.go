package transfer

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
)

// Hashing a file for the manifest reads every byte of it once before the
// transfer starts, and the receiver waits for that when it connects right
// away. Large files are hashed from a read-only memory mapping where the
// system has one: the hash reads the page cache in place instead of having
// each chunk copied out by pread first (1 GiB: 0.33 s instead of 0.45 s on
// two cores, issue 15). Small files keep pread, where a mapping costs more
// than the copy.
//
// A mapped file that shrinks under us (another program truncates it)
// makes reading past its new end fault: the hashing goroutine turns that
// fault into an error (debug.SetPanicOnFault) instead of a crash.

// mapMinChunks is the size, in chunks, from which a file is mapped.
const mapMinChunks = 8

// sourceView reads one source file's chunks for hashing.
type sourceView struct {
	f      *os.File
	mapped []byte // the whole file, or nil: read with pread
}

// openView opens path, expected to be size bytes, and maps it when it is
// at least mapMinChunks chunks long and the system allows.
func openView(path string, size, chunkSize int64) (*sourceView, error) {
	f, err := openSource(path, size)
	if err != nil {
		return nil, err
	}
	v := &sourceView{f: f}
	if size >= mapMinChunks*chunkSize {
		v.mapped = mapFile(f, size) // nil where it cannot be mapped
	}
	return v, nil
}

// errSourceShrank reports a mapped file that became shorter while hashed.
var errSourceShrank = errors.New("the file became shorter while it was read")

// hashChunk hashes n bytes at off, reading them into buf when the file is
// not mapped. The caller's goroutine must run with debug.SetPanicOnFault
// (faultsAsErrors) when the file may be mapped.
func (v *sourceView) hashChunk(off, n int64, buf []byte) (h Hash, err error) {
	if v.mapped == nil {
		if _, err := v.f.ReadAt(buf[:n], off); err != nil {
			return Hash{}, err
		}
		return HashChunk(buf[:n]), nil
	}
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = fmt.Errorf("%w (at byte %d)", errSourceShrank, off)
		}
	}()
	b := v.mapped[off : off+n]
	h = HashChunk(b)
	// Done with these pages: drop them from this process's mapping (they
	// stay in the page cache), so its resident size stays at a few chunks
	// however large the file.
	releaseMapped(b)
	return h, nil
}

// close unmaps and closes the file.
func (v *sourceView) close() {
	if v.mapped != nil {
		unmapFile(v.mapped)
		v.mapped = nil
	}
	v.f.Close()
}

// faultsAsErrors turns memory faults on the calling goroutine into panics
// that hashChunk recovers as errors; the function it returns restores the
// goroutine's setting: defer faultsAsErrors()().
func faultsAsErrors() (restore func()) {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}
