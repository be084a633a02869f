//go:build unix

package transfer

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestBuildManifestFollowLinks: with FollowLinks, links inside a folder send
// what they point to under the link's name — files and whole folders, also
// from outside the folder — while links to nothing and links looping back
// into their own folder are left out and listed; without it, every link is
// left out.
func TestBuildManifestFollowLinks(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	album := filepath.Join(base, "album")
	for _, d := range []string{filepath.Join(outside, "deep"), filepath.Join(album, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(album, "a.txt"), []byte("in the album"))
	write(filepath.Join(outside, "b.txt"), []byte("outside the album"))
	write(filepath.Join(outside, "deep", "c.txt"), []byte("deeper outside"))
	links := map[string]string{
		filepath.Join(album, "b-link.txt"):     filepath.Join(outside, "b.txt"),
		filepath.Join(album, "outside-link"):   outside,
		filepath.Join(album, "sub", "up"):      album, // a loop
		filepath.Join(album, "sub", "self"):    ".",   // a loop too
		filepath.Join(album, "dangling"):       filepath.Join(base, "nothing"),
		filepath.Join(outside, "deep", "back"): outside, // a loop when reached through outside-link
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("cannot make symbolic links here: %v", err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(album, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	paths := func(m *Manifest) []string {
		var ps []string
		for _, f := range m.Files {
			ps = append(ps, f.Path)
		}
		return ps
	}

	m, _, skipped, err := BuildManifestWith(context.Background(), []string{album}, BuildOptions{ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(m), []string{"album", "album/a.txt", "album/sub"}; !slices.Equal(got, want) {
		t.Errorf("without following: %q, want %q", got, want)
	}
	wantSkipped := map[string]SkipReason{"b-link.txt": SkipLink, "outside-link": SkipLink, "dangling": SkipLink, "fifo": SkipSpecial, "sub/up": SkipLink, "sub/self": SkipLink}
	checkSkipped(t, "without following", album, skipped, wantSkipped)

	m, sources, skipped, err := BuildManifestWith(context.Background(), []string{album}, BuildOptions{ChunkSize: testChunk, FollowLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"album", "album/a.txt", "album/b-link.txt",
		"album/outside-link", "album/outside-link/b.txt", "album/outside-link/deep", "album/outside-link/deep/c.txt",
		"album/sub",
	}
	if got := paths(m); !slices.Equal(got, want) {
		t.Errorf("following: %q, want %q", got, want)
	}
	i := slices.Index(paths(m), "album/b-link.txt")
	if i < 0 || m.Files[i].Dir || m.Files[i].Size != int64(len("outside the album")) || sources[i] != filepath.Join(album, "b-link.txt") {
		t.Errorf("linked file entry: %+v from %q", m.Files, sources)
	}
	wantSkipped = map[string]SkipReason{"dangling": SkipDangling, "fifo": SkipSpecial, "sub/up": SkipLoop, "sub/self": SkipLoop, "outside-link/deep/back": SkipLoop}
	checkSkipped(t, "following", album, skipped, wantSkipped)

	// BuildManifest (no options) lists the same paths as the walk without
	// following.
	_, _, paths0, err := BuildManifest(context.Background(), []string{album}, testChunk, nil)
	if err != nil || len(paths0) != 6 {
		t.Errorf("BuildManifest skipped %q (%v), want the 6 entries above", paths0, err)
	}
}

// checkSkipped compares what a walk of root left out with want (relative
// path -> reason).
func checkSkipped(t *testing.T, what, root string, got []Skipped, want map[string]SkipReason) {
	t.Helper()
	have := map[string]SkipReason{}
	for _, s := range got {
		rel, err := filepath.Rel(root, s.Path)
		if err != nil {
			t.Fatal(err)
		}
		have[filepath.ToSlash(rel)] = s.Reason
	}
	if !maps.Equal(have, want) {
		t.Errorf("%s: skipped %v, want %v", what, have, want)
	}
}

// TestBuildManifestStopsAtTheFileLimit: a walk (say, a link followed to /)
// stops as soon as the receiver would refuse the count, instead of walking
// on.
func TestBuildManifestStopsAtTheFileLimit(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manifest{ChunkSize: testChunk}
	w := walker{ctx: context.Background(), m: m, maxFiles: 3}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = w.add(dir, "d", fi, nil)
	if KindOf(err) != KindBadPath {
		t.Fatalf("walking 6 entries with a limit of 3: %v", err)
	}
	if len(m.Files) != 3 {
		t.Errorf("the walk collected %d entries past the limit of 3", len(m.Files))
	}
}
