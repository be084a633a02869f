//go:build linux

package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"
)

// alignedCopy returns a copy of b in a buffer aligned for direct I/O.
func alignedCopy(b []byte) []byte {
	buf := make([]byte, len(b)+uncachedAlign)
	skip := (uncachedAlign - int(uintptr(unsafe.Pointer(&buf[0]))%uncachedAlign)) % uncachedAlign
	out := buf[skip : skip+len(b)]
	copy(out, b)
	return out
}

// TestPartialWritesUncached: aligned chunks go to the part file with
// direct I/O where the file system takes it, the short last chunk turns it
// off for good, and the file that lands is byte for byte the data.
func TestPartialWritesUncached(t *testing.T) {
	out := t.TempDir()
	probe, err := os.Create(filepath.Join(out, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	direct := setUncached(probe, true)
	probe.Close()
	if !direct {
		t.Skipf("the file system of %s takes no direct I/O", out)
	}
	s, _ := OpenPartialStore(out)
	data := randBytes(21, 3*testChunk+1000)
	f := testFile("u.bin", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	for i := range 3 {
		if err := p.WriteChunk(i, alignedCopy(chunkOf(data, i))); err != nil {
			t.Fatal(err)
		}
		p.MarkVerified(i)
	}
	if p.st.uncached.on == nil || p.st.uncached.off {
		t.Fatal("aligned chunks were not written uncached")
	}
	if err := p.WriteChunk(3, alignedCopy(chunkOf(data, 3))); err != nil {
		t.Fatalf("the short last chunk: %v", err)
	}
	p.MarkVerified(3)
	if p.st.uncached.on != nil || !p.st.uncached.off {
		t.Fatal("the short last chunk left direct I/O on")
	}
	dest := filepath.Join(out, "u.bin")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

// TestUncachedUnalignedBufferIsCached: a chunk from an unaligned buffer is
// written through the page cache, not refused.
func TestUncachedUnalignedBufferIsCached(t *testing.T) {
	b := alignedCopy(make([]byte, 2*uncachedAlign))
	if !uncachedAligned(b[:uncachedAlign], 0) {
		t.Fatal("an aligned buffer is not aligned")
	}
	if uncachedAligned(b[1:uncachedAlign+1], 0) || uncachedAligned(b[:uncachedAlign], 512) || uncachedAligned(b[:100], 0) {
		t.Fatal("an unaligned write counts as aligned")
	}
}
