package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// systemTestsEnv allows tests to change the machine they run on (install
// and remove Debian packages). .ci/run sets it on CI's throwaway machine;
// a developer's machine never needs it.
const systemTestsEnv = "FERRY_E2E_SYSTEM"

// debFiles are the paths packaging/build-deb.sh must ship.
var debFiles = []string{
	"/usr/bin/ferry",
	"/usr/share/applications/io.github.ferry.desktop",
	"/usr/share/metainfo/io.github.ferry.metainfo.xml",
	"/usr/share/icons/hicolor/16x16/apps/io.github.ferry.png",
	"/usr/share/icons/hicolor/48x48/apps/io.github.ferry.png",
	"/usr/share/icons/hicolor/512x512/apps/io.github.ferry.png",
	"/usr/share/icons/hicolor/scalable/apps/io.github.ferry.svg",
	"/usr/share/doc/ferry/copyright",
}

// TestDebPackage builds the .deb with packaging/build-deb.sh and checks its
// contents and control file (and lintian's verdict, when installed). With
// FERRY_E2E_SYSTEM=1 as root (CI) it also installs the package with
// apt-get, checks that dpkg's triggers registered the ferry:// handler,
// starts the installed desktop entry's command on a virtual X server
// until its window shows, and removes the package again.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary and a .deb")
	}
	for _, tool := range []string{"dpkg-deb", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	deb := filepath.Join(t.TempDir(), "ferry_test_amd64.deb")
	// Compile as TestMain's build does (no PIE, no -trimpath), so the
	// toolkit's C code is not compiled a second time: see build-deb.sh.
	buildPackage(t, ctx, "build-deb.sh", deb, "FERRY_DEB_BUILDFLAGS=")

	contents := run(t, ctx, "dpkg-deb", "--contents", deb)
	for _, f := range debFiles {
		if !strings.Contains(contents, " ."+f+"\n") {
			t.Errorf("the .deb lacks %s; it holds:\n%s", f, contents)
		}
	}
	for _, line := range strings.Split(contents, "\n") {
		if line != "" && !strings.HasPrefix(line, "drwxr-xr-x root/root") && !strings.HasPrefix(line, "-rw-r--r-- root/root") && !strings.HasPrefix(line, "-rwxr-xr-x root/root") {
			t.Errorf("unexpected owner or mode: %s", line)
		}
	}
	depends := run(t, ctx, "dpkg-deb", "--field", deb, "Depends")
	for _, lib := range []string{"libc6", "libgl1", "libx11-6", "libxrandr2", "libxcursor1", "libxi6", "libxinerama1", "libwayland-client0", "libxkbcommon0"} {
		if !strings.Contains(depends, lib) {
			t.Errorf("Depends lacks %s: %s", lib, depends)
		}
	}
	entry := debFile(t, ctx, deb, "./usr/share/applications/io.github.ferry.desktop")
	for _, want := range []string{"\nExec=ferry %U\n", "\nMimeType=x-scheme-handler/ferry;\n", "\nIcon=io.github.ferry\n"} {
		if !strings.Contains(entry, want) {
			t.Errorf("desktop entry lacks %q:\n%s", strings.TrimSpace(want), entry)
		}
	}
	if lintian, err := exec.LookPath("lintian"); err == nil {
		// Errors fail; warnings and notes are only logged. Running as root
		// needs --allow-root.
		out, err := exec.CommandContext(ctx, lintian, "--allow-root", "--fail-on", "error", "--suppress-tags", "no-manual-page,hardening-no-pie", deb).CombinedOutput()
		t.Logf("lintian:\n%s", out)
		if err != nil {
			t.Errorf("lintian found errors: %v", err)
		}
	} else {
		t.Log("lintian not installed: not linted")
	}

	if os.Getenv(systemTestsEnv) != "1" || os.Geteuid() != 0 {
		t.Skipf("installing the package needs root and %s=1 (set by .ci/run on CI's throwaway machine)", systemTestsEnv)
	}
	if exec.Command("dpkg-query", "-W", "ferry").Run() == nil {
		t.Skip("a ferry package is installed already: not replacing it")
	}
	installDebAndLaunch(t, ctx, deb)
}

