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
