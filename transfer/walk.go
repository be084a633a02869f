package transfer

// The sending side's walk: what the user named, turned into manifest
// entries and their on-disk sources.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// BuildManifest walks paths (files and/or folders given by the user) and
// returns the manifest and, parallel to m.Files, the on-disk source of each
// entry. A folder "photos" becomes entries "photos", "photos/a.jpg",
// "photos/sub", ...; a file becomes its base name ("." names the current
// folder by its real name). Symbolic links and special files (devices,
// sockets, fifos) inside folders are not followed: they are left out and
// their on-disk paths returned in skipped (BuildManifestWith can follow
// links). A link given directly as an argument is followed, since the user
// named it. Two arguments with the
// same base name (also differing only in case) are an error, as is a name
// that fails ValidatePath or a tree the receiver would refuse (see
// UnmarshalManifest with default Limits): these are *Error of kind
// KindBadPath. Missing paths are KindNotFound.
//
// Every chunk is hashed, by up to runtime.NumCPU() workers each holding one
// chunkSize buffer. progress, if not nil, is called with the bytes hashed so
// far, never concurrently. A file that changes size while it is hashed is an
// error. ctx cancels the walk and the hashing.
func BuildManifest(ctx context.Context, paths []string, chunkSize int64, progress func(int64)) (m *Manifest, sources []string, skipped []string, err error) {
	m, sources, left, err := BuildManifestWith(ctx, paths, BuildOptions{ChunkSize: chunkSize, Progress: progress})
	for _, s := range left {
		skipped = append(skipped, s.Path)
	}
	return m, sources, skipped, err
}

// SkipReason says why the walk left an entry out. The values are the CLI's
// --json "reason" of a "skipped" event: extend, never rename.
type SkipReason string

// Skip reasons.
const (
	SkipLink     SkipReason = "link"     // a symbolic link, not followed
	SkipSpecial  SkipReason = "special"  // a device, fifo or socket
	SkipDangling SkipReason = "dangling" // a followed link to nothing (or to something unreadable)
	SkipLoop     SkipReason = "loop"     // a followed link to a folder it is inside of
)

// Skipped is an entry the walk left out.
type Skipped struct {
	Path   string // on disk
	Reason SkipReason
}

// BuildOptions tune BuildManifestWith.
type BuildOptions struct {
	// ChunkSize of the manifest, in [MinChunkSize, MaxChunkSize].
	ChunkSize int64
	// FollowLinks sends what symbolic links inside folders point to, as
	// if it were there: a linked file as a file, a linked folder as a
	// folder. A link back to a folder it is inside of (a loop) and a link
	// to nothing are left out and listed in skipped.
	FollowLinks bool
	// Progress, if not nil, is called with the bytes hashed so far, never
	// concurrently.
	Progress func(int64)

	hashWorkers int // 0: one per CPU (tests set 1 for a fixed order of reads)
}

// BuildManifestWith is BuildManifest with options; it also says why each
// entry was left out.
func BuildManifestWith(ctx context.Context, paths []string, opts BuildOptions) (m *Manifest, sources []string, skipped []Skipped, err error) {
	chunkSize, progress := opts.ChunkSize, opts.Progress
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return nil, nil, nil, Errorf(KindInternal, "", "chunk size %d outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	if len(paths) == 0 {
		return nil, nil, nil, Errorf(KindNotFound, "name at least one file or folder", "nothing to send")
	}
	m = &Manifest{Version: ManifestVersion, Hash: HashName, ChunkSize: chunkSize}
	lim := Limits{}.withDefaults() // what the receiver accepts by default
	w := walker{ctx: ctx, m: m, follow: opts.FollowLinks, maxFiles: lim.MaxFiles}
	names := make(map[string]string) // folded base name -> argument
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, nil, Errorf(KindNotFound, "", "cannot resolve %q: %w", p, err)
		}
		fi, err := os.Stat(abs) // follows a link the user named
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil, Errorf(KindNotFound, "check the name and try again", "%q does not exist", p)
		}
		if err != nil {
			return nil, nil, nil, Errorf(KindNotFound, "", "cannot read %q: %w", p, err)
		}
		name := filepath.Base(abs)
		if why := pathProblem(name); why != "" || strings.Contains(name, "/") {
			if why == "" {
				why = "not a file or folder name"
			}
			return nil, nil, nil, Errorf(KindBadPath, "rename it, or send what is inside it", "cannot send %q under the name %q: %s", p, name, why)
		}
		k := foldPath(name)
		if other, dup := names[k]; dup {
			return nil, nil, nil, Errorf(KindBadPath, "send them separately, or put them in folders with different names",
				"%q and %q would both arrive as %q", other, p, name)
		}
		names[k] = p
		if err := w.add(abs, name, fi, nil); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(m.Files) == 0 {
		var left []string
		for _, s := range w.skipped {
			left = append(left, s.Path)
		}
		return nil, nil, nil, Errorf(KindNotFound, "name regular files or folders",
			"nothing to send: %q are not regular files or folders", left)
	}
	if err := validateManifest(m, lim); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Hint = "rename or leave out what is named above: the receiver would refuse it"
		}
		return nil, nil, nil, err
	}
	if err := hashFiles(ctx, m, w.sources, progress, opts.hashWorkers); err != nil {
		return nil, nil, nil, err
	}
	return m, w.sources, w.skipped, nil
}