func installDebAndLaunch(t *testing.T, ctx context.Context, deb string) {
	aptEnv := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	removed := false
	remove := func() {
		start := time.Now()
		cmd := exec.Command("apt-get", "remove", "-y", "ferry")
		cmd.Env = aptEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("apt-get remove -y ferry: %v\n%s", err, out)
		}
		removed = true
		t.Logf("removed in %s", time.Since(start).Round(100*time.Millisecond))
	}
	t.Cleanup(func() {
		if !removed {
			remove()
		}
	})
	start := time.Now()
	// apt-get takes a local .deb when the path has a slash; deb is absolute.
	install := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", deb)
	install.Env = aptEnv
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, out)
	}
	t.Logf("installed in %s", time.Since(start).Round(100*time.Millisecond))
	for _, f := range debFiles {
		if !fileExists(f) {
			t.Errorf("%s missing after install", f)
		}
	}
	if out := run(t, ctx, "/usr/bin/ferry", "version"); !strings.HasPrefix(out, "ferry ") || strings.Contains(out, "-dev") {
		t.Errorf("/usr/bin/ferry version = %q, want a release version", out)
	}
	// desktop-file-utils' dpkg trigger ran update-desktop-database: the
	// desktop now knows ferry handles ferry:// links.
	if fileExists("/usr/bin/update-desktop-database") {
		cache, err := os.ReadFile("/usr/share/applications/mimeinfo.cache")
		if err != nil || !strings.Contains(string(cache), "x-scheme-handler/ferry=io.github.ferry.desktop;") {
			t.Errorf("mimeinfo.cache does not name io.github.ferry.desktop as the ferry:// handler (%v):\n%s", err, cache)
		}
	}

	// Start what the installed desktop entry starts: its Exec line without
	// the %U field code (a launcher passes no URL when clicked).
	entry, err := os.ReadFile("/usr/share/applications/io.github.ferry.desktop")
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, line := range strings.Split(string(entry), "\n") {
		if cmd, ok := strings.CutPrefix(line, "Exec="); ok {
			for _, f := range strings.Fields(cmd) {
				if !strings.HasPrefix(f, "%") {
					argv = append(argv, f)
				}
			}
		}
	}
	if len(argv) == 0 {
		t.Fatalf("no Exec line in the installed desktop entry:\n%s", entry)
	}
	if path, err := exec.LookPath(argv[0]); err != nil || path != "/usr/bin/ferry" {
		t.Fatalf("the desktop entry's %q resolves to %q (%v), want /usr/bin/ferry", argv[0], path, err)
	}
	_, colors, logs := windowAppears(t, ctx, argv)
	t.Logf("the installed desktop entry (%s) opened a window: %d colours on screen; app log:\n%s", strings.Join(argv, " "), colors, logs)

	remove()
	for _, f := range debFiles {
		if fileExists(f) {
			t.Errorf("%s still there after apt-get remove", f)
		}
	}
	if cache, err := os.ReadFile("/usr/share/applications/mimeinfo.cache"); err == nil && strings.Contains(string(cache), "io.github.ferry") {
		t.Errorf("mimeinfo.cache still names ferry after removal")
	}
}

// run runs a command and returns its standard output, failing the test on error.
// buildPackage runs packaging/SCRIPT OUT with env added to the
// environment and fails the test with the script's output if it fails.
func buildPackage(t *testing.T, ctx context.Context, script, out string, env ...string) {
	t.Helper()
	start := time.Now()
	build := exec.CommandContext(ctx, filepath.Join("..", "..", "packaging", script), out)
	build.Env = append(os.Environ(), env...)
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("packaging/%s: %v\n%s", script, err, output)
	}
	t.Logf("packaging/%s built %s in %s", script, filepath.Base(out), time.Since(start).Round(time.Second))
}

func run(t *testing.T, ctx context.Context, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// debFile returns one file's contents from a .deb.
func debFile(t *testing.T, ctx context.Context, deb, path string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, ctx, "dpkg-deb", "--extract", deb, dir)
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
