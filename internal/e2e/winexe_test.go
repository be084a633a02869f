package e2e

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// Resource types (winuser.h) ferry.exe must carry.
const (
	rtIcon      = 3
	rtGroupIcon = 14
	rtVersion   = 16
	rtManifest  = 24
)

// TestWindowsExeUnderWine cross-builds the desktop app for Windows with
// packaging/build-windows.sh (cgo through Debian's mingw-w64 compiler),
// checks that the .exe carries its icon, version information and
// manifest, and runs `ferry.exe version` and `ferry.exe send --help`
// under Wine to prove that the binary starts. The first build is slow
// (several minutes: the toolkit's C code, compiled for Windows); the build
// cache makes later runs quick.
func TestWindowsExeUnderWine(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the desktop app for Windows; slow on a cold build cache")
	}
	for _, tool := range []struct{ name, deb string }{
		{"x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"},
		{"wine", "wine"},
		{"go", "golang"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Skipf("needs %s (Debian package %s; .ci/run installs it)", tool.name, tool.deb)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	exe := filepath.Join(t.TempDir(), "ferry.exe")
	buildPackage(t, ctx, "build-windows.sh", exe, "VERSION=0.1.0")

	t.Run("resources", func(t *testing.T) { checkWindowsResources(t, exe, "0.1.0") })

	// Wine, headless: a throwaway prefix, no Mono or Gecko installers
	// (they would wait for a click), no debug chatter, no display.
	prefix := t.TempDir()
	env := []string{"WINEPREFIX=" + prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=", "WAYLAND_DISPLAY=", "HOME=" + t.TempDir()}
	for _, k := range []string{"PATH", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	defer func() {
		kill := exec.Command("wineserver", "-k")
		kill.Env = env
		kill.Run()
	}()
	// Create the prefix, then give it a bcryptprimitives.dll if this Wine
	// has none (see testdata/bcryptprimitives.c): Go's runtime needs it.
	boot := exec.CommandContext(ctx, "wineboot", "--init")
	boot.Env = env
	start := time.Now()
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot --init: %v\n%s", err, out)
	}
	t.Logf("created the Wine prefix in %s", time.Since(start).Round(100*time.Millisecond))
	system32 := filepath.Join(prefix, "drive_c", "windows", "system32")
	if !fileExists(filepath.Join(system32, "bcryptprimitives.dll")) {
		shim := exec.CommandContext(ctx, "x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", filepath.Join(system32, "bcryptprimitives.dll"),
			filepath.Join("testdata", "bcryptprimitives.c"), "-lbcrypt")
		if out, err := shim.CombinedOutput(); err != nil {
			t.Fatalf("building the bcryptprimitives.dll stand-in: %v\n%s", err, out)
		}
		t.Log("this Wine has no bcryptprimitives.dll: using testdata/bcryptprimitives.c")
	}
	wine := func(args ...string) string {
		t.Helper()
		// The first call also creates the prefix, which takes a while.
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(wctx, "wine", append([]string{exe}, args...)...)
		cmd.Env = env
		cmd.Stdin = nil
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		t.Logf("wine ferry.exe %s (%s): %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond), err, stdout.String(), stderr.String())
		if wctx.Err() != nil {
			t.Fatalf("wine ferry.exe %s did not finish", strings.Join(args, " "))
		}
		return stdout.String() + stderr.String()
	}
	if out := wine("version"); !strings.Contains(out, "ferry 0.1.0 (") || !strings.Contains(out, "windows/amd64)") {
		t.Errorf("wine ferry.exe version printed %q, want ferry 0.1.0 (go…, windows/amd64)", out)
	}
	if out := wine("send", "--help"); !strings.Contains(out, "Usage: ferry send") || !strings.Contains(out, "-rendezvous HOST:PORT") {
		t.Errorf("wine ferry.exe send --help printed no usage of send with its flags:\n%s", out)
	}
}

// checkWindowsResources reads the .exe's resource section: a version
// resource naming the version, an icon group with the icon images, and
// a manifest.
func checkWindowsResources(t *testing.T, exe, version string) {
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if oh, ok := f.OptionalHeader.(*pe.OptionalHeader64); !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Errorf("not a 64-bit Windows GUI program (no console window should open with the app)")
	}
	sec := f.Section(".rsrc")
	if sec == nil {
		t.Fatal("ferry.exe has no .rsrc section: no icon or version information")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The root directory lists one entry per resource type; each points at
	// a directory whose entries are the resources of that type.
	counts := map[uint32]int{}
	for _, e := range resourceEntries(t, data, 0) {
		if e.dir {
			counts[e.id] = len(resourceEntries(t, data, e.offset))
		}
	}
	t.Logf("resource types and counts: %v", counts)
	// goversioninfo writes the icon group twice: as the first icon
	// (Explorer's) and as IDI_APPLICATION (the title bar's); six sizes each.
	if counts[rtGroupIcon] < 1 || counts[rtIcon] < 6 {
		t.Errorf("want an icon group of six sizes, got %d groups and %d images", counts[rtGroupIcon], counts[rtIcon])
	}
	if counts[rtVersion] != 1 {
		t.Errorf("no version resource")
	}
	if counts[rtManifest] != 1 {
		t.Errorf("no manifest")
	}
	for _, s := range []string{"ProductVersion\x00" + version, "ProductName\x00ferry", "OriginalFilename\x00ferry.exe"} {
		// Keys and values are UTF-16, each padded to 4 bytes: look for the
		// key, then the value shortly after it.
		key, value, _ := strings.Cut(s, "\x00")
		i := bytes.Index(data, utf16le(key))
		if i < 0 || !bytes.Contains(data[i:min(len(data), i+64+4*len(value))], utf16le(value)) {
			t.Errorf("version information lacks %s = %s", key, value)
		}
	}
	if !bytes.Contains(data, []byte(`requestedExecutionLevel level="asInvoker"`)) {
		t.Errorf("manifest lacks asInvoker")
	}
}

type resourceEntry struct {
	id     uint32
	dir    bool
	offset uint32
}

// resourceEntries parses one IMAGE_RESOURCE_DIRECTORY at off.
func resourceEntries(t *testing.T, data []byte, off uint32) []resourceEntry {
	t.Helper()
	if int(off)+16 > len(data) {
		t.Fatalf("resource directory at %d is outside the section", off)
	}
	n := int(binary.LittleEndian.Uint16(data[off+12:])) + int(binary.LittleEndian.Uint16(data[off+14:]))
	var out []resourceEntry
	for i := 0; i < n; i++ {
		p := int(off) + 16 + 8*i
		if p+8 > len(data) {
			t.Fatalf("resource entry at %d is outside the section", p)
		}
		name, target := binary.LittleEndian.Uint32(data[p:]), binary.LittleEndian.Uint32(data[p+4:])
		out = append(out, resourceEntry{id: name, dir: target&0x80000000 != 0, offset: target &^ 0x80000000})
	}
	return out
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, r)
	}
	return b
}
