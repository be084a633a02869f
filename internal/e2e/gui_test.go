package e2e

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDesktopAppOpensUnderXvfb starts the real binary with no arguments on
// a virtual X server: the window opens and a screenshot of the screen is
// not blank. The screenshot stays in the test's temporary folder.
func TestDesktopAppOpensUnderXvfb(t *testing.T) {
	shot, colors, logs := windowAppears(t, context.Background(), []string{ferryBinary})
	t.Logf("screenshot %s has %d distinct colours; app log:\n%s", shot, colors, logs)
}

// windowAppears runs argv on a fresh Xvfb display, with a home of its own
// and no rendezvous server, until a screenshot of the screen is not blank,
// and returns the screenshot, the number of colours seen and the app's
// output. It skips t when Xvfb or ImageMagick is missing.
func windowAppears(t *testing.T, ctx context.Context, argv []string) (shot string, colors int, logs string) {
	t.Helper()
	for _, tool := range []string{"Xvfb", "import"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages xvfb and imagemagick; .ci/run installs them)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	display := freeDisplay(t)
	xvfb := exec.CommandContext(ctx, "Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	if err := xvfb.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { xvfb.Process.Kill(); xvfb.Wait() }()

	home := t.TempDir()
	app := exec.CommandContext(ctx, argv[0], argv[1:]...)
	app.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "FERRY_RENDEZVOUS=")
	var out safeBuffer
	app.Stdout, app.Stderr = &logWriter{&out}, &logWriter{&out}
	// Xvfb needs a moment to accept clients; the app retries nothing, so
	// wait for the display first.
	waitUntil(t, ctx, "the X server", func() bool {
		return exec.CommandContext(ctx, "xdpyinfo", "-display", display).Run() == nil || fileExists("/tmp/.X11-unix/X"+display[1:])
	})
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { app.Process.Kill(); app.Wait() }()

	shot, colors = waitForWindow(t, ctx, display)
	return shot, colors, out.String()
}

// waitForWindow waits until the X display shows more than a blank screen
// (a window drew itself) and returns the screenshot and its colours.
func waitForWindow(t *testing.T, ctx context.Context, display string) (shot string, colors int) {
	t.Helper()
	shot = filepath.Join(t.TempDir(), "screen.png")
	waitUntil(t, ctx, "a non-blank window", func() bool {
		if err := exec.CommandContext(ctx, "import", "-display", display, "-window", "root", shot).Run(); err != nil {
			return false
		}
		colors = distinctColors(t, shot)
		return colors > 16
	})
	return shot, colors
}

type logWriter struct{ b *safeBuffer }

func (w *logWriter) Write(p []byte) (int, error) { w.b.WriteString(string(p)); return len(p), nil }

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// freeDisplay picks an X display number nobody uses.
func freeDisplay(t *testing.T) string {
	for n := 90; n < 200; n++ {
		if !fileExists(fmt.Sprintf("/tmp/.X%d-lock", n)) && !fileExists(fmt.Sprintf("/tmp/.X11-unix/X%d", n)) {
			return fmt.Sprintf(":%d", n)
		}
	}
	t.Skip("no free X display number")
	return ""
}

func waitUntil(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// distinctColors counts the colours in a PNG, up to 1000.
func distinctColors(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return 0
	}
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= 1000 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
