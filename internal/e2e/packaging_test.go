package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDesktopMetadataValidates checks the hand-written desktop entry and
// AppStream metainfo in packaging/ with the freedesktop.org validators, when
// they are installed.
func TestDesktopMetadataValidates(t *testing.T) {
	packaging := filepath.Join("..", "..", "packaging")
	checks := []struct {
		name, tool, debPackage string
		args                   []string
	}{
		{
			name:       "desktop entry",
			tool:       "desktop-file-validate",
			debPackage: "desktop-file-utils",
			args:       []string{filepath.Join(packaging, "io.github.ferry.desktop")},
		},
		{
			name:       "AppStream metainfo",
			tool:       "appstreamcli",
			debPackage: "appstream",
			args:       []string{"validate", "--no-net", filepath.Join(packaging, "io.github.ferry.metainfo.xml")},
		},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			path, err := exec.LookPath(c.tool)
			if err != nil {
				t.Skipf("%s not installed (Debian package %s)", c.tool, c.debPackage)
			}
			out, err := exec.Command(path, c.args...).CombinedOutput()
			if len(out) > 0 {
				t.Logf("%s %v:\n%s", c.tool, c.args, out)
			}
			if err != nil {
				t.Fatalf("%s failed: %v", c.tool, err)
			}
		})
	}
}

// TestServerBuildNeedsNoCgo guards packaging/build-server.sh, which the
// Containerfile runs: the static server binary is built with cgo off and
// Fyne's own "ci" tag (its headless driver). A Fyne upgrade that dropped
// the tag would break that build while every other build still passes;
// listing the build's packages catches it in a second.
func TestServerBuildNeedsNoCgo(t *testing.T) {
	cmd := exec.Command("go", "list", "-tags", "ci", "-deps", "ferry")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go list -tags ci -deps ferry: %v\n%s", err, out)
	}
}
