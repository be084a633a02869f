package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// crossTargets are the systems the app ships on besides Linux (see
// packaging/README.md), whose engine the Linux tests never compile.
var crossTargets = []struct{ goos, goarch string }{
	{"windows", "amd64"},
	{"darwin", "arm64"},
	{"darwin", "amd64"},
}

// crossPackages are the non-GUI packages: the engine, its transport and
// pairing, and the test helpers. The GUI needs cgo and each system's own
// toolchain, so it is not cross-checked here.
var crossPackages = []string{"./transport/...", "./discovery/...", "./transfer/...", "./internal/..."}

// TestEngineBuildsForOtherSystems type-checks and vets the engine, test files
// included, for every other system the app ships on, without cgo, so that
// Linux-only socket code (GSO, forced buffer sizes, control messages) cannot
// leak into portable files unnoticed. It needs only the Go toolchain and the
// module cache; the build cache makes reruns cheap.
func TestEngineBuildsForOtherSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-vets the engine for other systems; slow on a cold build cache")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command")
	}
	root := moduleRoot(t, goTool)
	for _, tg := range crossTargets {
		t.Run(tg.goos+"_"+tg.goarch, func(t *testing.T) {
			args := append([]string{"vet"}, crossPackages...)
			cmd := exec.CommandContext(t.Context(), goTool, args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+tg.goos, "GOARCH="+tg.goarch)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("CGO_ENABLED=0 GOOS=%s GOARCH=%s go %s: %v\n%s",
					tg.goos, tg.goarch, strings.Join(args, " "), err, out)
			}
		})
	}
}

// moduleRoot returns the directory of the go.mod that governs the test's
// working directory.
func moduleRoot(t *testing.T, goTool string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD = %q: not inside the module", gomod)
	}
	return filepath.Dir(gomod)
}
