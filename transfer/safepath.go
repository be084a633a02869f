package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Limits on manifest paths, in bytes.
const (
	maxPathLen      = 4096
	maxComponentLen = 255
)

const badPathHint = "the name is unsafe or cannot be stored on every system; ask the sender to rename it"

// ValidatePath reports whether p is an acceptable manifest path: relative,
// slash-separated, and storable on Linux, macOS and Windows alike. It returns
// an *Error of kind KindBadPath naming p when p is
//   - empty, longer than 4096 bytes, or not valid UTF-8;
//   - absolute (leading '/' or '\'), a drive path ("C:", "c:\x") or UNC;
//   - holding a backslash, a NUL or other ASCII control character, or one of
//     the characters Windows forbids: < > : " | ? *;
//   - made of a component that is empty ("a//b", "a/"), "." or "..", longer
//     than 255 bytes, ending with a dot or a space, or a Windows device name
//     (CON, PRN, AUX, NUL, COM0-9, LPT0-9, ...) in any case, with any
//     extension and with trailing dots or spaces ("con.txt", "Lpt1 .x").
//
// Names such as "a..b" or "Ünïcödé 日本語.txt" are fine.
func ValidatePath(p string) error {
	if why := pathProblem(p); why != "" {
		return Errorf(KindBadPath, badPathHint, "unsafe path %s: %s", quotePath(p), why)
	}
	return nil
}

// quotePath quotes p for an error message, shortening very long paths.
func quotePath(p string) string {
	const max = 200
	if len(p) > max {
		return fmt.Sprintf("%q...", p[:max])
	}
	return fmt.Sprintf("%q", p)
}

// pathProblem says what is wrong with manifest path p, or "" if nothing is.
func pathProblem(p string) string {
	switch {
	case p == "":
		return "empty path"
	case len(p) > maxPathLen:
		return fmt.Sprintf("longer than %d bytes", maxPathLen)
	case !utf8.ValidString(p):
		return "not valid UTF-8"
	case p[0] == '/' || p[0] == '\\':
		return "absolute path"
	case len(p) >= 2 && p[1] == ':' && isASCIILetter(p[0]):
		return "Windows drive path"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			return "contains a backslash"
		case c == 0:
			return "contains a NUL byte"
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		case strings.IndexByte(`<>:"|?*`, c) >= 0:
			return fmt.Sprintf("contains %q, which Windows forbids", c)
		}
	}
	for comp := range strings.SplitSeq(p, "/") {
		switch {
		case comp == "":
			return "empty component"
		case comp == "." || comp == "..":
			return fmt.Sprintf("contains a %q component", comp)
		case len(comp) > maxComponentLen:
			return fmt.Sprintf("a component is longer than %d bytes", maxComponentLen)
		case strings.HasSuffix(comp, ".") || strings.HasSuffix(comp, " "):
			return fmt.Sprintf("component %q ends with a dot or a space", comp)
		case isReservedName(comp):
			return fmt.Sprintf("component %q is a reserved device name on Windows", comp)
		}
	}
	return ""
}

func isASCIILetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isReservedName reports whether Windows treats path component c as a
// device: the part before the first dot, without trailing spaces and dots,
// is CON, PRN, AUX, NUL, CONIN$, CONOUT$, COM0-9 or LPT0-9 (also the
// superscript digits ¹²³), in any case.
func isReservedName(c string) bool {
	if i := strings.IndexByte(c, '.'); i >= 0 {
		c = c[:i]
	}
	c = strings.TrimRight(c, ". ")
	if len(c) < 3 || len(c) > 7 {
		return false
	}
	u := strings.ToUpper(c)
	switch u {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT") {
		switch u[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return true
		}
	}
	return false
}

// SafeJoin returns root joined with the manifest path rel, after checking
// that rel passes ValidatePath, that the result stays under root, and that
// no component below root that already exists is a symbolic link (nor a
// non-directory where a directory is needed). root itself may be a link.
// Failures are *Error of kind KindBadPath.
//
// The check is made at call time; a local attacker able to swap a directory
// for a link afterwards is outside what it protects against.
func SafeJoin(root, rel string) (string, error) {
	if err := ValidatePath(rel); err != nil {
		return "", err
	}
	root = filepath.Clean(root)
	target := filepath.Join(root, filepath.FromSlash(rel))
	if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
		return "", Errorf(KindBadPath, badPathHint, "unsafe path %s: escapes %q", quotePath(rel), root)
	}
	comps := strings.Split(rel, "/")
	cur := root
	for i, c := range comps {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			break // nothing below can exist either
		}
		if err != nil {
			return "", Errorf(KindBadPath, "", "cannot check %q: %w", cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", Errorf(KindBadPath, "remove or rename the link, or receive into another folder",
				"unsafe path %s: %q is a symbolic link", quotePath(rel), cur)
		}
		if i < len(comps)-1 && !fi.IsDir() {
			return "", Errorf(KindBadPath, "rename it or receive into another folder",
				"cannot write %s: %q exists and is not a folder", quotePath(rel), cur)
		}
	}
	return target, nil
}

// UniqueName returns path if nothing exists there, and otherwise the first
// free name of the form "name (1).ext", "name (2).ext", ... in the same
// folder: "archive.tar.gz" becomes "archive (1).tar.gz", ".bashrc" becomes
// ".bashrc (1)", and a folder "folder" becomes "folder (1)". Only the final
// component changes. The answer can be outdated as soon as it is returned,
// so callers must still create the name exclusively.
func UniqueName(path string) string { return uniqueName(path, nil) }

// uniqueName is UniqueName, also passing over the names taken reports
// true for (given to other entries of the same offer).
func uniqueName(path string, taken func(string) bool) string {
	free := func(p string) bool {
		_, err := os.Lstat(p)
		return errors.Is(err, fs.ErrNotExist) && (taken == nil || !taken(p))
	}
	if free(path) {
		return path
	}
	fi, err := os.Lstat(path)
	dir, base := filepath.Split(path)
	stem, ext := base, ""
	if err != nil || !fi.IsDir() {
		stem, ext = splitExt(base)
	}
	var cand string
	for n := 1; n <= 100000; n++ {
		suffix := fmt.Sprintf(" (%d)", n)
		s := stem
		if over := len(s) + len(suffix) + len(ext) - maxComponentLen; over > 0 {
			s = truncateUTF8(s, len(s)-over)
		}
		cand = dir + s + suffix + ext
		if free(cand) {
			return cand
		}
	}
	return cand
}

// splitExt splits a file name into stem and extension, keeping compound
// ".tar.*" extensions whole and treating a leading dot as part of the stem.
func splitExt(base string) (stem, ext string) {
	ext = filepath.Ext(base)
	stem = base[:len(base)-len(ext)]
	if strings.Trim(stem, ".") == "" { // ".bashrc", "..x", "."
		return base, ""
	}
	if t := filepath.Ext(stem); strings.EqualFold(t, ".tar") && strings.Trim(stem[:len(stem)-len(t)], ".") != "" {
		stem, ext = stem[:len(stem)-len(t)], t+ext
	}
	return stem, ext
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
