package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidatePath(t *testing.T) {
	long := strings.Repeat("a", 255)
	bad := []string{
		"",
		"/etc/passwd",
		"/",
		"\\windows",
		"\\\\server\\share\\x",
		"//server/share",
		"C:",
		"c:\\x",
		"C:/x",
		"z:rel",
		"a\\b",
		"..",
		".",
		"../x",
		"a/../../x",
		"a/..",
		"./a",
		"a/./b",
		"a//b",
		"a/",
		"a/b/",
		"a\x00b",
		"a\nb",
		"tab\there",
		"del\x7f",
		"esc\x1b[31m",
		"CON",
		"con",
		"con.txt",
		"CON.tar.gz",
		"a/Con/b",
		"PRN", "AUX", "NUL", "nul.", "NUL ", "nul .txt",
		"COM0", "COM1", "com9.log", "LPT0", "lpt5", "LPT9.txt",
		"COM¹", "lpt³.txt", "CONIN$", "conout$.x",
		"dot.",
		"space ",
		"a/dir./b",
		"a/dir /b",
		"...",
		long + "b",
		"ok/" + long + "x/ok",
		strings.Repeat("d/", 2048) + "f",
		"bad\xffutf8",
		"\xc3",
		"a<b", "a>b", "a:b", "a\"b", "a|b", "a?b", "a*b",
		"stream.txt:ads",
	}
	for _, p := range bad {
		err := ValidatePath(p)
		if err == nil {
			t.Errorf("ValidatePath(%q) accepted", p)
			continue
		}
		if KindOf(err) != KindBadPath {
			t.Errorf("ValidatePath(%q) kind %q", p, KindOf(err))
		}
		if want := quotePath(p); !strings.Contains(err.Error(), want) {
			t.Errorf("ValidatePath(%q) = %q, does not name the path", p, err)
		}
	}
	good := []string{
		"a",
		"a.txt",
		"a/b/c.txt",
		"Ünïcödé 日本語.txt",
		"photos/2024/IMG_0001.JPG",
		".bashrc",
		".config/app/settings.json",
		"a..b",
		"wait...what.txt",
		"..hidden",
		" leading space",
		"CONSOLE", "COM10", "LPT", "con_x", "nul1", "AUXILIARY.txt", "COM1x",
		"my con.txt",
		"emoji 🎉.png",
		"x/" + long,
		long,
		"100% done #1 & more (copy) [x] {y} 'q' ~ ! @ $ ^ + = ,;.txt",
	}
	for _, p := range good {
		if err := ValidatePath(p); err != nil {
			t.Errorf("ValidatePath(%q) = %v", p, err)
		}
	}
	// Long paths are quoted shortened.
	err := ValidatePath(strings.Repeat("x", 5000))
	if err == nil || len(err.Error()) > 600 {
		t.Errorf("long path error: %v", err)
	}
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "C:\\x", "con.txt", "a//b", "Ünïcödé 日本語.txt", "a\x00", "/abs", "a..b", ".x/y", "x. ", "COM¹"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		if strings.Contains(p, "\\") || strings.Contains(p, "\x00") || strings.HasPrefix(p, "/") || strings.Contains(p, ":") {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." || c == "" || isReservedName(c) {
				t.Fatalf("accepted %q with component %q", p, c)
			}
		}
		if filepath.IsAbs(filepath.FromSlash(p)) || !filepath.IsLocal(filepath.FromSlash(p)) {
			t.Fatalf("accepted non-local %q", p)
		}
	})
}

func TestSafeJoin(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "real", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(root, "real", "sub", "leaf")); err != nil {
		t.Fatal(err)
	}

	got, err := SafeJoin(root, "real/sub/new/x.txt")
	if err != nil || got != filepath.Join(root, "real", "sub", "new", "x.txt") {
		t.Fatalf("SafeJoin = %q, %v", got, err)
	}
	if got, err := SafeJoin(root, "nothing/here"); err != nil || got != filepath.Join(root, "nothing", "here") {
		t.Fatalf("SafeJoin non-existing = %q, %v", got, err)
	}
	for _, rel := range []string{"evil", "evil/x", "evil/a/b", "real/sub/leaf", "file/x", "../x", "/abs", "a\\..\\..\\x"} {
		if p, err := SafeJoin(root, rel); err == nil || KindOf(err) != KindBadPath {
			t.Errorf("SafeJoin(%q) = %q, %v; want bad_path", rel, p, err)
		}
	}
	// A symlinked root is the user's choice and allowed.
	linkRoot := filepath.Join(outside, "rootlink")
	if err := os.Symlink(root, linkRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := SafeJoin(linkRoot, "real/y"); err != nil {
		t.Errorf("SafeJoin via symlinked root: %v", err)
	}
}

func TestUniqueName(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := func(name string) string { return filepath.Join(dir, name) }
	if got := UniqueName(j("free.txt")); got != j("free.txt") {
		t.Errorf("free: %q", got)
	}
	mk("a.txt")
	if got := UniqueName(j("a.txt")); got != j("a (1).txt") {
		t.Errorf("a.txt: %q", got)
	}
	mk("a (1).txt")
	mk("a (2).txt")
	if got := UniqueName(j("a.txt")); got != j("a (3).txt") {
		t.Errorf("a.txt taken thrice: %q", got)
	}
	mk("archive.tar.gz")
	if got := UniqueName(j("archive.tar.gz")); got != j("archive (1).tar.gz") {
		t.Errorf("tar.gz: %q", got)
	}
	mk("my.photo.jpg")
	if got := UniqueName(j("my.photo.jpg")); got != j("my.photo (1).jpg") {
		t.Errorf("my.photo.jpg: %q", got)
	}
	mk(".bashrc")
	if got := UniqueName(j(".bashrc")); got != j(".bashrc (1)") {
		t.Errorf(".bashrc: %q", got)
	}
	mk(".config.json")
	if got := UniqueName(j(".config.json")); got != j(".config (1).json") {
		t.Errorf(".config.json: %q", got)
	}
	mk("noext")
	if got := UniqueName(j("noext")); got != j("noext (1)") {
		t.Errorf("noext: %q", got)
	}
	mk(".tar.gz")
	if got := UniqueName(j(".tar.gz")); got != j(".tar (1).gz") {
		t.Errorf(".tar.gz: %q", got)
	}
	if err := os.Mkdir(j("folder.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := UniqueName(j("folder.d")); got != j("folder.d (1)") {
		t.Errorf("folder: %q", got)
	}
	// A dangling symlink occupies the name too.
	if err := os.Symlink(j("missing"), j("dangling.txt")); err == nil {
		if got := UniqueName(j("dangling.txt")); got != j("dangling (1).txt") {
			t.Errorf("dangling: %q", got)
		}
	}
	// The result stays within the component length limit.
	long := strings.Repeat("é", 125) + ".txt" // 254 bytes
	mk(long)
	got := filepath.Base(UniqueName(j(long)))
	if len(got) > maxComponentLen || !strings.HasSuffix(got, " (1).txt") || ValidatePath(got) != nil {
		t.Errorf("long: %q (%d bytes)", got, len(got))
	}
}

func TestSafeJoinErrorIsBadPath(t *testing.T) {
	_, err := SafeJoin(t.TempDir(), "../../etc/passwd")
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindBadPath || !strings.Contains(err.Error(), `"../../etc/passwd"`) {
		t.Fatalf("err = %v", err)
	}
}
