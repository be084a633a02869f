//go:build linux

package transfer

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPlaceDirect: a one-chunk file lands at its destination with its
// data, mode and modification time, and nothing else appears in the folder.
func TestPlaceDirect(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "notes.txt")
	data := []byte("ferry carries this one chunk\n")
	mtime := time.Unix(1_700_000_000, 123456789)
	ok, err := placeDirect(directFile{dest: dest, perm: 0o640, mtime: mtime, data: data})
	if err != nil || !ok {
		t.Skipf("no unnamed files here (ok %v, err %v)", ok, err)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	st, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	if !st.ModTime().Equal(mtime) {
		t.Errorf("modified %v, want %v", st.ModTime(), mtime)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries in the folder, want 1", len(ents))
	}
}

// TestPlaceDirectNeverReplaces: a file that appeared at the destination is
// kept as it was, the error says so, and no stray file is left.
func TestPlaceDirectNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "taken.txt")
	if err := os.WriteFile(dest, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok, err := placeDirect(directFile{dest: dest, perm: 0o644, mtime: time.Now(), data: []byte("theirs")})
	if ok {
		t.Fatal("placed over an existing file")
	}
	if err == nil {
		t.Skip("no unnamed files here")
	}
	if !errors.Is(err, fs.ErrExist) || KindOf(err) != KindBadPath {
		t.Fatalf("error %v (kind %v), want fs.ErrExist and bad_path", err, KindOf(err))
	}
	if got, _ := os.ReadFile(dest); string(got) != "mine" {
		t.Fatalf("existing file now holds %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries in the folder, want 1", len(ents))
	}
}

// TestDirectEligible: only one-chunk files with content of their own and
// nothing held from an earlier run are placed directly.
func TestDirectEligible(t *testing.T) {
	const cs = 64
	small, twin1, twin2 := []byte("small"), []byte("twin"), []byte("twin")
	big := bytes.Repeat([]byte("b"), 3*cs)
	m := &Manifest{ChunkSize: cs, Files: []FileEntry{
		entryFor("small", small, cs), entryFor("twin1", twin1, cs), entryFor("twin2", twin2, cs),
		entryFor("big", big, cs), {Path: "dir", Dir: true}, entryFor("empty", nil, cs),
	}}
	s, err := OpenPartialStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	partials := make([]*PartialFile, len(m.Files))
	content := make([]Hash, len(m.Files))
	for i := range m.Files {
		fe := &m.Files[i]
		if fe.Dir || fe.Size == 0 {
			continue
		}
		if partials[i], err = s.Open(fe, cs); err != nil {
			t.Fatal(err)
		}
		defer partials[i].Close()
		content[i] = fe.ContentID()
	}
	got := directEligible(m, partials, content)
	want := []bool{true, false, false, false, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: eligible %v, want %v", m.Files[i].Path, got[i], want[i])
		}
	}
}
