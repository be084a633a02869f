package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunScriptMatchesRepository keeps run.sh, the README's set-up
// command, in step with go.mod and .ci/run: the Go it installs is at least
// go.mod's, and it installs the same build packages as CI.
func TestRunScriptMatchesRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	script, gomod, ci := read("run.sh"), read("go.mod"), read(".ci/run")
	need := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	have := regexp.MustCompile(`(?m)^go_version=(\S+)$`).FindStringSubmatch(script)
	if need == nil || have == nil {
		t.Fatalf("no go line in go.mod (%v) or go_version in run.sh (%v)", need, have)
	}
	if versionLess(have[1], need[1]) {
		t.Errorf("run.sh installs Go %s but go.mod wants %s: raise go_version and go_sums in run.sh", have[1], need[1])
	}
	pkgs := regexp.MustCompile(`(?m)^packages=\(([^)]*)\)$`).FindStringSubmatch(script)
	if pkgs == nil {
		t.Fatal("no packages=(...) line in run.sh")
	}
	for _, p := range strings.Fields(pkgs[1]) {
		if !regexp.MustCompile(`[\s]` + regexp.QuoteMeta(p) + `[\s\\]`).MatchString(ci) {
			t.Errorf("run.sh installs %s, which .ci/run does not", p)
		}
	}
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x = atoiOr0(as[i])
		}
		if i < len(bs) {
			y = atoiOr0(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func atoiOr0(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestRunScriptInstallsGo runs run.sh's Go installation as on a machine
// without Go: it downloads the toolchain module from the Go module proxy,
// checks its hash against the one pinned in run.sh, unpacks it into a
// temporary directory, builds ferry with it and runs `ferry version`.
// CI's build (.ci/run) always finds Go already installed, so without this
// test that path would never run. It downloads about 70 MB, and run.sh may
// call apt-get, so it runs only where FERRY_E2E_SYSTEM=1 (CI).
func TestRunScriptInstallsGo(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Go")
	}
	if os.Getenv(systemTestsEnv) != "1" {
		t.Skipf("downloads Go and may install packages: runs only with %s=1 (set by .ci/run)", systemTestsEnv)
	}
	for _, tool := range []string{"curl", "unzip", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goDir := filepath.Join(t.TempDir(), "go")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "run.sh"), "version")
	cmd.Env = append(os.Environ(), "FERRY_FORCE_GO_INSTALL=1", "FERRY_GO_DIR="+goDir)
	out, err := cmd.CombinedOutput()
	t.Logf("run.sh version (%s):\n%s", time.Since(start).Round(100*time.Millisecond), out)
	if err != nil {
		t.Fatalf("run.sh: %v", err)
	}
	if !strings.Contains(string(out), "installing Go") || !strings.Contains(string(out), "ferry ") {
		t.Errorf("run.sh did not install Go and run ferry")
	}
	if _, err := os.Stat(filepath.Join(goDir, "bin", "go")); err != nil {
		t.Errorf("no go binary in %s: %v", goDir, err)
	}
}
