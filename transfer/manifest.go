package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"unicode"
)

// ManifestVersion is the manifest format version this package writes and
// accepts.
const ManifestVersion = 1

// Chunk sizes.
const (
	// DefaultChunkSize is the chunk size used unless the engine picks
	// another one.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound the chunk size a manifest may use.
	MinChunkSize = 64 << 10
	MaxChunkSize = 64 << 20
)

// Default Limits for UnmarshalManifest.
const (
	DefaultMaxManifestBytes = 64 << 20
	DefaultMaxFiles         = 1_000_000
	DefaultMaxTotal         = int64(1) << 50
)

// FileEntry is one file or folder in a Manifest.
type FileEntry struct {
	Path    string `json:"path"`          // slash-separated, relative, ValidatePath-clean
	Dir     bool   `json:"dir,omitempty"` // a directory (so empty folders survive)
	Size    int64  `json:"size"`
	Mode    uint32 `json:"mode"`             // permission bits (0o777) only
	ModTime int64  `json:"mtime"`            // Unix nanoseconds
	Chunks  []Hash `json:"chunks,omitempty"` // hash of each ChunkSize piece; len == ceil(Size/ChunkSize), 0 for empty files and dirs
}

// Manifest is what a sender offers: every file and folder, with the hash of
// every chunk of every file.
type Manifest struct {
	Version   int         `json:"v"`    // ManifestVersion
	Hash      string      `json:"hash"` // HashName
	ChunkSize int64       `json:"chunk_size"`
	Files     []FileEntry `json:"files"`
}

// TotalSize returns the sum of the sizes of all files.
func (m *Manifest) TotalSize() int64 {
	var t int64
	for i := range m.Files {
		t += m.Files[i].Size
	}
	return t
}

// FileCount returns the number of entries that are not directories.
func (m *Manifest) FileCount() int {
	n := 0
	for i := range m.Files {
		if !m.Files[i].Dir {
			n++
		}
	}
	return n
}

// ChunkCount returns how many chunks of chunkSize bytes f is cut into:
// ceil(Size/chunkSize), and 0 for directories, empty files, and a
// non-positive chunkSize.
func (f *FileEntry) ChunkCount(chunkSize int64) int {
	n := chunkCount(f.Size, chunkSize)
	if f.Dir || n > math.MaxInt {
		return 0
	}
	return int(n)
}

func chunkCount(size, chunkSize int64) int64 {
	if size <= 0 || chunkSize <= 0 {
		return 0
	}
	n := size / chunkSize
	if size%chunkSize != 0 {
		n++
	}
	return n
}

// ChunkLen returns the length of chunk i of f: chunkSize for all but the
// last chunk, which may be short, and 0 when i is out of range.
func (f *FileEntry) ChunkLen(i int, chunkSize int64) int {
	if i < 0 || i >= f.ChunkCount(chunkSize) {
		return 0
	}
	off := int64(i) * chunkSize
	return int(min(chunkSize, f.Size-off))
}

// ContentID names f's content independently of its name, mode and time:
// HashChunk over "ferry.content.v1", Size and the chunk count (both uint64
// little-endian) and every chunk hash. The receiver keys its partial state
// by it, so a resumed transfer matches data by content, not by name.
func (f *FileEntry) ContentID() Hash {
	h := newHasher()
	var hdr [16 + 8 + 8]byte
	copy(hdr[:16], "ferry.content.v1")
	binary.LittleEndian.PutUint64(hdr[16:], uint64(f.Size))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(len(f.Chunks)))
	h.Write(hdr[:])
	for i := range f.Chunks {
		h.Write(f.Chunks[i][:])
	}
	var id Hash
	copy(id[:], h.Sum(nil))
	return id
}

// Limits bounds what UnmarshalManifest accepts from a peer. A zero or
// negative field means its default.
type Limits struct {
	MaxBytes int   // encoded size; default 64 MiB
	MaxFiles int   // entries, folders included; default 1_000_000
	MaxTotal int64 // sum of file sizes; default 1<<50
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxManifestBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultMaxTotal
	}
	return l
}

// MarshalManifest encodes m as JSON for the wire.
func MarshalManifest(m *Manifest) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, Errorf(KindInternal, "", "encoding manifest: %w", err)
	}
	return b, nil
}

