package transfer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOutDirChosenAfterAccept: the folder picked in the offer dialog (after
// the offer was seen) is where the files land.
func TestOutDirChosenAfterAccept(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f.bin")
	writeRandomFile(t, src, 3<<20)
	first, chosen := filepath.Join(dir, "first"), filepath.Join(dir, "chosen")
	os.MkdirAll(first, 0o755)
	os.MkdirAll(chosen, 0o755)
	sc, rc := loopbackConns(t)
	m, sources, _, err := BuildManifest(context.Background(), []string{src}, DefaultChunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Send(ctx, sc, SendOptions{Manifest: m, Sources: sources})
		errc <- err
	}()
	seen := false
	_, err = Receive(ctx, rc, ReceiveOptions{
		OutDir:            first,
		Accept:            func(context.Context, *Manifest) (bool, error) { seen = true; return true, nil },
		OutDirAfterAccept: func() string { return chosen },
	})
	if err != nil || <-errc != nil {
		t.Fatalf("receive %v", err)
	}
	if !seen {
		t.Fatal("Accept was not asked")
	}
	if _, err := os.Stat(filepath.Join(chosen, "f.bin")); err != nil {
		t.Fatalf("file not in the folder chosen after accepting: %v", err)
	}
	if entries, _ := os.ReadDir(first); len(entries) != 0 {
		t.Fatalf("the first folder got %d entries", len(entries))
	}
}
