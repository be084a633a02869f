//go:build linux

package transfer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestTransferManyFilesLowFDLimit sends a folder of 5,000 files through
// the whole engine over real QUIC on loopback with at most 256 file
// descriptors for both sides together: neither side may hold a descriptor
// per file.
func TestTransferManyFilesLowFDLimit(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	const n = 5000
	for i := range n {
		sub := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Appendf(nil, "file %d\n", i)
		if i%1000 == 0 {
			body = bytes.Repeat(body, 300_000) // a few multi-chunk files among them
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.txt", i)), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	sc, rc := loopbackConns(t)
	lowerFDLimit(t, 256)
	send, recv := transferOnce(t, sc, rc, []string{src}, out, DefaultChunkSize, DefaultStreams)
	if send.Files != n || recv.Files != n {
		t.Fatalf("sent %d, received %d files, want %d", send.Files, recv.Files, n)
	}
	for i := range n {
		rel := filepath.Join(fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d.txt", i))
		want, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, "tree", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs after the transfer (err %v)", rel, err)
		}
	}
}