const badManifestHint = "the sender's file list was refused and nothing was written"

// UnmarshalManifest decodes a manifest received from a peer and validates
// it against lim: version and hash name, chunk size within
// [MinChunkSize, MaxChunkSize], entry count, sizes (non-negative, total
// without overflow and within MaxTotal), chunk counts, directories without
// size or chunks, permission bits only, every path (ValidatePath), no
// duplicate paths (also compared case-insensitively) and no file whose path
// is a folder of another entry. Every failure is an *Error of kind
// KindBadPath.
func UnmarshalManifest(b []byte, lim Limits) (*Manifest, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxBytes {
		return nil, Errorf(KindBadPath, badManifestHint, "manifest is %d bytes, more than the limit of %d", len(b), lim.MaxBytes)
	}
	m, err := decodeManifest(b, lim)
	if err != nil {
		return nil, err
	}
	if err := validateManifest(m, lim); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeManifest decodes the manifest entry by entry, so a hostile one
// with millions of tiny entries is refused at the count limit instead of
// being materialised whole first.
func decodeManifest(b []byte, lim Limits) (*Manifest, error) {
	malformed := func(err error) error {
		return Errorf(KindBadPath, badManifestHint, "malformed manifest: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var m Manifest
	if tok, err := dec.Token(); err != nil {
		return nil, malformed(err)
	} else if tok == nil {
		return &m, nil // null: as json.Unmarshal, an empty manifest (validation says why)
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, malformed(fmt.Errorf("expected an object, found %v", tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, _ := tok.(string)
		switch key {
		case "v":
			err = dec.Decode(&m.Version)
		case "hash":
			err = dec.Decode(&m.Hash)
		case "chunk_size":
			err = dec.Decode(&m.ChunkSize)
		case "files":
			tok, err := dec.Token()
			if err != nil {
				return nil, malformed(err)
			}
			if tok == nil {
				continue // null: no files (validation says so)
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return nil, malformed(fmt.Errorf("files: expected a list, found %v", tok))
			}
			for dec.More() {
				if len(m.Files) >= lim.MaxFiles {
					return nil, Errorf(KindBadPath, badManifestHint, "invalid manifest: at least %d entries, more than the limit of %d", lim.MaxFiles+1, lim.MaxFiles)
				}
				var f FileEntry
				if err := dec.Decode(&f); err != nil {
					return nil, malformed(err)
				}
				m.Files = append(m.Files, f)
			}
			err = expectDelim(dec, ']')
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, malformed(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(errors.New("data after the manifest"))
	}
	return &m, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// validateManifest checks everything UnmarshalManifest promises.
func validateManifest(m *Manifest, lim Limits) error {
	bad := func(format string, args ...any) error {
		return Errorf(KindBadPath, badManifestHint, "invalid manifest: "+format, args...)
	}
	if m.Version != ManifestVersion {
		return bad("version %d, this ferry understands version %d", m.Version, ManifestVersion)
	}
	if m.Hash != HashName {
		return bad("hash %q, this ferry understands %q", m.Hash, HashName)
	}
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize {
		return bad("chunk size %d outside [%d, %d]", m.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if len(m.Files) == 0 {
		return bad("no files")
	}
	if len(m.Files) > lim.MaxFiles {
		return bad("%d entries, more than the limit of %d", len(m.Files), lim.MaxFiles)
	}
	// Sizes first, so a huge claimed total is reported as such.
	var total int64
	for i := range m.Files {
		f := &m.Files[i]
		if f.Size < 0 {
			return bad("%s has negative size %d", quotePath(f.Path), f.Size)
		}
		if f.Size > lim.MaxTotal-total {
			return bad("total size exceeds the limit of %d bytes (at %s)", lim.MaxTotal, quotePath(f.Path))
		}
		total += f.Size
	}
	seen := make(map[string]int, len(m.Files)) // folded path -> index
	for i := range m.Files {
		f := &m.Files[i]
		if why := pathProblem(f.Path); why != "" {
			return Errorf(KindBadPath, badManifestHint, "invalid manifest: unsafe path %s: %s", quotePath(f.Path), why)
		}
		q := quotePath(f.Path)
		if f.Mode&^0o777 != 0 {
			return bad("%s has mode %#o, only permission bits 0o777 are allowed", q, f.Mode)
		}
		if f.Dir {
			if f.Size != 0 || len(f.Chunks) != 0 {
				return bad("folder %s has a size or chunks", q)
			}
		} else if want := chunkCount(f.Size, m.ChunkSize); int64(len(f.Chunks)) != want {
			return bad("%s has %d chunk hashes, its size %d needs %d", q, len(f.Chunks), f.Size, want)
		}
		k := foldPath(f.Path)
		if j, dup := seen[k]; dup {
			if m.Files[j].Path == f.Path {
				return bad("%s is listed twice", q)
			}
			return bad("%s and %s differ only in case", quotePath(m.Files[j].Path), q)
		}
		seen[k] = i
	}
	// No file may be the parent folder of another entry.
	for i := range m.Files {
		p := m.Files[i].Path
		for j := 0; j < len(p); j++ {
			if p[j] != '/' {
				continue
			}
			if k, ok := seen[foldPath(p[:j])]; ok && !m.Files[k].Dir {
				return bad("%s is a file but %s puts it in a folder of that name", quotePath(m.Files[k].Path), quotePath(p))
			}
		}
	}
	return nil
}

// foldPath maps p to a key that is equal for paths a case-insensitive
// filesystem would treat as the same (simple Unicode case folding, as
// strings.EqualFold). It does not fold Unicode normalization forms.
func foldPath(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for _, r := range p {
		// The smallest rune in r's folding orbit is canonical.
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// hashJob is one chunk to hash.
type hashJob struct {
	file, chunk int
}

// hashFiles fills in the chunk hashes of every file in m, reading sources,
// with workers goroutines (0: one per CPU).
func hashFiles(ctx context.Context, m *Manifest, sources []string, progress func(int64), workers int) error {
	var nchunks int64
	for i := range m.Files {
		nchunks += int64(len(m.Files[i].Chunks))
	}
	if nchunks == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	workers = int(min(int64(workers), nchunks))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu       sync.Mutex // guards firstErr, done and progress calls
		firstErr error
		done     int64
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	jobs := make(chan hashJob, workers*4)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, m.ChunkSize)
			var f *os.File // the file of the last job, kept open for the next
			cur := -1
			defer func() {
				if f != nil {
					f.Close()
				}
			}()
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				e := &m.Files[j.file]
				if j.file != cur {
					if f != nil {
						f.Close()
						f = nil
					}
					var err error
					if f, err = openSource(sources[j.file], e.Size); err != nil {
						fail(err)
						continue
					}
					cur = j.file
				}
				n := e.ChunkLen(j.chunk, m.ChunkSize)
				b := buf[:n]
				if _, err := f.ReadAt(b, int64(j.chunk)*m.ChunkSize); err != nil {
					what := "%w (did it change while being read?)"
					if errors.Is(err, io.EOF) {
						what = "it became shorter while it was read (%w)"
					}
					fail(Errorf(KindInternal, "try again once it is no longer being written to",
						"reading %q: "+what, sources[j.file], err))
					continue
				}
				h := HashChunk(b)
				e.Chunks[j.chunk] = h
				mu.Lock()
				done += int64(n)
				if progress != nil && firstErr == nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for i := range m.Files {
		for c := range m.Files[i].Chunks {
			select {
			case jobs <- hashJob{i, c}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// openSource opens a file to hash and checks it still has the size seen
// during the walk.
func openSource(path string, size int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errorf(KindNotFound, "", "cannot open %q: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != size {
		err = fmt.Errorf("size changed from %d to %d bytes", size, fi.Size())
	}
	if err != nil {
		f.Close()
		return nil, Errorf(KindInternal, "try again once it is no longer being written to", "reading %q: %w", path, err)
	}
	return f, nil
}

// TopNames lists the distinct top-level names of the manifest in order, at
// most max of them (all when max <= 0): what an offer shows a person.
func (m *Manifest) TopNames(max int) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range m.Files {
		top, _, _ := strings.Cut(f.Path, "/")
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
			if len(out) == max {
				break
			}
		}
	}
	return out
}
