package transfer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// transferInto sends paths to out over loopback QUIC and returns the
// receiver's stats.
func transferInto(t *testing.T, out string, overwrite bool, paths ...string) Stats {
	t.Helper()
	sc, rc := loopbackConns(t)
	m, sources, _, err := BuildManifest(context.Background(), paths, DefaultChunkSize, nil)
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
	st, err := Receive(ctx, rc, ReceiveOptions{OutDir: out, Overwrite: overwrite,
		Accept: func(context.Context, *Manifest) (bool, error) { return true, nil }})
	if serr := <-errc; err != nil || serr != nil {
		t.Fatalf("receive: %v; send: %v", err, serr)
	}
	return st
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestReceiveContinuesFolder: a folder that already holds some of the
// offer's files exactly (an earlier, interrupted run) is received into,
// not beside: files in place are not sent again, a file in the way with
// other content is kept and the new one saved beside it, and nothing is
// left in the partial store.
func TestReceiveContinuesFolder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "docs")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	writeRandomFile(t, filepath.Join(src, "a.bin"), 3<<20+5)
	writeRandomFile(t, filepath.Join(src, "sub", "b.bin"), 4000)
	writeRandomFile(t, filepath.Join(src, "sub", "c.bin"), 5000)
	out := t.TempDir()
	first := transferInto(t, out, false, src)
	if first.Skipped != 0 {
		t.Fatalf("first run skipped %d bytes", first.Skipped)
	}
	// The user changed c.bin on the receiving side since; b.bin is gone.
	if err := os.WriteFile(filepath.Join(out, "docs", "sub", "c.bin"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(out, "docs", "sub", "b.bin"))

	second := transferInto(t, out, false, src)
	if want := int64(3<<20 + 5); second.Skipped != want {
		t.Errorf("second run skipped %d bytes, want %d (a.bin, in place)", second.Skipped, want)
	}
	if second.Moved != 4000+5000 {
		t.Errorf("second run received %d bytes, want %d (b.bin and c.bin)", second.Moved, 4000+5000)
	}
	if got := entries(t, out); len(got) != 1 || got[0] != "docs" {
		t.Fatalf("download folder holds %q, want only docs", got)
	}
	if got := readFile(t, filepath.Join(out, "docs", "sub", "c.bin")); got != "mine" {
		t.Errorf("the user's c.bin was replaced: %q", got)
	}
	for _, f := range []string{"a.bin", "sub/b.bin"} {
		if readFile(t, filepath.Join(out, "docs", f)) != readFile(t, filepath.Join(src, f)) {
			t.Errorf("%s differs", f)
		}
	}
	if readFile(t, filepath.Join(out, "docs", "sub", "c (1).bin")) != readFile(t, filepath.Join(src, "sub", "c.bin")) {
		t.Error("the new c.bin was not saved beside the user's as c (1).bin")
	}
}

// TestReceiveUnrelatedFolderKeptApart: an existing folder of the same name
// holding none of the offer's files is left alone, the offer saved beside
// it as "name (1)".
func TestReceiveUnrelatedFolderKeptApart(t *testing.T) {
	src := filepath.Join(t.TempDir(), "docs")
	os.MkdirAll(src, 0o755)
	writeRandomFile(t, filepath.Join(src, "a.bin"), 1000)
	out := t.TempDir()
	os.MkdirAll(filepath.Join(out, "docs"), 0o755)
	os.WriteFile(filepath.Join(out, "docs", "a.bin"), []byte("other"), 0o644)
	st := transferInto(t, out, false, src)
	if st.Skipped != 0 {
		t.Errorf("skipped %d bytes of an unrelated folder", st.Skipped)
	}
	if readFile(t, filepath.Join(out, "docs", "a.bin")) != "other" {
		t.Error("the existing folder was written into")
	}
	if readFile(t, filepath.Join(out, "docs (1)", "a.bin")) != readFile(t, filepath.Join(src, "a.bin")) {
		t.Error("the offer is not in docs (1)")
	}
}

// TestReceiveFileAlreadyThere: receiving a file that is already in place
// (same content, size and time) sends nothing and makes no copy, with or
// without Overwrite.
func TestReceiveFileAlreadyThere(t *testing.T) {
	src := filepath.Join(t.TempDir(), "f.bin")
	writeRandomFile(t, src, 2<<20+1)
	for _, overwrite := range []bool{false, true} {
		out := t.TempDir()
		transferInto(t, out, overwrite, src)
		st := transferInto(t, out, overwrite, src)
		if st.Skipped != 2<<20+1 || st.Moved != 0 {
			t.Errorf("overwrite %v: skipped %d, received %d bytes; want all skipped", overwrite, st.Skipped, st.Moved)
		}
		if got := entries(t, out); len(got) != 1 || got[0] != "f.bin" {
			t.Errorf("overwrite %v: download folder holds %q, want only f.bin", overwrite, got)
		}
	}
}