// walker collects manifest entries.
type walker struct {
	ctx      context.Context
	m        *Manifest
	follow   bool // follow symbolic links inside folders
	maxFiles int  // stop early: the receiver would refuse more entries
	sources  []string
	skipped  []Skipped
}

// add adds the file or folder at src (described by fi) as rel, recursively.
// ancestors are the folders src is inside of, to catch link loops.
func (w *walker) add(src, rel string, fi fs.FileInfo, ancestors []fs.FileInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if why := pathProblem(rel); why != "" {
		return Errorf(KindBadPath, "rename it, or move it out of what you send", "cannot send %q: %s", src, why)
	}
	if len(w.m.Files) >= w.maxFiles {
		return Errorf(KindBadPath, "send fewer files at once, or pack them into an archive",
			"more than %d files and folders to send: the receiver would refuse the offer", w.maxFiles)
	}
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		n := chunkCount(fi.Size(), w.m.ChunkSize)
		var chunks []Hash
		if n > 0 {
			chunks = make([]Hash, n)
		}
		w.m.Files = append(w.m.Files, FileEntry{
			Path: rel, Size: fi.Size(), Mode: uint32(mode.Perm()), ModTime: fi.ModTime().UnixNano(), Chunks: chunks,
		})
		w.sources = append(w.sources, src)
	case mode.IsDir():
		w.m.Files = append(w.m.Files, FileEntry{
			Path: rel, Dir: true, Mode: uint32(mode.Perm()), ModTime: fi.ModTime().UnixNano(),
		})
		w.sources = append(w.sources, src)
		ents, err := os.ReadDir(src) // sorted by name
		if err != nil {
			return Errorf(KindInternal, "check its permissions", "cannot read folder %q: %w", src, err)
		}
		inside := append(ancestors[:len(ancestors):len(ancestors)], fi)
		for _, de := range ents {
			child := filepath.Join(src, de.Name())
			cfi, ok, err := w.entry(child, de, inside)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := w.add(child, rel+"/"+de.Name(), cfi, inside); err != nil {
				return err
			}
		}
	default:
		w.skip(src, SkipSpecial)
	}
	return nil
}

func (w *walker) skip(path string, why SkipReason) {
	w.skipped = append(w.skipped, Skipped{Path: path, Reason: why})
}

// entry describes folder entry de at path child for sending, or reports
// it left out (ok false; listed in skipped unless it vanished): special
// files always, symbolic links unless following them, and followed links
// that lead nowhere or to a folder in inside (a loop).
func (w *walker) entry(child string, de fs.DirEntry, inside []fs.FileInfo) (fi fs.FileInfo, ok bool, err error) {
	typ := de.Type()
	if typ&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice|fs.ModeIrregular) != 0 {
		w.skip(child, SkipSpecial)
		return nil, false, nil
	}
	if typ&fs.ModeSymlink != 0 {
		if !w.follow {
			w.skip(child, SkipLink)
			return nil, false, nil
		}
		fi, err = os.Stat(child)
		if err != nil { // dangling, or pointing somewhere unreadable
			w.skip(child, SkipDangling)
			return nil, false, nil
		}
		if fi.IsDir() {
			for _, a := range inside {
				if os.SameFile(a, fi) {
					w.skip(child, SkipLoop)
					return nil, false, nil
				}
			}
		}
		return fi, true, nil
	}
	fi, err = de.Info() // Lstat
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil // vanished since ReadDir
	}
	if err != nil {
		return nil, false, Errorf(KindInternal, "check its permissions", "cannot read %q: %w", child, err)
	}
	return fi, true, nil
}
