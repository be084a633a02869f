//go:build unix

package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestManifestOfAMappedFile: a file large enough to be hashed from a
// memory mapping gets the same chunk hashes as one read with pread.
func TestManifestOfAMappedFile(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(31, (mapMinChunks+2)*testChunk+123)
	p := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := openView(p, int64(len(data)), testChunk)
	if err != nil {
		t.Fatal(err)
	}
	mapped := v.mapped != nil
	v.close()
	if !mapped {
		t.Skip("this system did not map the file")
	}
	m, _, _, err := BuildManifestWith(context.Background(), []string{p}, BuildOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	if want := wantChunks(data, testChunk); !slices.Equal(m.Files[0].Chunks, want) {
		t.Fatal("chunk hashes of the mapped file differ from the data's")
	}
}

// TestMappedFileThatShrinksIsAnError: a file truncated while it is hashed
// from a mapping makes the read fault; that is an error, not a crash.
func TestMappedFileThatShrinksIsAnError(t *testing.T) {
	dir := t.TempDir()
	size := int64(2 * mapMinChunks * testChunk)
	p := filepath.Join(dir, "shrinks.bin")
	if err := os.WriteFile(p, randBytes(32, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := openView(p, size, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	if v.mapped == nil {
		t.Skip("this system did not map the file")
	}
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	func() {
		defer faultsAsErrors()()
		_, err = v.hashChunk(size-testChunk, testChunk, nil)
	}()
	if !errors.Is(err, errSourceShrank) {
		t.Fatalf("hashing past the new end: %v, want errSourceShrank", err)
	}
}
