//go:build unix

package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func TestIsZero(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{nil, true},
		{[]byte{0}, true},
		{[]byte{1}, false},
		{make([]byte, 1<<20), true},
		{append(make([]byte, 1<<20), 1), false},
		{append([]byte{1}, make([]byte, 1<<20)...), false},
		{bytes.Repeat([]byte{7}, 4096), false},
	} {
		if got := isZero(c.b); got != c.want {
			t.Errorf("isZero(%d bytes, first %v) = %v, want %v", len(c.b), c.b[:min(len(c.b), 1)], got, c.want)
		}
	}
}

// TestPartialZeroChunksStaySparse receives a file of zero chunks with one
// data chunk: the zero chunks must take no disk space in the finished
// file, and a zero chunk written where stale data lay must still read back
// as zeros (a hole is punched, not merely skipped).
func TestPartialZeroChunksStaySparse(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("hole punching is implemented on Linux")
	}
	const cs = 1 << 20
	data := make([]byte, 16*cs)
	copy(data[5*cs:], bytes.Repeat([]byte("ferry"), cs/5))
	fe := entryFor("disk.img", data, cs)
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Open(&fe, cs)
	if err != nil {
		t.Fatal(err)
	}
	// Stale bytes where a zero chunk belongs (say, left by a crash of
	// an older ferry): writing the zero chunk must clear them.
	if err := p.WriteChunk(5, data[5*cs:6*cs]); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteChunk(3, bytes.Repeat([]byte{0xff}, cs)); err != nil {
		t.Fatal(err)
	}
	for i := range 16 {
		if err := p.WriteChunk(i, data[i*cs:(i+1)*cs]); err != nil {
			t.Fatal(err)
		}
		if err := p.MarkVerified(i); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(out, "disk.img")
	if err := p.Finalize(dest); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	p.Close()
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (err %v)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dest, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 2*cs {
		t.Errorf("the file occupies %d bytes on disk for one 1 MiB data chunk: zero chunks were written", used)
	}
}
