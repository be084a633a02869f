package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const testChunk = MinChunkSize

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func wantChunks(data []byte, cs int) []Hash {
	var hs []Hash
	for off := 0; off < len(data); off += cs {
		hs = append(hs, HashChunk(data[off:min(off+cs, len(data))]))
	}
	return hs
}

func TestBuildManifest(t *testing.T) {
	base := t.TempDir()
	photos := filepath.Join(base, "photos")
	big := randBytes(1, 3*testChunk+1234)
	exact := randBytes(2, 2*testChunk)
	small := []byte("hello")
	uni := []byte("unicode content")
	writeFile(t, filepath.Join(photos, "a.jpg"), big, 0o640)
	writeFile(t, filepath.Join(photos, "empty.txt"), nil, 0o600)
	writeFile(t, filepath.Join(photos, "sub", "deep", "x.bin"), exact, 0o755)
	writeFile(t, filepath.Join(photos, "Ünïcödé 日本語.txt"), uni, 0o644)
	if err := os.MkdirAll(filepath.Join(photos, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	var skippedWant []string
	if err := os.Symlink(filepath.Join(photos, "a.jpg"), filepath.Join(photos, "link.jpg")); err == nil {
		skippedWant = append(skippedWant, filepath.Join(photos, "link.jpg"))
	}
	if err := os.Symlink(base, filepath.Join(photos, "sub", "loop")); err == nil {
		skippedWant = append(skippedWant, filepath.Join(photos, "sub", "loop"))
	}
	sock := filepath.Join(photos, "sock")
	if l, err := net.Listen("unix", sock); err == nil {
		defer l.Close()
		skippedWant = append(skippedWant, sock)
	}
	slices.Sort(skippedWant) // the walk visits names in order
	single := filepath.Join(base, "other", "note.txt")
	writeFile(t, single, small, 0o644)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := os.Chtimes(single, mt, mt); err != nil {
		t.Fatal(err)
	}

	var last int64
	calls := 0
	m, src, skipped, err := BuildManifest(context.Background(), []string{photos, single}, testChunk, func(n int64) {
		if n < last {
			t.Errorf("progress went back: %d < %d", n, last)
		}
		last = n
		calls++
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.Hash != HashName || m.ChunkSize != testChunk {
		t.Fatalf("header %+v", m)
	}
	type want struct {
		path string
		dir  bool
		data []byte
		mode uint32
		src  string
	}
	wants := []want{
		{"photos", true, nil, 0, photos},
		{"photos/a.jpg", false, big, 0o640, filepath.Join(photos, "a.jpg")},
		{"photos/empty.txt", false, nil, 0o600, filepath.Join(photos, "empty.txt")},
		{"photos/emptydir", true, nil, 0o750, filepath.Join(photos, "emptydir")},
		{"photos/sub", true, nil, 0, filepath.Join(photos, "sub")},
		{"photos/sub/deep", true, nil, 0, filepath.Join(photos, "sub", "deep")},
		{"photos/sub/deep/x.bin", false, exact, 0o755, filepath.Join(photos, "sub", "deep", "x.bin")},
		{"photos/Ünïcödé 日本語.txt", false, uni, 0o644, filepath.Join(photos, "Ünïcödé 日本語.txt")},
		{"note.txt", false, small, 0o644, single},
	}
	if len(m.Files) != len(wants) || len(src) != len(wants) {
		for _, f := range m.Files {
			t.Logf("entry %q", f.Path)
		}
		t.Fatalf("%d entries, %d sources, want %d", len(m.Files), len(src), len(wants))
	}
	for i, w := range wants {
		f := m.Files[i]
		if f.Path != w.path || f.Dir != w.dir || src[i] != w.src {
			t.Errorf("entry %d = %q dir=%v src=%q, want %q dir=%v src=%q", i, f.Path, f.Dir, src[i], w.path, w.dir, w.src)
			continue
		}
		if w.mode != 0 && f.Mode != w.mode {
			t.Errorf("%s mode %o want %o", f.Path, f.Mode, w.mode)
		}
		if w.dir {
			if f.Size != 0 || f.Chunks != nil {
				t.Errorf("dir %s has size/chunks", f.Path)
			}
			continue
		}
		if f.Size != int64(len(w.data)) || !reflect.DeepEqual(f.Chunks, wantChunks(w.data, testChunk)) {
			t.Errorf("%s: size %d chunks %d, want %d / %d", f.Path, f.Size, len(f.Chunks), len(w.data), len(wantChunks(w.data, testChunk)))
		}
		if f.ChunkCount(testChunk) != len(f.Chunks) {
			t.Errorf("%s: ChunkCount %d", f.Path, f.ChunkCount(testChunk))
		}
	}
	if got := m.Files[len(m.Files)-1].ModTime; got != mt.UnixNano() {
		t.Errorf("mtime %d, want %d", got, mt.UnixNano())
	}
	total := int64(len(big) + len(exact) + len(small) + len(uni))
	if m.TotalSize() != total || last != total || calls == 0 {
		t.Errorf("TotalSize %d, progress %d (%d calls), want %d", m.TotalSize(), last, calls, total)
	}
	if m.FileCount() != 5 {
		t.Errorf("FileCount %d", m.FileCount())
	}
	if !reflect.DeepEqual(skipped, skippedWant) {
		t.Errorf("skipped %q, want %q", skipped, skippedWant)
	}

	// Round trip.
	b, err := MarshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := UnmarshalManifest(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
	}
}

func TestBuildManifestErrors(t *testing.T) {
	base := t.TempDir()
	writeFile(t, filepath.Join(base, "a", "x.txt"), []byte("1"), 0o644)
	writeFile(t, filepath.Join(base, "b", "x.txt"), []byte("2"), 0o644)
	writeFile(t, filepath.Join(base, "b", "X.TXT"), []byte("3"), 0o644)
	writeFile(t, filepath.Join(base, "c", "bad:name"), []byte("4"), 0o644)
	ctx := context.Background()

	_, _, _, err := BuildManifest(ctx, []string{filepath.Join(base, "a", "x.txt"), filepath.Join(base, "b", "x.txt")}, testChunk, nil)
	if KindOf(err) != KindBadPath {
		t.Errorf("same base name: %v", err)
	}
	_, _, _, err = BuildManifest(ctx, []string{filepath.Join(base, "nope")}, testChunk, nil)
	if KindOf(err) != KindNotFound || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "b", "X.TXT")); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(base, "b")); len(ents) == 2 { // case-sensitive filesystem
			_, _, _, err = BuildManifest(ctx, []string{filepath.Join(base, "b")}, testChunk, nil)
			if KindOf(err) != KindBadPath || !strings.Contains(err.Error(), "case") {
				t.Errorf("case-insensitive duplicate: %v", err)
			}
		}
	}
	_, _, _, err = BuildManifest(ctx, []string{filepath.Join(base, "c")}, testChunk, nil)
	if KindOf(err) != KindBadPath || !strings.Contains(err.Error(), "bad:name") {
		t.Errorf("bad name: %v", err)
	}
	_, _, _, err = BuildManifest(ctx, []string{"/"}, testChunk, nil)
	if KindOf(err) != KindBadPath {
		t.Errorf("root: %v", err)
	}
	if _, err := os.Stat(os.DevNull); err == nil && runtime.GOOS != "windows" {
		_, _, _, err = BuildManifest(ctx, []string{os.DevNull}, testChunk, nil)
		if KindOf(err) != KindNotFound || !strings.Contains(err.Error(), "nothing to send") {
			t.Errorf("device argument: %v", err)
		}
	}
	_, _, _, err = BuildManifest(ctx, nil, testChunk, nil)
	if err == nil {
		t.Error("no paths accepted")
	}
	_, _, _, err = BuildManifest(ctx, []string{filepath.Join(base, "a")}, 1000, nil)
	if err == nil {
		t.Error("tiny chunk size accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, _, err = BuildManifest(cctx, []string{filepath.Join(base, "a")}, testChunk, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	// A symlink given as an argument is followed, under its own name.
	if err := os.Symlink(filepath.Join(base, "a"), filepath.Join(base, "alias")); err == nil {
		m, src, _, err := BuildManifest(ctx, []string{filepath.Join(base, "alias")}, testChunk, nil)
		if err != nil || len(m.Files) != 2 || m.Files[1].Path != "alias/x.txt" || src[1] != filepath.Join(base, "alias", "x.txt") {
			t.Errorf("symlink argument: %+v %q %v", m, src, err)
		}
	}
}

func TestBuildManifestCancelDuringHashing(t *testing.T) {
	base := t.TempDir()
	writeFile(t, filepath.Join(base, "f"), randBytes(3, 40*testChunk), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	_, _, _, err := BuildManifest(ctx, []string{filepath.Join(base, "f")}, testChunk, func(n int64) {
		if n >= 4*testChunk {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestChunkMath(t *testing.T) {
	cs := int64(100)
	for _, c := range []struct {
		size  int64
		count int
		last  int
	}{{0, 0, 0}, {1, 1, 1}, {99, 1, 99}, {100, 1, 100}, {101, 2, 1}, {250, 3, 50}} {
		f := FileEntry{Size: c.size}
		if got := f.ChunkCount(cs); got != c.count {
			t.Errorf("ChunkCount(%d) = %d, want %d", c.size, got, c.count)
		}
		if c.count > 0 {
			if got := f.ChunkLen(c.count-1, cs); got != c.last {
				t.Errorf("last ChunkLen(%d) = %d, want %d", c.size, got, c.last)
			}
			if c.count > 1 && f.ChunkLen(0, cs) != 100 {
				t.Errorf("first ChunkLen(%d) = %d", c.size, f.ChunkLen(0, cs))
			}
		}
		if f.ChunkLen(c.count, cs) != 0 || f.ChunkLen(-1, cs) != 0 {
			t.Errorf("out of range ChunkLen non-zero for size %d", c.size)
		}
	}
	if (&FileEntry{Dir: true, Size: 5}).ChunkCount(cs) != 0 {
		t.Error("dir has chunks")
	}
	big := FileEntry{Size: 1<<40 + 1}
	if got := big.ChunkCount(MaxChunkSize); got != 1<<14+1 || big.ChunkLen(got-1, MaxChunkSize) != 1 {
		t.Errorf("large ChunkCount %d", got)
	}
}

func TestContentID(t *testing.T) {
	a := FileEntry{Path: "a", Size: 5, Mode: 0o644, ModTime: 1, Chunks: []Hash{HashChunk([]byte("hello"))}}
	b := a
	b.Path, b.Mode, b.ModTime = "other/b", 0o600, 2
	if a.ContentID() != b.ContentID() {
		t.Error("ContentID depends on name or metadata")
	}
	c := a
	c.Size = 6
	d := a
	d.Chunks = []Hash{HashChunk([]byte("world"))}
	if a.ContentID() == c.ContentID() || a.ContentID() == d.ContentID() {
		t.Error("ContentID ignores size or chunks")
	}
	if (&FileEntry{}).ContentID() == a.ContentID() {
		t.Error("empty file collides")
	}
}

// validManifest is a small manifest that passes validation.
func validManifest() *Manifest {
	return &Manifest{
		Version: 1, Hash: HashName, ChunkSize: testChunk,
		Files: []FileEntry{
			{Path: "dir", Dir: true, Mode: 0o755},
			{Path: "dir/a.txt", Size: 10, Mode: 0o644, Chunks: []Hash{HashChunk([]byte("0123456789"))}},
			{Path: "dir/sub/b.bin", Size: testChunk + 1, Mode: 0o600, Chunks: make([]Hash, 2)},
			{Path: "empty", Size: 0, Mode: 0o644},
		},
	}
}

func TestUnmarshalManifestHostile(t *testing.T) {
	enc := func(m *Manifest) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := UnmarshalManifest(enc(validManifest()), Limits{}); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	mut := func(f func(m *Manifest)) []byte {
		m := validManifest()
		f(m)
		return enc(m)
	}
	file := func(p string) FileEntry { return FileEntry{Path: p, Size: 1, Mode: 0o644, Chunks: make([]Hash, 1)} }
	cases := []struct {
		name string
		in   []byte
		lim  Limits
		want string // substring of the error
	}{
		{"not json", []byte("{"), Limits{}, "malformed"},
		{"trailing garbage", append(enc(validManifest()), "x"...), Limits{}, "malformed"},
		{"array", []byte("[]"), Limits{}, "malformed"},
		{"null", []byte("null"), Limits{}, "version"},
		{"version", mut(func(m *Manifest) { m.Version = 2 }), Limits{}, "version"},
		{"hash", mut(func(m *Manifest) { m.Hash = "md5" }), Limits{}, "md5"},
		{"chunk small", mut(func(m *Manifest) { m.ChunkSize = MinChunkSize - 1 }), Limits{}, "chunk size"},
		{"chunk big", mut(func(m *Manifest) { m.ChunkSize = MaxChunkSize + 1 }), Limits{}, "chunk size"},
		{"chunk negative", mut(func(m *Manifest) { m.ChunkSize = -1 }), Limits{}, "chunk size"},
		{"no files", mut(func(m *Manifest) { m.Files = nil }), Limits{}, "no files"},
		{"traversal", mut(func(m *Manifest) { m.Files[1].Path = "../../.bashrc" }), Limits{}, `"../../.bashrc"`},
		{"traversal inner", mut(func(m *Manifest) { m.Files[1].Path = "dir/../../x" }), Limits{}, `"dir/../../x"`},
		{"absolute", mut(func(m *Manifest) { m.Files[1].Path = "/etc/passwd" }), Limits{}, `"/etc/passwd"`},
		{"drive", mut(func(m *Manifest) { m.Files[1].Path = "C:\\evil" }), Limits{}, "C:"},
		{"backslash", mut(func(m *Manifest) { m.Files[1].Path = "dir\\..\\..\\x" }), Limits{}, "backslash"},
		{"device", mut(func(m *Manifest) { m.Files[1].Path = "dir/nul.txt" }), Limits{}, "reserved"},
		{"empty path", mut(func(m *Manifest) { m.Files[1].Path = "" }), Limits{}, "empty"},
		{"too many", enc(validManifest()), Limits{MaxFiles: 3}, "4 entries"},
		{"negative size", mut(func(m *Manifest) { m.Files[3].Size = -1 }), Limits{}, "negative"},
		{"total", mut(func(m *Manifest) {}), Limits{MaxTotal: 100}, "total size"},
		{"overflow", mut(func(m *Manifest) {
			m.Files[1].Size = 1<<63 - 1
			m.Files[2].Size = 1<<63 - 1
		}), Limits{MaxTotal: 1<<63 - 1}, "total size"},
		{"huge chunk claim", mut(func(m *Manifest) { m.Files[1].Size = 1 << 49 }), Limits{}, "chunk hashes"},
		{"too few chunks", mut(func(m *Manifest) { m.Files[2].Chunks = m.Files[2].Chunks[:1] }), Limits{}, "chunk hashes"},
		{"too many chunks", mut(func(m *Manifest) { m.Files[1].Chunks = make([]Hash, 2) }), Limits{}, "chunk hashes"},
		{"chunks on empty", mut(func(m *Manifest) { m.Files[3].Chunks = make([]Hash, 1) }), Limits{}, "chunk hashes"},
		{"dir with size", mut(func(m *Manifest) { m.Files[0].Size = 5 }), Limits{}, "folder"},
		{"dir with chunks", mut(func(m *Manifest) { m.Files[0].Chunks = make([]Hash, 1) }), Limits{}, "folder"},
		{"mode setuid", mut(func(m *Manifest) { m.Files[1].Mode = 0o4755 }), Limits{}, "mode"},
		{"mode type bits", mut(func(m *Manifest) { m.Files[1].Mode = 1 << 31 }), Limits{}, "mode"},
		{"duplicate", mut(func(m *Manifest) { m.Files = append(m.Files, file("dir/a.txt")) }), Limits{}, "twice"},
		{"duplicate dir", mut(func(m *Manifest) { m.Files = append(m.Files, FileEntry{Path: "dir", Dir: true}) }), Limits{}, "twice"},
		{"case duplicate", mut(func(m *Manifest) { m.Files = append(m.Files, file("DIR/A.txt")) }), Limits{}, "case"},
		{"unicode case duplicate", mut(func(m *Manifest) {
			m.Files = append(m.Files, file("Ünï"), file("üNÏ"))
		}), Limits{}, "case"},
		{"file as folder", mut(func(m *Manifest) { m.Files = append(m.Files, file("empty/x")) }), Limits{}, `"empty"`},
		{"file as folder before", mut(func(m *Manifest) {
			m.Files = append([]FileEntry{file("z/y/x")}, m.Files...)
			m.Files = append(m.Files, file("z/y"))
		}), Limits{}, `"z/y"`},
		{"file as folder case", mut(func(m *Manifest) { m.Files = append(m.Files, file("EMPTY/x")) }), Limits{}, "folder"},
		{"bad hash text", []byte(strings.Replace(string(enc(validManifest())), `"chunks":["`, `"chunks":["zz`, 1)), Limits{}, "malformed"},
		{"oversize", enc(validManifest()), Limits{MaxBytes: 100}, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := UnmarshalManifest(c.in, c.lim)
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if KindOf(err) != KindBadPath {
				t.Errorf("kind %q", KindOf(err))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
	// A directory entry may share a prefix with others; a parent folder
	// need not be listed.
	ok := mut(func(m *Manifest) { m.Files = append(m.Files, file("undeclared/deep/x"), file("dir2"), file("dir.txt")) })
	if _, err := UnmarshalManifest(ok, Limits{}); err != nil {
		t.Errorf("valid variant refused: %v", err)
	}
}

func TestUnmarshalManifestOversizeNotDecoded(t *testing.T) {
	// Far over the limit and not JSON at all: the size check comes first.
	b := bytes.Repeat([]byte("x"), 1<<20)
	_, err := UnmarshalManifest(b, Limits{MaxBytes: 1 << 10})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(1<<20)) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzUnmarshalManifest(f *testing.F) {
	good, _ := MarshalManifest(validManifest())
	f.Add(good)
	f.Add([]byte(`{"v":1,"hash":"blake3","chunk_size":65536,"files":[{"path":"a","size":0,"mode":420,"mtime":0}]}`))
	f.Add([]byte(`{"v":1,"hash":"blake3","chunk_size":65536,"files":[{"path":"../a","size":0,"mode":420,"mtime":0}]}`))
	f.Add([]byte(`{"v":1,"hash":"blake3","chunk_size":65536,"files":[{"path":"a","dir":true,"mode":493,"mtime":0},{"path":"A/b","size":1,"mode":420,"mtime":0,"chunks":["` + strings.Repeat("ab", 32) + `"]}]}`))
	f.Add([]byte(`{"v":1,"hash":"blake3","chunk_size":65536,"files":[{"path":"a","size":-1,"mode":420,"mtime":0}]}`))
	f.Add([]byte(`{"v":1,"hash":"blake3","chunk_size":65536,"files":[{"path":"a","size":9223372036854775807,"mode":420,"mtime":0}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"files":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalManifest(b, Limits{MaxBytes: 1 << 16})
		if err != nil {
			if KindOf(err) != KindBadPath {
				t.Fatalf("kind %q for %v", KindOf(err), err)
			}
			return
		}
		seen := map[string]bool{}
		var total int64
		for i := range m.Files {
			fe := &m.Files[i]
			if err := ValidatePath(fe.Path); err != nil {
				t.Fatalf("accepted bad path: %v", err)
			}
			k := strings.ToLower(fe.Path)
			if seen[k] {
				t.Fatalf("accepted duplicate %q", fe.Path)
			}
			seen[k] = true
			if fe.Size < 0 || fe.Mode&^0o777 != 0 || len(fe.Chunks) != fe.ChunkCount(m.ChunkSize) {
				t.Fatalf("accepted bad entry %+v", fe)
			}
			total += fe.Size
			if total < 0 {
				t.Fatal("accepted overflowing total")
			}
		}
		again, err := MarshalManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := UnmarshalManifest(again, Limits{MaxBytes: 1 << 20})
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding changed the manifest: %v", err)
		}
	})
}

// TestManifestOfAFileThatShrinks: a file truncated while it is hashed is
// an error that says so, not a manifest of what was left. One worker reads
// it, so the truncation always meets a read of the file it already opened
// (a second worker opening it after would see the size changed instead,
// which hides a short read taken for a whole one).
func TestManifestOfAFileThatShrinks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shrinks.bin")
	if err := os.WriteFile(p, randBytes(33, 64*testChunk), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := false
	_, _, _, err := BuildManifestWith(context.Background(), []string{p}, BuildOptions{ChunkSize: testChunk, hashWorkers: 1, Progress: func(int64) {
		if !truncated {
			truncated = true
			if err := os.Truncate(p, testChunk); err != nil {
				t.Error(err)
			}
		}
	}})
	if err == nil {
		t.Fatal("a file truncated while hashed gave a manifest")
	}
	if KindOf(err) != KindInternal || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("error %v (kind %s), want an internal error saying the file became shorter", err, KindOf(err))
	}
}
