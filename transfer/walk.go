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
// their on-disk paths returned in skipped. A link given directly as an
// argument is followed, since the user named it. Two arguments with the
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
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return nil, nil, nil, Errorf(KindInternal, "", "chunk size %d outside [%d, %d]", chunkSize, MinChunkSize, MaxChunkSize)
	}
	if len(paths) == 0 {
		return nil, nil, nil, Errorf(KindNotFound, "name at least one file or folder", "nothing to send")
	}
	m = &Manifest{Version: ManifestVersion, Hash: HashName, ChunkSize: chunkSize}
	w := walker{ctx: ctx, m: m}
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
		if err := w.add(abs, name, fi); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(m.Files) == 0 {
		return nil, nil, nil, Errorf(KindNotFound, "name regular files or folders",
			"nothing to send: %q are not regular files or folders", w.skipped)
	}
	if err := validateManifest(m, Limits{}.withDefaults()); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Hint = "rename or leave out what is named above: the receiver would refuse it"
		}
		return nil, nil, nil, err
	}
	if err := hashFiles(ctx, m, w.sources, progress); err != nil {
		return nil, nil, nil, err
	}
	return m, w.sources, w.skipped, nil
}

// walker collects manifest entries.
type walker struct {
	ctx     context.Context
	m       *Manifest
	sources []string
	skipped []string
}

// add adds the file or folder at src (described by fi) as rel, recursively.
func (w *walker) add(src, rel string, fi fs.FileInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if why := pathProblem(rel); why != "" {
		return Errorf(KindBadPath, "rename it, or move it out of what you send", "cannot send %q: %s", src, why)
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
		for _, de := range ents {
			child := filepath.Join(src, de.Name())
			if de.Type()&(fs.ModeSymlink|fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice|fs.ModeIrregular) != 0 {
				w.skipped = append(w.skipped, child)
				continue
			}
			cfi, err := de.Info() // Lstat
			if errors.Is(err, fs.ErrNotExist) {
				continue // vanished since ReadDir
			}
			if err != nil {
				return Errorf(KindInternal, "check its permissions", "cannot read %q: %w", child, err)
			}
			if err := w.add(child, rel+"/"+de.Name(), cfi); err != nil {
				return err
			}
		}
	default:
		w.skipped = append(w.skipped, src)
	}
	return nil
}

