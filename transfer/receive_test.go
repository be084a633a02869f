package transfer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOutDirChosenAfterAccept: the folder picked in the offer dialog (after
// the offer was seen) is where the files land, and the time spent deciding
// is not counted in either side's Elapsed (it would lower the rate shown).
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
	type result struct {
		st  Stats
		err error
	}
	sent := make(chan result, 1)
	go func() {
		st, err := Send(ctx, sc, SendOptions{Manifest: m, Sources: sources})
		sent <- result{st, err}
	}()
	var decided time.Time
	rst, err := Receive(ctx, rc, ReceiveOptions{
		OutDir:            first,
		Accept:            func(context.Context, *Manifest) (bool, error) { decided = time.Now(); return true, nil },
		OutDirAfterAccept: func() string { return chosen },
	})
	s := <-sent
	if err != nil || s.err != nil {
		t.Fatalf("receive %v, send %v", err, s.err)
	}
	if decided.IsZero() {
		t.Fatal("Accept was not asked")
	}
	since := time.Since(decided)
	if rst.Elapsed <= 0 || rst.Elapsed > since || s.st.Elapsed <= 0 || s.st.Elapsed > since {
		t.Errorf("Elapsed: receiver %v, sender %v; %v since the offer was accepted: the wait for the decision was counted", rst.Elapsed, s.st.Elapsed, since)
	}
	if _, err := os.Stat(filepath.Join(chosen, "f.bin")); err != nil {
		t.Fatalf("file not in the folder chosen after accepting: %v", err)
	}
	if entries, _ := os.ReadDir(first); len(entries) != 0 {
		t.Fatalf("the first folder got %d entries", len(entries))
	}
}
